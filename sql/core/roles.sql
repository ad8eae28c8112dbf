-- Three group roles carry every privilege on the schema; applications log in as their own
-- roles and are granted one of these:
--   monitoring_writer  may only call capture, record and cache functions
--   monitoring_reader  may read the views
--   monitoring_admin   may manage issues and settings; member of the other two
-- Roles are cluster-wide, so a second database (or a reinstall) finds them already there and
-- an installing role without CREATEROLE can still install once an administrator made them.
DO $$
DECLARE
    v_missing text[];
BEGIN
    SELECT pg_catalog.array_agg(wanted.rolname ORDER BY wanted.rolname)
    INTO v_missing
    FROM (VALUES ('monitoring_reader'), ('monitoring_writer'), ('monitoring_admin'))
        AS wanted (rolname)
    WHERE NOT EXISTS (
        SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname = wanted.rolname
    );

    IF v_missing IS NULL THEN
        RETURN;
    END IF;

    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_roles AS r
        WHERE r.rolname = current_user AND (r.rolcreaterole OR r.rolsuper)
    ) THEN
        RAISE EXCEPTION 'pg_monitoring needs the roles %, and % may not create roles',
            pg_catalog.array_to_string(v_missing, ', '), current_user
            USING
                ERRCODE = 'insufficient_privilege',
                HINT = 'Have an administrator run CREATE ROLE <name> NOLOGIN for each of '
                || 'them, or grant CREATEROLE to the installing role.';
    END IF;

    IF 'monitoring_reader' = ANY(v_missing) THEN
        CREATE ROLE monitoring_reader NOLOGIN;
    END IF;
    IF 'monitoring_writer' = ANY(v_missing) THEN
        CREATE ROLE monitoring_writer NOLOGIN;
    END IF;
    IF 'monitoring_admin' = ANY(v_missing) THEN
        CREATE ROLE monitoring_admin NOLOGIN;
    END IF;
END
$$;

-- Granting membership needs CREATEROLE or ADMIN OPTION even when it already exists,
-- so only grant what is missing.
DO $$
BEGIN
    IF NOT pg_catalog.pg_has_role('monitoring_admin', 'monitoring_reader', 'MEMBER') THEN
        GRANT monitoring_reader TO monitoring_admin;
    END IF;
    IF NOT pg_catalog.pg_has_role('monitoring_admin', 'monitoring_writer', 'MEMBER') THEN
        GRANT monitoring_writer TO monitoring_admin;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA monitoring FROM PUBLIC;
GRANT USAGE ON SCHEMA monitoring TO monitoring_reader, monitoring_writer, monitoring_admin;
GRANT SELECT ON monitoring.installed_versions TO monitoring_reader;
