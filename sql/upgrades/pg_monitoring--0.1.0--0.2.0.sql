-- pg_monitoring 0.1.0 -> 0.2.0 (in development).
--
-- Components new in this version are included whole; changes to 0.1.0 objects are written
-- out here. tests/test_upgrade.py requires the result to equal a fresh 0.2.0 install.

-- Settings have ranges (settings.sql, settings_check.sql, settings_functions.sql).
ALTER TABLE monitoring.setting_definitions
ADD COLUMN min_value numeric,
ADD COLUMN max_value numeric,
ADD COLUMN fractional boolean NOT NULL DEFAULT FALSE;

CREATE OR REPLACE VIEW monitoring.effective_settings AS
SELECT
    d.name,
    coalesce(s.value, d.default_value) AS value,
    d.default_value,
    s.name IS NULL AS is_default,
    s.updated_at,
    s.updated_by,
    d.description,
    d.min_value,
    d.max_value
FROM monitoring.setting_definitions AS d
LEFT JOIN monitoring.settings AS s ON d.name = s.name;

COMMENT ON VIEW monitoring.effective_settings IS
'Every setting with the value in force, its default, who last changed it and its range';

-- @include ../settings_check.sql

-- @include ../settings_functions.sql
-- @include ../settings_snapshot.sql
-- @include ../formats.sql
-- @include ../normalize.sql
-- @include ../stack_traces.sql
-- @include ../limits.sql
-- @include ../scrubbing.sql
-- @include ../fingerprint.sql
-- @include ../errors.sql
-- @include ../issues.sql
-- @include ../capture.sql
-- @include ../alerts.sql
-- @include ../maintenance.sql
-- @include ../cache.sql
-- @include ../privileges.sql
