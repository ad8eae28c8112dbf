-- The schema, and the record of which version is installed and how.
--
-- One script serves both install paths. Under CREATE EXTENSION the server creates the schema
-- named in pg_monitoring.control before it runs the script, and since PostgreSQL 15 an extension
-- script may not CREATE ... IF NOT EXISTS an object that is not its own; run as a plain script
-- (pg-monitoring install, psql -f) we create the schema ourselves.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_monitoring') THEN
        CREATE SCHEMA IF NOT EXISTS monitoring;
    END IF;
END
$$;

COMMENT ON SCHEMA monitoring IS
'pg_monitoring: error tracking, cache, traces and alerts inside PostgreSQL';

-- One row per install or upgrade step, newest last. The plain-script installer reads it to
-- know what is installed; an extension install keeps it too, so both paths look the same.
CREATE TABLE monitoring.installed_versions (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version text NOT NULL,
    install_mode text NOT NULL CHECK (install_mode IN ('extension', 'script')),
    installed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    installed_by name NOT NULL DEFAULT current_user
);

COMMENT ON TABLE monitoring.installed_versions IS
'pg_monitoring versions applied to this database, one row per install or upgrade step';
