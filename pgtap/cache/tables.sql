-- The cache's table: UNLOGGED, and who may use it.
BEGIN;
SELECT plan(3);

SELECT is(
    (
        SELECT relpersistence FROM pg_catalog.pg_class
        WHERE oid = 'monitoring.cache_entries'::regclass
    ),
    'u',
    'cache_entries is UNLOGGED'
);

SELECT is(
    pgtap_helpers.run_as('monitoring_writer', $$SELECT monitoring.cache_set('w', '1', 60)$$),
    NULL,
    'a writer may use the cache'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', 'SELECT monitoring.cache_flush()'),
    '42501',
    'but not flush it'
);

SELECT * FROM finish();
ROLLBACK;
