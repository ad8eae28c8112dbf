-- database_statements and its snapshot without pg_stat_statements in the database (the
-- suite's database does not create it): no rows, a notice, no error. With it:
-- tests/test_database_views.py.
BEGIN;
SELECT plan(6);

SELECT is(monitoring._statements_schema(), NULL, 'pg_stat_statements is not created here');

SELECT is(monitoring.snapshot_statements(), NULL, 'the snapshot does nothing without it');

SELECT is(
    (SELECT count(*)::integer FROM monitoring.database_statements()),
    0,
    'database_statements: no rows'
);

SELECT ok(
    (monitoring.run_maintenance() -> 'failed') IS NULL,
    'and run_maintenance does not fail for it'
);

SELECT throws_ok(
    'SELECT * FROM monitoring.database_statements(0)',
    '22023',
    'p_limit must be from 1 to 1000, not 0',
    'a limit is from 1 to 1,000'
);

SELECT lives_ok(
    $$
        SET LOCAL ROLE monitoring_reader;
        SELECT count(*) FROM monitoring.database_statements(5, FALSE);
        SELECT count(*) FROM monitoring.database_statement_snapshots;
    $$,
    'a reader may read them'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
