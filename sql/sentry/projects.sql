-- Sentry projects (tables.sql): monitoring_admin adds, lists, revokes them and sets their
-- quotas. A project's public key is made by add_ingest_key (scope events, named
-- "sentry:<project>"), so it is stored hashed and listed with the other keys.

-- A project's quota in force: its own, else the settings'.
CREATE OR REPLACE FUNCTION monitoring._sentry_quota(
    p_events_per_minute bigint, p_events_per_hour bigint,
    OUT per_minute bigint, OUT per_hour bigint
)
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    per_minute := coalesce(
        p_events_per_minute,
        (monitoring.get_setting('sentry.events_per_minute') #>> '{}')::bigint
    );
    per_hour := coalesce(
        p_events_per_hour,
        (monitoring.get_setting('sentry.events_per_hour') #>> '{}')::bigint
    );
END
$$;

CREATE OR REPLACE FUNCTION monitoring.add_sentry_project(
    p_name text,
    p_service text,
    p_environment text DEFAULT NULL,
    p_id bigint DEFAULT NULL,
    OUT project_id bigint,
    OUT public_key text
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 200 OR p_name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'p_name must be 1 to 200 characters on one line'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_service IS NULL OR length(p_service) NOT BETWEEN 1 AND 200
        OR p_service ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'p_service must be 1 to 200 characters on one line'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(p_environment) NOT BETWEEN 1 AND 200 OR p_environment ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'p_environment must be 1 to 200 characters on one line, or NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_id <= 0 THEN
        RAISE EXCEPTION 'p_id must be a positive project id, not %', p_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (
        SELECT FROM monitoring.sentry_projects AS p
        WHERE p.name = p_name AND p.revoked_at IS NULL
    ) THEN
        RAISE EXCEPTION 'a Sentry project named % exists already', quote_literal(p_name)
            USING ERRCODE = 'unique_violation',
                HINT = 'Revoke it first, or choose another name.';
    END IF;
    IF EXISTS (SELECT FROM monitoring.sentry_projects AS p WHERE p.id = p_id) THEN
        RAISE EXCEPTION 'a Sentry project with id % exists already', p_id
            USING ERRCODE = 'unique_violation';
    END IF;

    public_key := monitoring.add_ingest_key('sentry:' || p_name, ARRAY['events']);
    INSERT INTO monitoring.sentry_projects AS p (id, name, service, environment, key_id)
    SELECT
        coalesce(p_id, nextval('monitoring.sentry_projects_id_seq')),
        p_name, p_service, p_environment, k.id
    FROM monitoring.ingest_keys AS k
    WHERE k.key_hash = sha256(convert_to(public_key, 'UTF8'))
    RETURNING p.id INTO project_id;
END
$$;

COMMENT ON FUNCTION monitoring.add_sentry_project(text, text, text, bigint) IS
'Makes a Sentry project (its DSN''s project id is p_id, or the next free one) whose events '
'name p_service and p_environment when they name none; returns its id and public key, '
'which is stored only hashed';

CREATE OR REPLACE FUNCTION monitoring.revoke_sentry_project(p_name text)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key_id bigint;
    v_revoked_at timestamptz;
BEGIN
    UPDATE monitoring.sentry_projects AS p
    SET revoked_at = now(), revoked_by = session_user
    WHERE p.name = p_name AND p.revoked_at IS NULL
    RETURNING p.key_id, p.revoked_at INTO v_key_id, v_revoked_at;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no Sentry project named % (or it is revoked already)',
            coalesce(quote_literal(monitoring.truncate_text(p_name, 100)), 'NULL')
            USING ERRCODE = 'no_data_found',
                HINT = 'SELECT name FROM monitoring.list_sentry_projects() lists them.';
    END IF;
    UPDATE monitoring.ingest_keys AS k
    SET revoked_at = v_revoked_at, revoked_by = session_user
    WHERE k.id = v_key_id AND k.revoked_at IS NULL;
    RETURN v_revoked_at;
END
$$;

COMMENT ON FUNCTION monitoring.revoke_sentry_project(text) IS
'Revokes the live Sentry project p_name and its public key: its DSN is refused (403) at '
'once; its counts stay';

CREATE OR REPLACE FUNCTION monitoring.set_sentry_project_quota(
    p_name text, p_events_per_minute bigint, p_events_per_hour bigint
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_events_per_minute <= 0 OR p_events_per_hour <= 0 THEN
        RAISE EXCEPTION 'p_events_per_minute and p_events_per_hour must be positive, or NULL '
            'for the settings'' defaults'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE monitoring.sentry_projects AS p
    SET events_per_minute = p_events_per_minute, events_per_hour = p_events_per_hour
    WHERE p.name = p_name AND p.revoked_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no live Sentry project named %',
            coalesce(quote_literal(monitoring.truncate_text(p_name, 100)), 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

COMMENT ON FUNCTION monitoring.set_sentry_project_quota(text, bigint, bigint) IS
'Sets the events a Sentry project may send per minute and per hour (NULL: the settings '
'sentry.events_per_minute and sentry.events_per_hour)';

CREATE OR REPLACE FUNCTION monitoring.list_sentry_projects()
RETURNS TABLE (
    id bigint,
    name text,
    service text,
    environment text,
    events_per_minute bigint,
    events_per_hour bigint,
    created_at timestamptz,
    created_by name,
    last_used_at timestamptz,
    revoked_at timestamptz
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        p.id, p.name, p.service, p.environment,
        q.per_minute, q.per_hour,
        p.created_at, p.created_by, k.last_used_at, p.revoked_at
    FROM monitoring.sentry_projects AS p
    INNER JOIN monitoring.ingest_keys AS k ON p.key_id = k.id
    CROSS JOIN LATERAL monitoring._sentry_quota(p.events_per_minute, p.events_per_hour) AS q
    ORDER BY p.revoked_at IS NOT NULL, p.name, p.id;
$$;

COMMENT ON FUNCTION monitoring.list_sentry_projects() IS
'Every Sentry project, live ones first: id, name, service, environment, quota in force, '
'last use of its key (to the minute), revocation; never the key';

GRANT EXECUTE ON FUNCTION
monitoring.add_sentry_project(text, text, text, bigint),
monitoring.revoke_sentry_project(text),
monitoring.set_sentry_project_quota(text, bigint, bigint),
monitoring.list_sentry_projects()
TO monitoring_admin;
