-- distribute() on a single server: it refuses, and says what it needs (make test-citus runs
-- it on a Citus cluster: pgtap/citus/).
BEGIN;
SELECT plan(7);

SELECT throws_ok(
    'SELECT * FROM monitoring.distribute()',
    '55000',
    'monitoring.distribute() needs Citus: run it on a Citus coordinator, after CREATE '
    'EXTENSION citus and citus_add_node for each worker',
    'distribute() refuses where the citus extension is not installed'
);

SELECT ok(
    NOT has_function_privilege('monitoring_writer', 'monitoring.distribute()', 'EXECUTE'),
    'writers may not distribute'
);

SELECT throws_ok(
    $$SELECT monitoring.add_worker('worker-3.internal')$$,
    '55000',
    'monitoring.add_worker() needs Citus: run it on a Citus coordinator, after '
    'monitoring.distribute()',
    'add_worker() refuses where the citus extension is not installed'
);

SELECT ok(
    NOT has_function_privilege(
        'monitoring_writer', 'monitoring.add_worker(text, integer)', 'EXECUTE'
    ),
    'writers may not add workers'
);

-- what distribute() and add_worker() run on each worker: the extension at this version, then
-- the keys, in one statement (run_command_on_workers reports only the first of several)
SELECT is(
    monitoring._citus_worker_command(),
    format(
        'DO $do$ BEGIN PERFORM pg_catalog.set_config(%L, %L, true); '
        'CREATE EXTENSION IF NOT EXISTS pg_monitoring VERSION %L; '
        'PERFORM monitoring._citus_keys(); END $do$',
        'citus.enable_ddl_propagation', 'off',
        (
            SELECT e.extversion FROM pg_extension AS e
            WHERE e.extname = 'pg_monitoring'
        )
    ),
    'the worker command installs this version of pg_monitoring, then changes the keys'
);

-- _citus_keys() on one server (what distribute() does on each node), twice: idempotent
SELECT monitoring._citus_keys();
SELECT monitoring._citus_keys();
SELECT is(
    array(
        SELECT pg_get_constraintdef(c.oid) FROM pg_constraint AS c
        WHERE
            c.conrelid IN ('monitoring.error_events'::regclass, 'monitoring.trace_parts'::regclass)
            AND c.contype = 'p'
        ORDER BY c.conrelid::regclass::text
    ),
    ARRAY['PRIMARY KEY (event_id, occurred_at, issue_id)', 'PRIMARY KEY (trace_id, id)'],
    'the keys hold the distribution columns, once'
);

SELECT is(
    (
        SELECT count(*)::integer FROM monitoring._citus_layout() AS l
        WHERE to_regclass('monitoring.' || l.relation) IS NULL
    ),
    0,
    'every table the layout places exists'
);

SELECT * FROM finish();
ROLLBACK;
