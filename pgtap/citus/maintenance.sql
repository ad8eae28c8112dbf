-- On a Citus cluster after monitoring.distribute(): run_maintenance runs every step, a day's
-- partitions exist on every shard of the four partitioned tables, and retention drops an old
-- day's partition on every worker. Not one transaction: the workers' tables are looked up on
-- the workers (run_command_on_workers), which see only what has committed. What this file
-- creates, retention removes.
SELECT plan(8);

-- Citus warns that a temporary function stays on the coordinator, which is where it runs.
SET client_min_messages = error;

-- The partitioned tables and their partition column.
CREATE FUNCTION pg_temp.parents()
RETURNS TABLE (parent regclass, part_column name)
LANGUAGE sql
AS $$
    VALUES
    ('monitoring.error_events'::regclass, 'occurred_at'::name),
    ('monitoring.trace_spans', 'start_time'),
    ('monitoring.log_records', 'time'),
    ('monitoring.metric_data_points', 'time')
$$;

-- Each parent's partition of p_day as Citus's metadata places its shards (p_suffix '' : the
-- parent's own), and as the workers hold them: per parent, node and the shards there.
-- pg_dist_shard, not citus_shards, which leaves out the tables an extension owns.
CREATE FUNCTION pg_temp.placed(p_suffix text)
RETURNS TABLE (parent text, nodeport integer, shards bigint)
LANGUAGE sql
AS $$
    SELECT p.parent::text, n.nodeport, count(*)
    FROM pg_temp.parents() AS p
    INNER JOIN pg_dist_shard AS d ON d.logicalrelid = to_regclass(p.parent::text || p_suffix)
    INNER JOIN pg_dist_placement AS pl ON d.shardid = pl.shardid
    INNER JOIN pg_dist_node AS n ON pl.groupid = n.groupid
    GROUP BY 1, 2
$$;

CREATE FUNCTION pg_temp.placed(p_day date)
RETURNS TABLE (parent text, nodeport integer, shards bigint)
LANGUAGE sql
AS $$
    SELECT * FROM pg_temp.placed('_p' || to_char(p_day, 'YYYYMMDD'))
$$;

CREATE FUNCTION pg_temp.on_workers(p_day date)
RETURNS TABLE (parent text, nodeport integer, shards bigint)
LANGUAGE sql
AS $$
    SELECT 'monitoring.' || r.parent, w.nodeport, r.shards
    FROM run_command_on_workers(format(
        $c$SELECT coalesce(json_agg(json_build_object('parent', p, 'shards', n)), '[]')
        FROM (
            SELECT substring(c.relname FROM '^(.*)_p%s_\d+$') AS p, count(*) AS n
            FROM pg_catalog.pg_class AS c
            WHERE c.relnamespace = 'monitoring'::regnamespace AND c.relkind IN ('r', 'p')
                AND c.relname ~ '_p%s_\d+$'
            GROUP BY 1
        ) AS t$c$,
        to_char(p_day, 'YYYYMMDD'), to_char(p_day, 'YYYYMMDD')
    )) AS w
    CROSS JOIN LATERAL json_to_recordset(w.result::json) AS r (parent text, shards bigint)
    WHERE w.success
$$;

-- A day older than each table's retention window.
CREATE FUNCTION pg_temp.old_day()
RETURNS date
LANGUAGE sql
AS $$
    SELECT (now() AT TIME ZONE 'UTC')::date - 2 - greatest(
        monitoring.get_setting('errors.retention_days')::integer,
        monitoring.get_setting('traces.retention_days')::integer,
        monitoring.get_setting('logs.retention_days')::integer,
        monitoring.get_setting('metrics.retention_days')::integer
    )
$$;

RESET client_min_messages;

SELECT is(
    monitoring.run_maintenance() -> 'failed',
    NULL,
    'run_maintenance on the cluster: no step fails (fold, ignores, partitions, retention, cache)'
);

SELECT set_eq(
    $$ SELECT * FROM pg_temp.placed((now() AT TIME ZONE 'UTC')::date + 1) $$,
    $$ SELECT * FROM pg_temp.placed('') $$,
    'tomorrow''s partition of each table has a shard beside each of its parent''s'
);

SELECT set_eq(
    $$ SELECT * FROM pg_temp.on_workers((now() AT TIME ZONE 'UTC')::date + 1) $$,
    $$ SELECT * FROM pg_temp.placed('') $$,
    'and every worker holds those shards'
);

-- A day older than every retention window, partitioned as maintenance would have.
SELECT ok(
    monitoring._create_event_partition(pg_temp.old_day())
    AND monitoring._create_daily_partition(
        'monitoring.trace_spans', 'start_time', pg_temp.old_day()
    )
    AND monitoring._create_daily_partition(
        'monitoring.log_records', 'time', pg_temp.old_day()
    )
    AND monitoring._create_daily_partition(
        'monitoring.metric_data_points', 'time', pg_temp.old_day()
    ),
    'an old day''s partitions are created on the cluster'
);

SELECT set_eq(
    $$ SELECT * FROM pg_temp.on_workers(pg_temp.old_day()) $$,
    $$ SELECT * FROM pg_temp.placed('') $$,
    'an old day''s partitions are on every worker before retention'
);

SELECT is(
    (
        SELECT
            jsonb_strip_nulls(jsonb_build_object(
                'failed', r -> 'failed',
                'events', r -> 'partitions_dropped',
                'spans', r -> 'span_partitions_dropped',
                'logs', r -> 'log_partitions_dropped',
                'metrics', r -> 'metric_partitions_dropped'
            ))
        FROM (SELECT monitoring.run_maintenance() AS r) AS m
    ),
    '{"events": 1, "spans": 1, "logs": 1, "metrics": 1}'::jsonb,
    'run_maintenance''s retention drops the old day''s partition of each table'
);

SELECT is_empty(
    $$ SELECT * FROM pg_temp.on_workers(pg_temp.old_day()) $$,
    'the old day''s shards are gone from every worker'
);

SELECT is_empty(
    $$ SELECT * FROM pg_temp.placed(pg_temp.old_day()) $$,
    'and from Citus''s metadata'
);

SELECT * FROM finish();
