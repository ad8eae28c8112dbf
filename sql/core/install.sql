-- What installs and upgrades use: which path is running (extension or plain script), the
-- version installed (installed_versions, in schema.sql), and pg_dump's view of our tables.

-- 'extension' while CREATE/ALTER EXTENSION runs our scripts (or once installed that way),
-- 'script' for the plain-script path.
CREATE OR REPLACE FUNCTION monitoring.install_mode()
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

-- SECURITY DEFINER: every role may ask (a writer's health check, say) without reading the
-- table of installs.
CREATE OR REPLACE FUNCTION monitoring.version()
RETURNS text
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.version
    FROM monitoring.installed_versions AS v
    ORDER BY v.id DESC
    LIMIT 1;
$$;

COMMENT ON FUNCTION monitoring.version() IS 'The installed pg_monitoring version';

-- Called by the last line of every built install and upgrade script (see sql/flatten.awk).
CREATE OR REPLACE FUNCTION monitoring._record_version(p_version text)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO monitoring.installed_versions (version, install_mode)
    VALUES (p_version, monitoring.install_mode());
$$;

-- pg_dump leaves out the rows of an extension's tables unless the extension registers them
-- with pg_extension_config_dump, which only works while CREATE/ALTER EXTENSION runs. A plain
-- install needs nothing: pg_dump keeps ordinary tables whole.
CREATE OR REPLACE FUNCTION monitoring._keep_rows_in_dump(p_table regclass, p_filter text DEFAULT '')
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF monitoring.install_mode() = 'extension' THEN
        PERFORM pg_catalog.pg_extension_config_dump(p_table, p_filter);
    END IF;
END
$$;

GRANT EXECUTE ON FUNCTION monitoring.version() TO
monitoring_reader, monitoring_writer, monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.install_mode() TO
monitoring_reader, monitoring_writer, monitoring_admin;
