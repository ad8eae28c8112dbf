-- The errors' maintenance steps, run by run_maintenance (core/maintenance.sql): the fold of
-- buffered counts into issues, daily event partitions, retention, and ignores whose condition
-- is met.

-- Adds the events counted since the last fold to their issues. Concurrent captures are
-- not blocked and not lost: rows they commit after the DELETE's snapshot stay for the next
-- fold. Each event is folded exactly once, with its issue's row locked, which makes the
-- fold the place where threshold alert rules see a count cross a threshold exactly once
-- (monitoring._alert_after_fold in alerts/firing.sql).
-- The folded rows are held in arrays, not temporary tables: run_maintenance runs this as
-- the schema owner, and a table the caller created first in pg_temp (with a trigger or a
-- DEFAULT calling a function of theirs) would run their code with the owner's rights.
CREATE OR REPLACE FUNCTION monitoring.fold_error_counts()
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_events bigint;
    -- per issue: id, events, first and last occurrence
    v_issues bigint[];
    v_counts bigint[];
    v_firsts timestamptz[];
    v_lasts timestamptz[];
    v_sampled bigint[];
    -- per issue and user: the same
    v_user_issues bigint[];
    v_user_keys text[];
    v_user_firsts timestamptz[];
    v_user_lasts timestamptz[];
    -- per issue and event level: events
    v_level_issues bigint[];
    v_levels text[];
    v_level_counts bigint[];
    v_level_sampled bigint[];
    -- per issue folded: its counts after the fold and what the fold added
    v_folded bigint[];
    v_times_seen bigint[];
    v_added bigint[];
    v_users_seen bigint[];
BEGIN
    WITH moved AS (
        DELETE FROM monitoring.error_issue_counts
        RETURNING issue_id, occurred_at, user_key, level, sampled
    ),

    -- storm protection's events counted and not stored, by minute, for frequency alert rules
    sampled AS (
        INSERT INTO monitoring.error_issue_sampled AS s (issue_id, minute, events)
        SELECT m.issue_id, date_trunc('minute', m.occurred_at), count(*)
        FROM moved AS m
        WHERE m.sampled
        GROUP BY m.issue_id, date_trunc('minute', m.occurred_at)
        ON CONFLICT (issue_id, minute) DO UPDATE SET events = s.events + excluded.events
    ),

    -- one pass over the events for both the issues' counts and the levels' (Prometheus's)
    by_level AS (
        SELECT m.issue_id, m.level, count(*) AS n, min(m.occurred_at) AS first,
            max(m.occurred_at) AS last, count(*) FILTER (WHERE m.sampled) AS sampled
        FROM moved AS m
        GROUP BY m.issue_id, m.level
    )

    SELECT
        coalesce(e.events, 0),
        e.issues, e.counts, e.firsts, e.lasts, e.sampled,
        u.issues, u.keys, u.firsts, u.lasts,
        l.issues, l.levels, l.counts, l.sampled
    INTO
        v_events, v_issues, v_counts, v_firsts, v_lasts, v_sampled,
        v_user_issues, v_user_keys, v_user_firsts, v_user_lasts,
        v_level_issues, v_levels, v_level_counts, v_level_sampled
    FROM (
        SELECT
            sum(g.n)::bigint AS events,
            array_agg(g.issue_id ORDER BY g.issue_id) AS issues,
            array_agg(g.n ORDER BY g.issue_id) AS counts,
            array_agg(g.first ORDER BY g.issue_id) AS firsts,
            array_agg(g.last ORDER BY g.issue_id) AS lasts,
            array_agg(g.sampled ORDER BY g.issue_id) AS sampled
        FROM (
            SELECT b.issue_id, sum(b.n)::bigint AS n, min(b.first) AS first,
                max(b.last) AS last, sum(b.sampled)::bigint AS sampled
            FROM by_level AS b
            GROUP BY b.issue_id
        ) AS g
    ) AS e,
    (
        SELECT
            array_agg(k.issue_id) AS issues,
            array_agg(k.user_key) AS keys,
            array_agg(k.first) AS firsts,
            array_agg(k.last) AS lasts
        FROM (
            SELECT m.issue_id, m.user_key, min(m.occurred_at) AS first,
                max(m.occurred_at) AS last
            FROM moved AS m
            WHERE m.user_key IS NOT NULL
            GROUP BY m.issue_id, m.user_key
        ) AS k
    ) AS u,
    (
        SELECT
            array_agg(b.issue_id) AS issues,
            array_agg(b.level) AS levels,
            array_agg(b.n) AS counts,
            array_agg(b.sampled) AS sampled
        FROM by_level AS b
    ) AS l;
    IF v_events = 0 THEN
        RETURN 0;
    END IF;

    -- Issue rows in id order, so two folds, or a fold and a lifecycle change, never deadlock.
    PERFORM FROM monitoring.error_issues AS g
    WHERE g.id = ANY(v_issues)
    ORDER BY g.id
    FOR UPDATE;

    WITH new_users AS (
        INSERT INTO monitoring.error_issue_users AS u (issue_id, user_key, first_seen, last_seen)
        SELECT k.issue_id, k.user_key, k.first, k.last
        FROM unnest(v_user_issues, v_user_keys, v_user_firsts, v_user_lasts)
            AS k (issue_id, user_key, first, last)
        ON CONFLICT DO NOTHING
        RETURNING u.issue_id
    ),

    users AS (
        SELECT n.issue_id, count(*) AS n FROM new_users AS n GROUP BY n.issue_id
    ),

    folded AS (
        UPDATE monitoring.error_issues AS g
        SET times_seen = g.times_seen + e.n,
            users_seen = g.users_seen + coalesce(u.n, 0),
            first_seen = least(g.first_seen, e.first),
            last_seen = greatest(g.last_seen, e.last),
            events_sampled_out = g.events_sampled_out + e.sampled
        FROM unnest(v_issues, v_counts, v_firsts, v_lasts, v_sampled)
            AS e (issue_id, n, first, last, sampled)
        LEFT JOIN users AS u ON e.issue_id = u.issue_id
        WHERE g.id = e.issue_id
        RETURNING g.id, g.times_seen, e.n, g.users_seen
    )

    SELECT
        array_agg(f.id ORDER BY f.id), array_agg(f.times_seen ORDER BY f.id),
        array_agg(f.n ORDER BY f.id), array_agg(f.users_seen ORDER BY f.id)
    INTO v_folded, v_times_seen, v_added, v_users_seen
    FROM folded AS f;

    -- Users seen again: their last sighting moves on (new ones were inserted with theirs).
    UPDATE monitoring.error_issue_users AS u
    SET last_seen = k.last
    FROM unnest(v_user_issues, v_user_keys, v_user_lasts) AS k (issue_id, user_key, last)
    WHERE u.issue_id = k.issue_id AND u.user_key = k.user_key AND u.last_seen < k.last;

    -- Prometheus's counters: events by their level; an issue is new when this fold added its
    -- first events (it had none before), and regressed once per regression its captures
    -- recorded. Regressions committed after this fold's events were read wait for the next.
    WITH regressions AS (
        DELETE FROM monitoring.error_issue_regressions
        RETURNING issue_id
    ),

    added (issue_id, level, events, sampled, new_issues, regressed_issues) AS (
        SELECT v.issue_id, v.level, v.n, v.sampled, 0, 0
        FROM unnest(v_level_issues, v_levels, v_level_counts, v_level_sampled)
            AS v (issue_id, level, n, sampled)
        UNION ALL
        SELECT f.issue_id, NULL, 0, 0, 1, 0
        FROM unnest(v_folded, v_times_seen, v_added) AS f (issue_id, times_seen, n)
        WHERE f.times_seen = f.n
        UNION ALL
        SELECT r.issue_id, NULL, 0, 0, 0, 1
        FROM regressions AS r
    )

    INSERT INTO monitoring.error_totals AS t (
        service, environment, level, events, events_sampled_out, new_issues, regressed_issues
    )
    SELECT
        g.service, g.environment, coalesce(a.level, g.level), sum(a.events), sum(a.sampled),
        sum(a.new_issues), sum(a.regressed_issues)
    FROM added AS a
    INNER JOIN monitoring.error_issues AS g ON a.issue_id = g.id
    GROUP BY g.service, g.environment, coalesce(a.level, g.level)
    ON CONFLICT (service, environment, level) DO UPDATE
        SET
            events = t.events + excluded.events,
            events_sampled_out = t.events_sampled_out + excluded.events_sampled_out,
            new_issues = t.new_issues + excluded.new_issues,
            regressed_issues = t.regressed_issues + excluded.regressed_issues;

    PERFORM monitoring._alert_after_fold(v_folded, v_times_seen, v_added, v_users_seen);
    RETURN v_events;
END
$$;

COMMENT ON FUNCTION monitoring.fold_error_counts() IS
'Adds the events counted since the last fold to their issues; returns how many';

-- The daily partition for p_day (UTC). Events of that day that landed in the DEFAULT
-- partition (maintenance did not run in time) move into it.
CREATE OR REPLACE FUNCTION monitoring._create_event_partition(p_day date)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_name text := format('error_events_p%s', to_char(p_day, 'YYYYMMDD'));
    v_from timestamptz := p_day::timestamp AT TIME ZONE 'UTC';
    v_to timestamptz := (p_day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    -- on Citus as the other daily partitions are (core/partitions.sql)
    IF monitoring._distributed('monitoring.error_events') THEN
        RETURN monitoring._create_daily_partition('monitoring.error_events', 'occurred_at', p_day);
    END IF;
    IF to_regclass(format('monitoring.%I', v_name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Captures must not insert while the partition bounds change: one that chose its
    -- partition before the ATTACH would put a row of that day into DEFAULT and fail its
    -- constraint. This lock waits for running captures and holds new ones back for the
    -- few milliseconds the attach takes.
    LOCK TABLE monitoring.error_events IN SHARE ROW EXCLUSIVE MODE;
    EXECUTE format(
        'CREATE TABLE monitoring.%I '
        '(LIKE monitoring.error_events INCLUDING DEFAULTS INCLUDING COMPRESSION)',
        v_name
    );
    -- Events of that day that landed in DEFAULT (maintenance did not run in time) move.
    EXECUTE format(
        'WITH moved AS (DELETE FROM monitoring.error_events_default AS d '
        'WHERE d.occurred_at >= $1 AND d.occurred_at < $2 RETURNING d.*) '
        'INSERT INTO monitoring.%I SELECT * FROM moved',
        v_name
    ) USING v_from, v_to;
    -- The bounds in UTC ISO form: %L of a timestamptz would print it in the session's
    -- DateStyle and TimeZone, whose abbreviation may read back as another zone.
    EXECUTE format(
        'ALTER TABLE monitoring.error_events ATTACH PARTITION monitoring.%I '
        'FOR VALUES FROM (%L) TO (%L)',
        v_name, to_char(p_day, 'YYYY-MM-DD') || ' 00:00:00+00',
        to_char(p_day + 1, 'YYYY-MM-DD') || ' 00:00:00+00'
    );
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION monitoring.ensure_error_partitions(p_days_ahead integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_ahead integer := coalesce(
        p_days_ahead, (monitoring.get_setting('errors.partition_days_ahead'))::integer
    );
    v_created integer := 0;
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    -- A capture inside a long application transaction holds its lock on the events table:
    -- rather than stall every other capture behind our lock request, give up and retry
    -- at the next run.
    PERFORM set_config('lock_timeout', '500ms', true);
    BEGIN
        FOR i IN 0..v_ahead LOOP
            IF monitoring._create_event_partition(v_today + i) THEN
                v_created := v_created + 1;
            END IF;
        END LOOP;
    EXCEPTION WHEN lock_not_available THEN
        RAISE NOTICE 'pg_monitoring: events table busy, partitions left for the next run';
    END;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    RETURN v_created;
END
$$;

COMMENT ON FUNCTION monitoring.ensure_error_partitions(integer) IS
'Creates the daily event partitions from today (UTC) to p_days_ahead days ahead; returns '
'how many it created';

-- Drops partitions wholly older than the retention window (instant, no dead rows), deletes
-- old rows that sit in the DEFAULT partition, and issues not seen within the window.
CREATE OR REPLACE FUNCTION monitoring.apply_error_retention()
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_days integer := (monitoring.get_setting('errors.retention_days'))::integer;
    v_cutoff timestamptz := now() - make_interval(days => v_days);
    v_partition record;
    v_dropped integer := 0;
    v_default_rows bigint;
    v_issues bigint;
    v_old bigint[];
    v_gone bigint[];
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    -- DROP locks the parent like ATTACH does (see ensure_error_partitions).
    PERFORM set_config('lock_timeout', '500ms', true);
    FOR v_partition IN
        SELECT c.relname
        FROM pg_catalog.pg_inherits AS i
        INNER JOIN pg_catalog.pg_class AS c ON i.inhrelid = c.oid
        WHERE i.inhparent = 'monitoring.error_events'::regclass
            AND c.relname ~ E'^error_events_p\\d{8}$'
            AND (to_date(substr(c.relname, 15), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
            <= v_cutoff
        ORDER BY c.relname
    LOOP
        BEGIN
            EXECUTE format('DROP TABLE monitoring.%I', v_partition.relname);
            v_dropped := v_dropped + 1;
        EXCEPTION WHEN lock_not_available THEN
            EXIT;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);

    DELETE FROM monitoring.error_events_default AS d WHERE d.occurred_at < v_cutoff;
    GET DIAGNOSTICS v_default_rows = ROW_COUNT;
    -- storm protection's counts go with the events they stand for
    DELETE FROM monitoring.error_issue_sampled AS s WHERE s.minute < v_cutoff;

    -- Issues not seen within the window, locked first. One a capture locked is skipped, to
    -- come up at the next run: that capture found it old (see _ingest) and is adding an event
    -- this transaction can not see. Then, under the locks and in a new snapshot, the check
    -- for events and counts sees every capture committed before: no other can add one now.
    v_old := ARRAY(
        SELECT g.id FROM monitoring.error_issues AS g
        WHERE g.last_seen < v_cutoff
        ORDER BY g.id
        FOR UPDATE SKIP LOCKED
    );
    -- Of those, the ones with no event and no count left: an issue goes with its last event,
    -- and one in a partition not dropped yet (the cutoff falls inside its day) keeps the
    -- issue until the next day. Computed apart from the DELETE, whose other tables then name
    -- only the ids: Citus refuses a DELETE on a reference table (error_issues) that reads a
    -- distributed one.
    v_gone := ARRAY(
        SELECT o.id FROM unnest(v_old) AS o (id)
        EXCEPT
        SELECT c.issue_id FROM monitoring.error_issue_counts AS c WHERE c.issue_id = ANY(v_old)
        EXCEPT
        SELECT e.issue_id FROM monitoring.error_events AS e WHERE e.issue_id = ANY(v_old)
    );
    -- What refers to an issue goes with it. The foreign keys of issue_activity and
    -- alert_rule_state would cascade on one server, but monitoring.distribute() drops them
    -- (docs/citus-notes.md): deleted here on both, in the order the cascade would, so retention
    -- has one path; error_issue_users and error_issue_sampled have no foreign key at all.
    DELETE FROM monitoring.issue_activity AS a WHERE a.issue_id = ANY(v_gone);
    DELETE FROM monitoring.alert_rule_state AS r WHERE r.issue_id = ANY(v_gone);
    DELETE FROM monitoring.error_issue_users AS u WHERE u.issue_id = ANY(v_gone);
    DELETE FROM monitoring.error_issue_sampled AS s WHERE s.issue_id = ANY(v_gone);
    DELETE FROM monitoring.error_issues AS g WHERE g.id = ANY(v_gone);
    GET DIAGNOSTICS v_issues = ROW_COUNT;

    RETURN jsonb_build_object(
        'partitions_dropped', v_dropped,
        'default_rows_deleted', v_default_rows,
        'issues_deleted', v_issues
    );
END
$$;

COMMENT ON FUNCTION monitoring.apply_error_retention() IS
'Drops event partitions older than errors.retention_days, deletes older events from the '
'DEFAULT partition and issues last seen before the window';

-- Ignores whose condition is met without an event having woken them: the time ran out, or
-- concurrent events each counted just short of the threshold (a capture sees only committed
-- events). Runs after the fold, serially, so every threshold crossing is caught here at the
-- latest.
-- Each issue is read into a variable and tested here, as a capture tests it (errors/ingest.sql),
-- not in one query passing the row to _ignore_over: on Citus such a query over error_issues (a
-- reference table) runs on a placement, whose row type is the shard's, not error_issues.
CREATE OR REPLACE FUNCTION monitoring.expire_ignores()
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_issue monitoring.error_issues;
    v_reason text;
    v_expired bigint := 0;
BEGIN
    FOR v_issue IN
        SELECT g.*
        FROM monitoring.error_issues AS g
        WHERE g.status = 'ignored'
            AND (
                g.ignore_until IS NOT NULL
                OR g.ignore_until_times_seen IS NOT NULL
                OR g.ignore_until_users_seen IS NOT NULL
            )
        ORDER BY g.id
    LOOP
        v_reason := monitoring._ignore_over(v_issue);
        -- thresholds met by events escalate; a period that merely ended does not
        IF v_reason IS NOT NULL AND monitoring._transition(
            v_issue.id, '{ignored}', 'unresolved',
            CASE WHEN v_reason = 'until time passed' THEN 'unresolved' ELSE 'escalating' END,
            NULL,
            CASE WHEN v_reason = 'until time passed' THEN '{"reason": "ignore period ended"}'
                ELSE jsonb_build_object('reason', v_reason)
            END,
            p_substatus => CASE WHEN v_reason = 'until time passed' THEN NULL ELSE 'escalating' END
        ) THEN
            v_expired := v_expired + 1;
        END IF;
    END LOOP;
    RETURN v_expired;
END
$$;
