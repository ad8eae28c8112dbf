-- Scaling out on Citus: monitoring.distribute(), run once on a Citus coordinator after the
-- install (and again after each upgrade: it is idempotent, and an upgrade's CREATE OR REPLACE
-- brings back what it changed in functions and views). docs/citus-notes.md says what Citus refused
-- and why each table is where it is.
--
-- The hot paths are single-shard: a capture writes its event and its count to the shard of
-- its issue; a trace by id reads the shard of its trace id. Tables written once per new key
-- and joined to those (issues, operations, resources, series) are reference tables, copied on
-- every node. The rest stays on the coordinator, which every call goes through: the capture
-- and ingest functions run there, and Citus sends each statement on a distributed table to
-- the worker that holds the shard.

-- Where each table goes, and why (the coordinator's reasons are what Citus refused).
CREATE OR REPLACE FUNCTION monitoring._citus_layout(
    OUT relation text, OUT placement text, OUT distribution_column text,
    OUT colocate_with text, OUT reason text
)
RETURNS SETOF record
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT * FROM (VALUES
    -- by issue: a capture's event, its count and the issue's events read are single-shard
    (
        'error_events', 'distributed', 'issue_id', NULL,
        'an issue''s events on one shard; its primary key gains issue_id'
    ),
    ('error_issue_counts', 'distributed', 'issue_id', 'error_events', 'written by every capture'),
    ('error_issue_users', 'distributed', 'issue_id', 'error_events', 'joined to the counts'),
    ('error_issue_sampled', 'distributed', 'issue_id', 'error_events', 'joined to the counts'),
    ('error_issue_regressions', 'distributed', 'issue_id', 'error_events', 'per issue'),
    -- by trace: spans, a trace's summary rows and its orphans on one shard
    ('trace_spans', 'distributed', 'trace_id', NULL, 'a trace by id is single-shard'),
    (
        'trace_parts', 'distributed', 'trace_id', 'trace_spans',
        'monitoring.traces; its primary key gains trace_id'
    ),
    ('trace_orphans', 'distributed', 'trace_id', 'trace_spans', 'the fold joins them to spans'),
    -- logs: trace_id is often NULL, which a distribution column can not be
    ('log_records', 'distributed', 'time', NULL, 'spread evenly; trace_id may be NULL'),
    ('metric_data_points', 'distributed', 'series_id', NULL, 'a series'' points on one shard'),
    -- written once per new key, joined to the distributed tables on every read
    ('error_issues', 'reference', NULL, NULL, 'joined to events and counts; looked up by fingerprint'),
    ('trace_operations', 'reference', NULL, NULL, 'joined to spans'),
    ('otel_resources', 'reference', NULL, NULL, 'joined to spans and logs'),
    ('metric_series', 'reference', NULL, NULL, 'joined to points'),
    -- the coordinator's
    (
        'setting_definitions', 'coordinator', NULL, NULL,
        'a trigger keeps settings_snapshot: Citus refuses tables with triggers'
    ),
    ('settings', 'coordinator', NULL, NULL, 'as setting_definitions (a trigger)'),
    ('settings_snapshot', 'coordinator', NULL, NULL, 'read by the functions, which run here'),
    (
        'issue_activity', 'coordinator', NULL, NULL,
        'its trigger queues alerts; its foreign key to error_issues is dropped (Citus makes a '
        'local table that refers to a reference table a Citus local table, which it can not do '
        'with a table whose identity sequence an extension owns)'
    ),
    (
        'alert_rule_state', 'coordinator', NULL, NULL,
        'as issue_activity: its foreign key to error_issues is dropped'
    ),
    ('alert_channels', 'coordinator', NULL, NULL, 'alerts run here (worker, triggers)'),
    ('alert_rules', 'coordinator', NULL, NULL, 'alerts run here (worker, triggers)'),
    ('alert_outbox', 'coordinator', NULL, NULL, 'a trigger sends the wake-up; SKIP LOCKED claims'),
    (
        'releases', 'coordinator', NULL, NULL,
        'written by every capture with a release: a reference table would make each one a '
        'write on every node'
    ),
    ('error_totals', 'coordinator', NULL, NULL, 'written by the fold, read by scrapes'),
    (
        'cache_entries', 'coordinator', NULL, NULL,
        'UNLOGGED and latency-bound: a hop to a worker would double a cache read'
    ),
    ('cache_counters', 'coordinator', NULL, NULL, 'as cache_entries'),
    (
        'trace_operation_minutes', 'coordinator', NULL, NULL,
        'appended by every ingest and folded here; small (per operation and minute)'
    ),
    ('trace_edge_minutes', 'coordinator', NULL, NULL, 'as trace_operation_minutes'),
    ('trace_operation_totals', 'coordinator', NULL, NULL, 'one row per operation'),
    ('ingest_keys', 'coordinator', NULL, NULL, 'checked by serve, which talks to the coordinator'),
    ('ingest_drops', 'coordinator', NULL, NULL, 'counters of the coordinator''s ingest'),
    ('sentry_projects', 'coordinator', NULL, NULL, 'with ingest_keys (a foreign key)'),
    ('sentry_outcomes', 'coordinator', NULL, NULL, 'counters per envelope, written here'),
    ('sentry_outcome_totals', 'coordinator', NULL, NULL, 'as sentry_outcomes'),
    ('sentry_quota_usage', 'coordinator', NULL, NULL, 'as sentry_outcomes'),
    ('maintenance_runs', 'coordinator', NULL, NULL, 'one row'),
    ('installed_versions', 'coordinator', NULL, NULL, 'the install''s own'),
    (
        'database_statement_snapshots', 'coordinator', NULL, NULL,
        'the coordinator''s pg_stat_statements'
    )
    ) AS l (relation, placement, distribution_column, colocate_with, reason);
$$;

COMMENT ON FUNCTION monitoring._citus_layout() IS
'Where monitoring.distribute() puts each table on Citus, and why';

-- The schema changes Citus needs (docs/citus-notes.md), on this node's tables: keys of distributed
-- tables include the distribution column; coordinator tables may not refer to a reference
-- table (see _citus_layout). distribute() makes them on the coordinator and on each worker:
-- a worker's copy of each table (the shell Citus plans on there, and to which it adds each
-- new partition) is made by CREATE EXTENSION on that worker, not from the coordinator's
-- table, and a partition Citus creates there with the new key, attached to a parent with the
-- old one, gets both: "multiple primary keys for table ... are not allowed". Idempotent: a
-- key already changed is left alone (on the coordinator, it is a distributed table's then).
CREATE OR REPLACE FUNCTION monitoring._citus_keys()
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_key record;
BEGIN
    FOR v_key IN
        SELECT * FROM (VALUES
            ('error_events', 'event_id, occurred_at, issue_id'),
            ('trace_parts', 'trace_id, id')
        ) AS k (relation, columns)
    LOOP
        IF NOT EXISTS (
            SELECT FROM pg_catalog.pg_constraint AS c
            WHERE c.conrelid = format('monitoring.%I', v_key.relation)::regclass
                AND pg_catalog.pg_get_constraintdef(c.oid) = format('PRIMARY KEY (%s)', v_key.columns)
        ) THEN
            EXECUTE format(
                'ALTER TABLE monitoring.%I DROP CONSTRAINT IF EXISTS %I, '
                'ADD CONSTRAINT %I PRIMARY KEY (%s)',
                v_key.relation, v_key.relation || '_pkey', v_key.relation || '_pkey', v_key.columns
            );
        END IF;
    END LOOP;
    ALTER TABLE monitoring.issue_activity
    DROP CONSTRAINT IF EXISTS issue_activity_issue_id_fkey;
    ALTER TABLE monitoring.alert_rule_state
    DROP CONSTRAINT IF EXISTS alert_rule_state_issue_id_fkey;
END
$$;

COMMENT ON FUNCTION monitoring._citus_keys() IS
'The keys and foreign keys monitoring.distribute() changes for Citus, on this node';

-- What readies a worker's database, run there by distribute() (each worker it knows) and by
-- add_worker() (a new one): pg_monitoring at the coordinator's version, then _citus_keys().
-- A database that had pg_monitoring before Citus (any database in use) has none on its
-- workers: Citus would create it there only when distributing the first table, with the old
-- keys. Without DDL propagation, which only the coordinator may do. One DO block because
-- run_command_on_workers reports only the first result of several statements (a later one's
-- failure went unseen). NULL for a plain-script install (no extension): Citus then makes
-- the workers' tables from the coordinator's, keys included.
CREATE OR REPLACE FUNCTION monitoring._citus_worker_command()
RETURNS text
LANGUAGE sql
STABLE
AS $$
    SELECT format(
        'DO $do$ BEGIN '
        'PERFORM pg_catalog.set_config(%L, %L, true); '
        'CREATE EXTENSION IF NOT EXISTS pg_monitoring VERSION %L; '
        'PERFORM monitoring._citus_keys(); '
        'END $do$',
        'citus.enable_ddl_propagation', 'off', e.extversion
    )
    FROM pg_catalog.pg_extension AS e
    WHERE e.extname = 'pg_monitoring';
$$;

COMMENT ON FUNCTION monitoring._citus_worker_command() IS
'The command that readies a Citus worker''s database for monitoring.distribute()''s tables';

CREATE OR REPLACE FUNCTION monitoring.distribute()
RETURNS TABLE (relation regclass, placement text, reason text)
LANGUAGE plpgsql
AS $$
DECLARE
    v_table record;
    v_function regprocedure;
    v_failures text[];
    v_worker_command text := monitoring._citus_worker_command();
    v_ddl_propagation text;
    v_owner oid := (
        SELECT c.relowner FROM pg_catalog.pg_class AS c
        WHERE c.oid = 'monitoring.error_events'::regclass
    );
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'monitoring.distribute() needs Citus: run it on a Citus coordinator, '
            'after CREATE EXTENSION citus and citus_add_node for each worker'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user, v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'monitoring.distribute() must run as the owner of the monitoring schema''s '
            'tables (%) or a superuser', v_owner::regrole
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    v_ddl_propagation := current_setting('citus.enable_ddl_propagation');

    -- The workers first (_citus_worker_command says why): run_command_on_workers runs in
    -- transactions of its own, which would wait for the locks this one takes on the workers
    -- once it distributes a table.
    IF v_worker_command IS NOT NULL THEN
        SELECT array_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result))
        INTO v_failures
        FROM run_command_on_workers(v_worker_command) AS w
        WHERE NOT w.success;
        IF v_failures IS NOT NULL THEN
            RAISE EXCEPTION 'monitoring.distribute() could not ready the workers'' tables: %',
                array_to_string(v_failures, '; ');
        END IF;
    END IF;

    -- Citus can not plan a generic plan for a statement on a distributed table that takes
    -- parameters, unless it is a single-table filter on the distribution column: the
    -- functions that force one for speed on a single server plan each call instead.
    FOR v_function IN
        SELECT p.oid FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = 'monitoring'::regnamespace
            AND 'plan_cache_mode=force_generic_plan' = ANY(p.proconfig)
    LOOP
        EXECUTE format('ALTER FUNCTION %s RESET plan_cache_mode', v_function);
    END LOOP;

    PERFORM monitoring._citus_keys();

    FOR v_table IN
        SELECT
            format('monitoring.%I', l.relation)::regclass AS relation,
            l.placement,
            l.distribution_column,
            l.colocate_with
        FROM monitoring._citus_layout() AS l
        WHERE l.placement <> 'coordinator'
            AND NOT EXISTS (
                SELECT FROM pg_catalog.pg_dist_partition AS d
                WHERE d.logicalrelid = format('monitoring.%I', l.relation)::regclass
            )
        -- reference tables first, then each colocation group's first table before the others
        ORDER BY l.placement DESC, l.colocate_with IS NOT NULL
    LOOP
        IF v_table.placement = 'reference' THEN
            PERFORM create_reference_table(v_table.relation);
        ELSE
            PERFORM create_distributed_table(
                v_table.relation, v_table.distribution_column,
                colocate_with => coalesce('monitoring.' || quote_ident(v_table.colocate_with), 'default')
            );
        END IF;
        -- Citus copies a table's rows into its shards and leaves the coordinator's own copy
        -- on disk, unread, until this: not only space, since PostgreSQL still checks those
        -- rows when a partition is attached on the coordinator (maintenance reattaching
        -- DEFAULT after moving a day's rows out failed, "partition constraint of relation
        -- error_events_default is violated by some row"). Partitions included.
        PERFORM truncate_local_data_after_distributing_table(v_table.relation);
    END LOOP;

    -- The issues view's LEFT JOIN LATERAL of an issue (a reference table) to its counts (a
    -- distributed one) is a join Citus refuses; a join to the counts grouped by issue is not.
    -- A single server keeps the lateral form: it reads only the counts of the issues asked for.
    CREATE OR REPLACE VIEW monitoring.issues AS
    SELECT
        g.id,
        g.service,
        g.environment,
        g.fingerprint,
        g.fingerprint_source,
        g.title,
        g.culprit,
        g.exception_type,
        g.level,
        g.platform,
        g.status,
        CASE
            WHEN g.status <> 'unresolved' THEN NULL
            WHEN g.substatus IS NOT NULL AND g.substatus_at > pg_catalog.now() - interval '7 days'
                THEN g.substatus
            WHEN least(g.first_seen, p.first_seen) > pg_catalog.now() - interval '7 days'
                THEN 'new'
            ELSE 'ongoing'
        END AS substatus,
        least(g.first_seen, p.first_seen) AS first_seen,
        greatest(g.last_seen, p.last_seen) AS last_seen,
        g.times_seen + coalesce(p.events, 0) AS times_seen,
        g.users_seen + coalesce(p.new_users, 0) AS users_seen,
        g.first_release,
        g.assignee,
        g.assigned_at,
        g.resolved_at,
        g.resolved_by,
        g.resolution,
        g.resolved_in_release,
        g.ignored_at,
        g.ignored_by,
        g.ignore_until,
        g.ignore_until_times_seen,
        g.ignore_until_users_seen,
        g.events_sampled_out + coalesce(p.sampled, 0) AS events_sampled_out,
        g.sampling_since,
        g.sampling_until
    FROM monitoring.error_issues AS g
    LEFT JOIN (
        SELECT
            c.issue_id,
            pg_catalog.count(*) AS events,
            pg_catalog.min(c.occurred_at) AS first_seen,
            pg_catalog.max(c.occurred_at) AS last_seen,
            pg_catalog.count(*) FILTER (WHERE c.sampled) AS sampled,
            pg_catalog.count(DISTINCT c.user_key) FILTER (
                WHERE NOT EXISTS (
                    SELECT FROM monitoring.error_issue_users AS u
                    WHERE u.issue_id = c.issue_id AND u.user_key = c.user_key
                )
            ) AS new_users
        FROM monitoring.error_issue_counts AS c
        GROUP BY c.issue_id
    ) AS p ON g.id = p.issue_id;

    -- monitoring.traces adds up a trace's parts in a LATERAL subquery correlated to its first
    -- part: Citus does not carry a filter on the outer trace_id into it, so a trace by id read
    -- all 32 shards. Grouped by trace_id instead, the filter reaches the parts and the plan
    -- is one shard's. A single server keeps the lateral form: recent_traces joins the view
    -- laterally to a few trace ids, which the grouped form would add up for every trace.
    CREATE OR REPLACE VIEW monitoring.traces AS
    SELECT
        a.trace_id,
        a.start_time,
        round((extract(EPOCH FROM a.end_time - a.start_time) * 1000)::numeric, 3) AS duration_ms,
        monitoring._span_status(a.root_status) AS status_code,
        o.service AS root_service,
        o.name AS root_operation,
        a.span_count,
        a.error_count > 0 AS error,
        a.error_count,
        a.end_time,
        a.root_span_id,
        a.last_start,
        a.root_remote
    FROM (
        SELECT
            q.trace_id,
            min(q.first_start) AS start_time,
            max(q.last_start) AS last_start,
            max(q.last_end) AS end_time,
            sum(q.span_count)::bigint AS span_count,
            sum(q.error_count)::bigint AS error_count,
            (
                array_agg(q.root_span_id ORDER BY q.root_remote, q.id)
                FILTER (WHERE q.root_span_id IS NOT NULL)
            )[1] AS root_span_id,
            (
                array_agg(q.root_operation_id ORDER BY q.root_remote, q.id)
                FILTER (WHERE q.root_span_id IS NOT NULL)
            )[1] AS root_operation_id,
            (
                array_agg(q.root_status ORDER BY q.root_remote, q.id)
                FILTER (WHERE q.root_span_id IS NOT NULL)
            )[1] AS root_status,
            (
                array_agg(q.root_remote ORDER BY q.root_remote, q.id)
                FILTER (WHERE q.root_span_id IS NOT NULL)
            )[1] AS root_remote
        FROM monitoring.trace_parts AS q
        GROUP BY q.trace_id
    ) AS a
    LEFT JOIN monitoring.trace_operations AS o ON a.root_operation_id = o.id;

    -- recent_traces is a SQL function, and Citus can not plan its statement with parameters
    -- ("could not create distributed plan"): as PL/pgSQL, each call is planned with the
    -- values. The same query otherwise, but for OFFSET 0 in the lateral subquery: without it
    -- PostgreSQL pulls the subquery up, joins the window's trace ids to the grouped traces view
    -- and adds up every trace of each shard first; with it the trace id filter stays inside,
    -- and each shard adds up only the window's traces, by index (as one server's lateral
    -- view does). One server keeps the SQL function, whose plan is measured (docs/citus-notes.md).
    -- On the coordinator only: Citus would send it to the workers over one connection each,
    -- which it refuses after this transaction's parallel work on the shards ("cannot run
    -- function command because there was a parallel operation"); every call comes through
    -- the coordinator.
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
    CREATE OR REPLACE FUNCTION monitoring.recent_traces(
        p_since interval DEFAULT '1 day',
        p_service text DEFAULT NULL,
        p_errors boolean DEFAULT FALSE,
        p_slowest boolean DEFAULT FALSE,
        p_limit integer DEFAULT 20
    )
    RETURNS SETOF monitoring.traces
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $function$
    BEGIN
        RETURN QUERY
        SELECT t.*
        FROM (
            SELECT DISTINCT p.trace_id
            FROM monitoring.trace_parts AS p
            WHERE p.first_start >= now() - coalesce(p_since, interval '1 day')
        ) AS c
        CROSS JOIN LATERAL (
            SELECT * FROM monitoring.traces AS v WHERE v.trace_id = c.trace_id
            OFFSET 0
        ) AS t
        WHERE (p_service IS NULL OR t.root_service = p_service)
            AND (NOT p_errors OR t.error)
        ORDER BY CASE WHEN p_slowest THEN t.duration_ms END DESC NULLS LAST, t.start_time DESC
        LIMIT greatest(p_limit, 0);
    END
    $function$;
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', v_ddl_propagation, true);

    RETURN QUERY
    SELECT
        c.oid::regclass,
        coalesce(l.placement, 'coordinator'),
        coalesce(
            CASE l.placement
                WHEN 'distributed' THEN format(
                    'by %s%s: %s', l.distribution_column,
                    ', colocated with ' || l.colocate_with, l.reason
                )
                ELSE l.reason
            END,
            'not placed by distribute()'
        )
    FROM pg_catalog.pg_class AS c
    LEFT JOIN monitoring._citus_layout() AS l ON c.relname = l.relation
    WHERE c.relnamespace = 'monitoring'::regnamespace
        AND c.relkind IN ('r', 'p')
        AND NOT c.relispartition
    ORDER BY 2, c.relname;
END
$$;

COMMENT ON FUNCTION monitoring.distribute() IS
'On a Citus coordinator, after the install and after each upgrade: distributes events, spans, '
'logs and metric points, makes issues, operations, resources and series reference tables, and '
'returns where each table is and why. Run by the schema''s owner or a superuser';

-- A worker added after distribute() would get pg_monitoring from Citus with the old keys, and
-- citus_add_node fails there as soon as a table has a daily partition ("multiple primary
-- keys"): the new worker's database is readied first, over a connection of its own.
CREATE OR REPLACE FUNCTION monitoring.add_worker(p_host text, p_port integer DEFAULT 5432)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_command text := monitoring._citus_worker_command();
    v_ran record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'monitoring.add_worker() needs Citus: run it on a Citus coordinator, '
            'after monitoring.distribute()'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF v_command IS NOT NULL THEN
        SELECT r.success, r.result INTO v_ran
        FROM master_run_on_worker(ARRAY[p_host], ARRAY[p_port], ARRAY[v_command], false) AS r;
        IF NOT v_ran.success THEN
            RAISE EXCEPTION 'monitoring.add_worker(): could not ready %:%: %', p_host, p_port, v_ran.result
                USING ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'The worker needs a database of the same name with CREATE EXTENSION citus '
                'and the pg_monitoring files installed';
        END IF;
    END IF;
    RETURN citus_add_node(p_host, p_port);
END
$$;

COMMENT ON FUNCTION monitoring.add_worker(text, integer) IS
'On a Citus coordinator after monitoring.distribute(): readies a new worker''s database for '
'pg_monitoring''s tables, then citus_add_node; returns the node id';

REVOKE ALL ON FUNCTION monitoring.distribute() FROM PUBLIC;
REVOKE ALL ON FUNCTION monitoring.add_worker(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION monitoring._citus_layout() FROM PUBLIC;
REVOKE ALL ON FUNCTION monitoring._citus_keys() FROM PUBLIC;
REVOKE ALL ON FUNCTION monitoring._citus_worker_command() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION monitoring.distribute() TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.add_worker(text, integer) TO monitoring_admin;
