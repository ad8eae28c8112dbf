-- Storm protection: once an issue has N events stored whole in a window
-- (errors.storm_full_events per errors.storm_window_minutes), its further events in that
-- window are counted exactly (an error_issue_counts row each, as every event: times seen,
-- users, last seen, levels and threshold alerts stay exact) but only one in
-- errors.storm_keep_one_in is stored as an error_events row. _ingest decides before it cuts,
-- scrubs or stores the payload, so a sampled-out event costs its grouping and its count row.
--
-- No counter that writers update: the count is of the stored rows themselves (the issue's
-- events of the window, by error_events_issue, LIMIT N), read while the issue is under N by
-- one capture in errors.storm_check_one_in (at random, not by the id a client chooses: the
-- count reads up to N rows, and done by every capture it cost a whole capture about 15%), and
-- the first capture to find N marks the issue (sampling_until, one update per issue and
-- window, SKIP LOCKED so that it never waits: a capture that finds the row locked leaves the
-- mark to the next). After that every capture reads the mark from the issue row it looks up
-- anyway. Concurrent transactions do not see each other's uncommitted events, so each may
-- store up to N before the mark: whole events per window are at most N times the writers in
-- flight, plus about errors.storm_check_one_in each, plus the one in K.
--
-- What a sampled-out capture returns: the event id it was counted under (the id sent, or a
-- new one) and its issue. No row of monitoring.errors has that id; a resend of it is counted
-- again, as it can not be told from a new event without a stored row.

-- Whether _storm_sampled need run: the issue is marked for a window that ends after the
-- event, or this capture is the one in errors.storm_check_one_in that counts. SQL, inlined
-- into _ingest's expression: the common capture, of an issue in no storm, makes no call.
CREATE OR REPLACE FUNCTION monitoring._storm_due(
    p_sampling_until timestamptz, p_occurred timestamptz, p_cfg jsonb
)
RETURNS boolean
LANGUAGE sql
VOLATILE
AS $$
    SELECT coalesce(p_sampling_until > p_occurred, FALSE)
        OR pg_catalog.random() * (p_cfg ->> 'errors.storm_check_one_in')::integer < 1;
$$;

-- An issue's events stored from p_from to p_to, counted up to p_limit. A generic plan, kept
-- for the session: the plan cache would otherwise try custom plans, each planning every
-- partition of the table, for a query whose parameters prune them at run time anyway.
CREATE OR REPLACE FUNCTION monitoring._storm_stored(
    p_issue_id bigint, p_from timestamptz, p_to timestamptz, p_limit integer
)
RETURNS integer
LANGUAGE plpgsql
STABLE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN (
        SELECT count(*) FROM (
            SELECT FROM monitoring.error_events AS e
            WHERE e.issue_id = p_issue_id AND e.occurred_at >= p_from AND e.occurred_at < p_to
            LIMIT p_limit
        ) AS w
    );
END
$$;

-- Whether the event is counted only (true) or stored whole. p_issue is the issue's row as
-- the capture read it.
CREATE OR REPLACE FUNCTION monitoring._storm_sampled(
    p_issue monitoring.error_issues, p_occurred timestamptz, p_event_id uuid, p_cfg jsonb
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_length interval := make_interval(mins => (p_cfg ->> 'errors.storm_window_minutes')::integer);
    v_window timestamptz := date_bin(v_length, p_occurred, timestamptz '2000-01-01 00:00:00+00');
    v_full integer;
    v_stored integer;
    v_now timestamptz;
BEGIN
    IF p_issue.sampling_until IS DISTINCT FROM v_window + v_length THEN
        v_full := (p_cfg ->> 'errors.storm_full_events')::integer;
        v_stored := monitoring._storm_stored(p_issue.id, v_window, v_window + v_length, v_full);
        IF v_stored < v_full THEN
            RETURN FALSE;
        END IF;
        -- Only forward: a late event of an earlier window does not move the mark back.
        -- sampling_since stays while windows follow one another. now() as a value: Citus
        -- refuses a non-IMMUTABLE function in a CASE of an UPDATE on a reference table.
        v_now := now();
        UPDATE monitoring.error_issues AS g
        SET sampling_until = v_window + v_length,
            sampling_since = CASE WHEN g.sampling_until >= v_window THEN g.sampling_since
                ELSE v_now
            END
        WHERE g.id = (
            SELECT h.id FROM monitoring.error_issues AS h
            WHERE h.id = p_issue.id
                AND (h.sampling_until IS NULL OR h.sampling_until < v_window + v_length)
            FOR NO KEY UPDATE SKIP LOCKED
        );
    END IF;
    -- one in K kept whole, chosen by the event id (random, and the same for a resend)
    RETURN hashtext(p_event_id::text) % (p_cfg ->> 'errors.storm_keep_one_in')::integer <> 0;
END
$$;

-- The user an event counts for (users_seen), from the user and context as stored: see
-- _ingest. SQL, inlined into the caller.
CREATE OR REPLACE FUNCTION monitoring._user_key(p_user jsonb, p_context jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT coalesce(
        'id:' || nullif(p_user ->> 'id', ''),
        'username:' || nullif(p_user ->> 'username', ''),
        'email:' || nullif(p_user ->> 'email', ''),
        'ip:' || nullif(p_user ->> 'ip_address', ''),
        'id:' || CASE WHEN pg_catalog.jsonb_typeof(p_context -> 'user_id') IN ('string', 'number')
                THEN nullif(p_context ->> 'user_id', '')
        END
    );
$$;

-- The user key of an event counted without its payload being cut and scrubbed: the same
-- as the stored event's would be ('' for none). Only the fields the key reads are taken, and
-- scrubbed as the whole documents are (scrub_with treats each key on its own). NULL when
-- capture would cut them (fields longer than a message, documents over
-- errors.max_context_bytes): the caller stores such an event whole.
CREATE OR REPLACE FUNCTION monitoring._storm_user_key(
    p_user jsonb, p_context jsonb, p_cfg jsonb, p_pattern text, p_likes text[], p_safe text[]
)
RETURNS text
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_user jsonb := jsonb_strip_nulls(jsonb_build_object(
        'id', p_user -> 'id', 'username', p_user -> 'username', 'email', p_user -> 'email',
        'ip_address', p_user -> 'ip_address'
    ));
    v_context jsonb := jsonb_strip_nulls(jsonb_build_object('user_id', p_context -> 'user_id'));
BEGIN
    IF pg_column_size(p_user) > (p_cfg ->> 'errors.max_context_bytes')::integer
        OR pg_column_size(p_context) > (p_cfg ->> 'errors.max_context_bytes')::integer
        OR pg_column_size(v_user) + pg_column_size(v_context)
        > (p_cfg ->> 'errors.max_message_length')::integer
        OR jsonb_path_exists(jsonb_build_array(v_user, v_context), 'strict $.**{9}') THEN
        RETURN NULL;
    END IF;
    IF p_pattern IS NOT NULL
        AND monitoring._may_hold_secrets(v_user::text || v_context::text, p_pattern, p_likes) THEN
        v_user := monitoring.scrub_with(v_user, p_pattern, p_safe);
        v_context := monitoring.scrub_with(v_context, p_pattern, p_safe);
    END IF;
    RETURN coalesce(monitoring._user_key(v_user, v_context), '');
END
$$;
