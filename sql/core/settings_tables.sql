-- Settings. Each component declares its settings in setting_definitions, with a default and
-- the range a value must be in; monitoring_admin overrides them with set_setting. Only
-- overrides are stored in monitoring.settings, so a pg_dump of an extension install restores
-- them on top of the definitions that CREATE EXTENSION recreates, without conflicting rows.
CREATE TABLE monitoring.setting_definitions (
    name text PRIMARY KEY,
    default_value jsonb NOT NULL,
    description text NOT NULL,
    -- What a value may be (_setting_problem): a number from min_value to max_value, a whole
    -- one unless fractional, text of min_value to max_value characters on one line, or a
    -- list of at most max_value names. Every setting of ours declares one (pgTAP checks): a
    -- setting that takes anything would let one bad value stop every capture.
    min_value numeric,
    max_value numeric,
    fractional boolean NOT NULL DEFAULT FALSE,
    CONSTRAINT setting_definitions_default_not_null
    CHECK (pg_catalog.jsonb_typeof(default_value) <> 'null')
);

COMMENT ON TABLE monitoring.setting_definitions IS
'Every setting pg_monitoring knows, with its default; overrides live in monitoring.settings';

CREATE TABLE monitoring.settings (
    name text PRIMARY KEY REFERENCES monitoring.setting_definitions (name) ON DELETE CASCADE,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by name NOT NULL DEFAULT session_user
);

COMMENT ON TABLE monitoring.settings IS
'Settings changed from their default by monitoring.set_setting';

SELECT monitoring._keep_rows_in_dump('monitoring.settings');
