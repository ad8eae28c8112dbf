-- distribute() on a single server: it refuses, and says what it needs (make test-citus runs
-- it on a Citus cluster: pgtap/citus/).
BEGIN;
SELECT plan(3);

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
