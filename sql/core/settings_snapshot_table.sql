-- Every setting in force, as one row: the capture hot path reads it with one primary-key
-- lookup instead of joining definitions and overrides for every event. Statement triggers
-- rebuild it whenever either table changes.
CREATE TABLE monitoring.settings_snapshot (
    only_row boolean PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    value jsonb NOT NULL,
    -- Signs what capture remembers in a session setting the caller can also write (the
    -- fingerprint memo, errors/ingest.sql), so a forged entry is told from one capture made.
    -- Here, not in a table of its own, because capture reads this row anyway; no role but
    -- the owner reads either.
    session_key text NOT NULL DEFAULT pg_catalog.md5(pg_catalog.gen_random_uuid()::text),
    -- the scrub.* settings in the form the scrubbing functions take (core/scrubbing.sql):
    -- computed when settings change, not for every event
    scrub_pattern text,
    scrub_likes text[],
    scrub_safe_keys text[]
);

COMMENT ON TABLE monitoring.settings_snapshot IS
'All settings in force as one JSON object, kept current by triggers; read by capture';

INSERT INTO monitoring.settings_snapshot (only_row, value)
SELECT
    TRUE AS only_row,
    coalesce(jsonb_object_agg(d.name, coalesce(s.value, d.default_value)), '{}') AS value
FROM monitoring.setting_definitions AS d
LEFT JOIN monitoring.settings AS s ON d.name = s.name;
