-- The signals an ingest key may send, defined once: the CHECK constraint of
-- monitoring.ingest_keys calls this (so this file comes before ingest_keys_tables.sql),
-- add_ingest_key and check_ingest_key call it, and clients read it rather than spell it.
-- Replacing it does not check the keys already stored (see sql/pg_monitoring.sql).
CREATE OR REPLACE FUNCTION monitoring.ingest_scopes()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- scrape: GET /metrics (reads the exposition; sends nothing)
    SELECT ARRAY['traces', 'logs', 'metrics', 'events', 'scrape']::text[];
$$;

COMMENT ON FUNCTION monitoring.ingest_scopes() IS
'What an ingest key may be allowed to send: traces, logs, metrics, events; or scrape: read '
'GET /metrics';

GRANT EXECUTE ON FUNCTION monitoring.ingest_scopes() TO
monitoring_reader, monitoring_writer, monitoring_admin;
