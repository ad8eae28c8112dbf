-- The issue lifecycle: unresolved | resolved | ignored, as Sentry users know it. Changes are
-- made by monitoring_admin through these functions, and each is kept in issue_activity.
-- The capture functions regress resolved issues and wake ignored ones (see ingest.sql).

CREATE OR REPLACE FUNCTION monitoring._issue_not_found(p_issue_id bigint)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'no issue with id %', coalesce(p_issue_id::text, 'NULL')
        USING ERRCODE = 'no_data_found';
END
$$;

-- Who made a change, as the issue's history keeps it: p_actor, else the session's user. At
-- most 200 characters, as the names capture keeps (service, environment, release).
CREATE OR REPLACE FUNCTION monitoring._actor(p_actor text)
RETURNS text
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    IF length(p_actor) > 200 THEN
        RAISE EXCEPTION 'p_actor must be at most 200 characters, not %', length(p_actor)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN coalesce(p_actor, session_user);
END
$$;

-- Finds an issue by fingerprint, as the Python API's resolve_error(fingerprint=...) does.
CREATE OR REPLACE FUNCTION monitoring.issue_id(
    p_fingerprint text, p_environment text DEFAULT NULL, p_service text DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ids bigint[];
    v_where text[];
    -- as capture keeps them (_ingest): a long name finds the issues captured with it
    v_environment text := monitoring._index_text(p_environment, 200);
    v_service text := monitoring._index_text(p_service, 200);
BEGIN
    SELECT array_agg(g.id ORDER BY g.id), array_agg(g.service || '/' || g.environment)
    INTO v_ids, v_where
    FROM monitoring.error_issues AS g
    WHERE g.fingerprint = p_fingerprint
        AND (v_environment IS NULL OR g.environment = v_environment)
        AND (v_service IS NULL OR g.service = v_service);

    IF v_ids IS NULL THEN
        RAISE EXCEPTION 'no issue with fingerprint %',
            coalesce(quote_literal(monitoring.truncate_text(p_fingerprint, 100)), 'NULL')
            || coalesce(
                ' in environment ' || quote_literal(monitoring.truncate_text(p_environment, 100)),
                ''
            )
            || coalesce(
                ' of service ' || quote_literal(monitoring.truncate_text(p_service, 100)), ''
            )
            USING ERRCODE = 'no_data_found';
    END IF;
    IF cardinality(v_ids) > 1 THEN
        RAISE EXCEPTION 'fingerprint % names % issues (service/environment: %)',
            quote_literal(monitoring.truncate_text(p_fingerprint, 100)), cardinality(v_ids),
            monitoring.truncate_text(array_to_string(v_where, ', '), 500)
            USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Pass p_environment and p_service to choose one.';
    END IF;
    RETURN v_ids[1];
END
$$;

COMMENT ON FUNCTION monitoring.issue_id(text, text, text) IS
'The issue with fingerprint p_fingerprint (narrowed by environment and service when given); '
'raises no_data_found, or invalid_parameter_value when several match';

-- p_actor NULL: pg_monitoring itself (a first event, a regression).
-- The helpers capture calls are PL/pgSQL, not SQL: PostgreSQL 15 plans a SQL function it can
-- not inline (one with an INSERT or a FROM) again on every call; PL/pgSQL keeps its plans.
CREATE OR REPLACE FUNCTION monitoring._record_activity(
    p_issue_id bigint, p_action text, p_actor text, p_data jsonb DEFAULT '{}'
)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO monitoring.issue_activity (issue_id, action, actor, data)
    VALUES (p_issue_id, p_action, p_actor, coalesce(p_data, '{}'));
END
$$;

-- Every status change goes through here, so a state never keeps fields of another (a
-- reopened issue no resolution, a resolved one no ignore condition). Only an issue whose
-- status is one of p_from changes: concurrent callers queue on the row, and the first wins.
-- Records the activity and returns whether it changed anything.
CREATE OR REPLACE FUNCTION monitoring._transition(
    p_issue_id bigint,
    p_from text[],
    p_to text,
    p_action text,
    p_actor text,
    p_data jsonb DEFAULT '{}',
    p_substatus text DEFAULT NULL,
    p_resolution text DEFAULT NULL,
    p_release text DEFAULT NULL,
    p_ignore_until timestamptz DEFAULT NULL,
    p_ignore_until_times_seen bigint DEFAULT NULL,
    p_ignore_until_users_seen bigint DEFAULT NULL
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    -- a value, not now() inside the CASEs: Citus refuses a non-IMMUTABLE function in a CASE
    -- of an UPDATE on a distributed or reference table (error_issues is one there)
    v_now timestamptz := now();
BEGIN
    UPDATE monitoring.error_issues AS g
    SET status = p_to,
        substatus = p_substatus,
        substatus_at = CASE WHEN p_substatus IS NOT NULL THEN v_now END,
        resolved_at = CASE WHEN p_to = 'resolved' THEN v_now END,
        resolved_by = CASE WHEN p_to = 'resolved' THEN p_actor END,
        resolution = CASE WHEN p_to = 'resolved' THEN p_resolution END,
        resolved_in_release = CASE WHEN p_to = 'resolved' THEN p_release END,
        ignored_at = CASE WHEN p_to = 'ignored' THEN v_now END,
        ignored_by = CASE WHEN p_to = 'ignored' THEN p_actor END,
        ignore_until = CASE WHEN p_to = 'ignored' THEN p_ignore_until END,
        ignore_until_times_seen = CASE WHEN p_to = 'ignored' THEN p_ignore_until_times_seen END,
        ignore_until_users_seen = CASE WHEN p_to = 'ignored' THEN p_ignore_until_users_seen END
    WHERE g.id = p_issue_id AND g.status = ANY(p_from);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM monitoring._record_activity(p_issue_id, p_action, p_actor, p_data);
    RETURN true;
END
$$;

-- Resolve now (p_in_release NULL, p_in_next_release false), in release X (events from older
-- releases do not regress it), or in the next release (only releases newer than the latest
-- one the issue has seen regress it).
CREATE OR REPLACE FUNCTION monitoring.resolve_issue(
    p_issue_id bigint,
    p_in_release text DEFAULT NULL,
    p_in_next_release boolean DEFAULT FALSE,
    p_actor text DEFAULT NULL
)
RETURNS monitoring.issues
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor text := monitoring._actor(p_actor);
    v_release text;
    v_resolution text := 'now';
    v_result monitoring.issues;
BEGIN
    IF p_in_release IS NOT NULL AND coalesce(p_in_next_release, false) THEN
        RAISE EXCEPTION 'pass p_in_release or p_in_next_release, not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM FROM monitoring.error_issues AS g WHERE g.id = p_issue_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM monitoring._issue_not_found(p_issue_id);
    END IF;

    IF p_in_release IS NOT NULL THEN
        v_resolution := 'in_release';
        -- as capture keeps a release: a long one resolves the release its events name
        v_release := monitoring._index_text(p_in_release, 200);
    ELSIF p_in_next_release THEN
        v_resolution := 'in_next_release';
        -- The newest release the issue was seen in, ordered as _regresses orders releases
        -- (by first sighting): the latest event may come from a server still running an
        -- older release, and resolving after that one would let the current one regress it.
        -- Subqueries, not joins: on Citus releases stays on the coordinator, issues are a
        -- reference table and events distributed, and Citus joins none of them directly.
        SELECT r.version INTO v_release
        FROM monitoring.releases AS r
        WHERE r.service = (
            SELECT g.service FROM monitoring.error_issues AS g WHERE g.id = p_issue_id
        )
            AND r.version IN (
                SELECT e.release FROM monitoring.error_events AS e
                WHERE e.issue_id = p_issue_id AND e.release IS NOT NULL
            )
        ORDER BY r.first_seen DESC
        LIMIT 1;
        IF v_release IS NULL THEN
            RAISE EXCEPTION 'issue % has no event with a release to resolve after',
                p_issue_id
                USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Resolve it now, or in a named release.';
        END IF;
    END IF;

    PERFORM monitoring._transition(
        p_issue_id, monitoring.issue_statuses(), 'resolved', 'resolved',
        v_actor,
        jsonb_strip_nulls(jsonb_build_object('resolution', v_resolution, 'release', v_release)),
        p_resolution => v_resolution, p_release => v_release
    );
    SELECT * INTO v_result FROM monitoring.issues AS i WHERE i.id = p_issue_id;
    RETURN v_result;
END
$$;

COMMENT ON FUNCTION monitoring.resolve_issue(bigint, text, boolean, text) IS
'Resolves an issue now, in release p_in_release, or in the next release; a later event '
'regresses it (see capture)';

-- Ignore forever, until a time, until N more events or until N more users; whichever
-- condition is given first wakes it (status unresolved, sub-status escalating).
CREATE OR REPLACE FUNCTION monitoring.ignore_issue(
    p_issue_id bigint,
    p_until timestamptz DEFAULT NULL,
    p_until_events bigint DEFAULT NULL,
    p_until_users bigint DEFAULT NULL,
    p_actor text DEFAULT NULL
)
RETURNS monitoring.issues
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor text := monitoring._actor(p_actor);
    v_now monitoring.issues;
    v_result monitoring.issues;
BEGIN
    -- Within a millennium: 'infinity' or the year 9999 mean forever, which NULL says, and a
    -- time past the year 9999 is one no Python client can read back.
    IF p_until <= now() OR p_until > now() + interval '1000 years' THEN
        RAISE EXCEPTION 'p_until must be in the future, at most 1000 years ahead (NULL: '
            'forever), not %', p_until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_until_events <= 0 OR p_until_users <= 0 THEN
        RAISE EXCEPTION 'p_until_events and p_until_users must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM FROM monitoring.error_issues AS g WHERE g.id = p_issue_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM monitoring._issue_not_found(p_issue_id);
    END IF;
    SELECT * INTO v_now FROM monitoring.issues AS i WHERE i.id = p_issue_id;

    PERFORM monitoring._transition(
        p_issue_id, monitoring.issue_statuses(), 'ignored', 'ignored',
        v_actor,
        jsonb_strip_nulls(jsonb_build_object(
            'until', monitoring._json_time(p_until), 'until_events', p_until_events, 'until_users', p_until_users
        )),
        p_ignore_until => p_until,
        -- the largest counts mean never, and must not overflow (least() skips a NULL)
        p_ignore_until_times_seen => CASE WHEN p_until_events IS NOT NULL
            THEN least(v_now.times_seen::numeric + p_until_events, 9223372036854775807)::bigint
        END,
        p_ignore_until_users_seen => CASE WHEN p_until_users IS NOT NULL
            THEN least(v_now.users_seen::numeric + p_until_users, 9223372036854775807)::bigint
        END
    );
    SELECT * INTO v_result FROM monitoring.issues AS i WHERE i.id = p_issue_id;
    RETURN v_result;
END
$$;

COMMENT ON FUNCTION monitoring.ignore_issue(bigint, timestamptz, bigint, bigint, text) IS
'Ignores an issue forever, or until p_until (at most 1000 years ahead), p_until_events more '
'events or p_until_users more users, whichever comes first';

CREATE OR REPLACE FUNCTION monitoring.reopen_issue(p_issue_id bigint, p_actor text DEFAULT NULL)
RETURNS monitoring.issues
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor text := monitoring._actor(p_actor);
    v_old text;
    v_result monitoring.issues;
BEGIN
    SELECT g.status INTO v_old FROM monitoring.error_issues AS g
    WHERE g.id = p_issue_id
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM monitoring._issue_not_found(p_issue_id);
    END IF;
    PERFORM monitoring._transition(
        p_issue_id, '{resolved,ignored}', 'unresolved', 'unresolved',
        v_actor, jsonb_build_object('from', v_old)
    );
    SELECT * INTO v_result FROM monitoring.issues AS i WHERE i.id = p_issue_id;
    RETURN v_result;
END
$$;

COMMENT ON FUNCTION monitoring.reopen_issue(bigint, text) IS
'Sets a resolved or ignored issue back to unresolved';

CREATE OR REPLACE FUNCTION monitoring.assign_issue(
    p_issue_id bigint, p_assignee text, p_actor text DEFAULT NULL
)
RETURNS monitoring.issues
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor text := monitoring._actor(p_actor);
    v_result monitoring.issues;
BEGIN
    IF coalesce(p_assignee, '') !~ E'\\S' THEN
        RAISE EXCEPTION 'p_assignee must not be empty; use monitoring.unassign_issue'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- it goes into every alert about the issue
    IF length(p_assignee) > 200 THEN
        RAISE EXCEPTION 'p_assignee must be at most 200 characters, not %', length(p_assignee)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE monitoring.error_issues AS g
    SET assignee = p_assignee, assigned_at = now()
    WHERE g.id = p_issue_id;
    IF NOT FOUND THEN
        PERFORM monitoring._issue_not_found(p_issue_id);
    END IF;
    PERFORM monitoring._record_activity(
        p_issue_id, 'assigned', v_actor,
        jsonb_build_object('assignee', p_assignee)
    );
    SELECT * INTO v_result FROM monitoring.issues AS i WHERE i.id = p_issue_id;
    RETURN v_result;
END
$$;

COMMENT ON FUNCTION monitoring.assign_issue(bigint, text, text) IS
'Assigns an issue to p_assignee (any text of up to 200 characters: an email, a team)';

CREATE OR REPLACE FUNCTION monitoring.unassign_issue(p_issue_id bigint, p_actor text DEFAULT NULL)
RETURNS monitoring.issues
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor text := monitoring._actor(p_actor);
    v_old text;
    v_result monitoring.issues;
BEGIN
    SELECT g.assignee INTO v_old FROM monitoring.error_issues AS g
    WHERE g.id = p_issue_id
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM monitoring._issue_not_found(p_issue_id);
    END IF;
    IF v_old IS NOT NULL THEN
        UPDATE monitoring.error_issues AS g
        SET assignee = NULL, assigned_at = NULL
        WHERE g.id = p_issue_id;
        PERFORM monitoring._record_activity(
            p_issue_id, 'unassigned', v_actor,
            jsonb_build_object('assignee', v_old)
        );
    END IF;
    SELECT * INTO v_result FROM monitoring.issues AS i WHERE i.id = p_issue_id;
    RETURN v_result;
END
$$;

COMMENT ON FUNCTION monitoring.unassign_issue(bigint, text) IS 'Removes an issue''s assignee';

-- Whether an event of release p_release regresses a resolved issue.
CREATE OR REPLACE FUNCTION monitoring._regresses(p_issue monitoring.error_issues, p_release text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    RETURN (
        SELECT CASE
            WHEN p_issue.resolution = 'now' OR p_issue.resolution IS NULL THEN true
            -- an event that names no release can not be shown to be old
            WHEN p_release IS NULL THEN true
            WHEN p_release = p_issue.resolved_in_release
                THEN p_issue.resolution = 'in_release'
            -- Releases are ordered by first sighting. A resolving release not seen yet (the
            -- one being deployed, or a typo) counts as first seen when the issue was
            -- resolved: a release first seen since then regresses it, and none is hidden.
            ELSE coalesce((
                SELECT CASE WHEN r.first_seen IS NULL THEN e.first_seen >= p_issue.resolved_at
                    ELSE e.first_seen > r.first_seen
                END
                FROM monitoring.releases AS e
                LEFT JOIN monitoring.releases AS r
                    ON e.service = r.service AND r.version = p_issue.resolved_in_release
                WHERE e.service = p_issue.service AND e.version = p_release
            ), true)
        END
    );
END
$$;

-- Why an ignored issue wakes up, or NULL while it stays ignored. Counting stops at the
-- threshold, so an error storm on an ignored issue costs each event a bounded scan.
CREATE OR REPLACE FUNCTION monitoring._ignore_over(p_issue monitoring.error_issues)
RETURNS text
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    RETURN (
        SELECT CASE
            WHEN p_issue.ignore_until <= pg_catalog.now() THEN 'until time passed'
            WHEN p_issue.ignore_until_times_seen IS NOT NULL
                AND p_issue.times_seen + (
                    SELECT pg_catalog.count(*) FROM (
                        SELECT FROM monitoring.error_issue_counts AS c
                        WHERE c.issue_id = p_issue.id
                        LIMIT greatest(p_issue.ignore_until_times_seen - p_issue.times_seen, 0)
                    ) AS enough
                ) >= p_issue.ignore_until_times_seen
                THEN 'event count reached'
            WHEN p_issue.ignore_until_users_seen IS NOT NULL
                AND p_issue.users_seen + (
                    SELECT pg_catalog.count(*) FROM (
                        SELECT DISTINCT c.user_key
                        FROM monitoring.error_issue_counts AS c
                        WHERE c.issue_id = p_issue.id AND c.user_key IS NOT NULL
                            AND NOT EXISTS (
                                SELECT FROM monitoring.error_issue_users AS u
                                WHERE u.issue_id = c.issue_id AND u.user_key = c.user_key
                            )
                        LIMIT greatest(p_issue.ignore_until_users_seen - p_issue.users_seen, 0)
                    ) AS enough
                ) >= p_issue.ignore_until_users_seen
                THEN 'user count reached'
        END
    );
END
$$;

GRANT EXECUTE ON FUNCTION
monitoring.issue_id(text, text, text)
TO monitoring_reader, monitoring_admin;
GRANT EXECUTE ON FUNCTION
monitoring.resolve_issue(bigint, text, boolean, text),
monitoring.ignore_issue(bigint, timestamptz, bigint, bigint, text),
monitoring.reopen_issue(bigint, text),
monitoring.assign_issue(bigint, text, text),
monitoring.unassign_issue(bigint, text)
TO monitoring_admin;
