-- The cache's bounds: maintenance removes expired rows, then evicts nearest expiry first;
-- between runs, writers evict when the statistics count too many rows. And its stats.
BEGIN;
SELECT plan(6);

SELECT lives_ok($$SELECT monitoring.cache_flush()$$, 'flush empties the cache');
SELECT monitoring.set_setting('cache.max_entries', '3');
SELECT monitoring.cache_set('forever-1', '1');
SELECT monitoring.cache_set('forever-2', '1');
SELECT monitoring.cache_set('soon', '1', 10);
SELECT monitoring.cache_set('later', '1', 1000);
INSERT INTO monitoring.cache_entries (key, value, expires_at)
VALUES ('gone', '1', pg_catalog.now() - interval '1 hour');
SELECT results_eq(
    'SELECT expired_removed, evicted FROM monitoring.run_cache_maintenance()',
    $$VALUES (1::bigint, 1::bigint)$$,
    'maintenance removes the expired row and evicts one'
);
SELECT is(
    (SELECT pg_catalog.array_agg(key ORDER BY key) FROM monitoring.cache_entries),
    ARRAY['forever-1', 'forever-2', 'later'],
    'the entry nearest to expiry was evicted'
);
SELECT monitoring.cache_record_stats(3, 1);
SELECT results_eq(
    'SELECT entries, expired, hits, misses, expired_removed, evicted FROM monitoring.cache_stats()',
    $$VALUES (3::bigint, 0::bigint, 3::bigint, 1::bigint, 1::bigint, 1::bigint)$$,
    'stats count entries, reported hits and misses, cleanup and eviction'
);

-- Between maintenance runs, writers evict when the statistics count too many rows.
SELECT monitoring.set_setting('cache.max_entries', '1');
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', 'SELECT monitoring._cache_evict_if_full()'),
    NULL,
    'the sampled size check runs with a writer''s rights'
);
SELECT is(
    (SELECT pg_catalog.count(*) FROM monitoring.cache_entries),
    1::bigint,
    'and evicted down to cache.max_entries'
);
SELECT monitoring.reset_setting('cache.max_entries');

SELECT * FROM finish();
ROLLBACK;
