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

-- 'extension' while CREATE/ALTER EXTENSION runs our scripts (or once installed that way),
-- 'script' for the plain-script path.
CREATE FUNCTION monitoring.install_mode()
RETURNS text
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_monitoring')
            THEN 'extension'
        ELSE 'script'
    END;
$$;

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

CREATE FUNCTION monitoring.version()
RETURNS text
LANGUAGE sql
STABLE
AS $$
    SELECT v.version
    FROM monitoring.installed_versions AS v
    ORDER BY v.id DESC
    LIMIT 1;
$$;

COMMENT ON FUNCTION monitoring.version() IS 'The installed pg_monitoring version';

-- Called by the last line of every built install and upgrade script (see sql/flatten.awk).
CREATE FUNCTION monitoring._record_version(p_version text)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO monitoring.installed_versions (version, install_mode)
    VALUES (p_version, monitoring.install_mode());
$$;

-- pg_dump leaves out the rows of an extension's tables unless the extension registers them
-- with pg_extension_config_dump, which only works while CREATE/ALTER EXTENSION runs. A plain
-- install needs nothing: pg_dump keeps ordinary tables whole.
CREATE FUNCTION monitoring._keep_rows_in_dump(p_table regclass, p_filter text DEFAULT '')
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF monitoring.install_mode() = 'extension' THEN
        PERFORM pg_catalog.pg_extension_config_dump(p_table, p_filter);
    END IF;
END
$$;
