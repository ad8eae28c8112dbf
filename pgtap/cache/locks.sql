-- Stampede protection: one caller computes, the others wait or get the stale value.
BEGIN;
SELECT plan(6);

SELECT results_eq(
    $$SELECT status, value FROM monitoring.cache_get_or_lock('report')$$,
    $$VALUES ('compute', NULL::jsonb)$$,
    'the first caller computes'
);
SELECT results_eq(
    $$SELECT status FROM monitoring.cache_get_or_lock('report', 30, 0)$$,
    $$VALUES ('timeout')$$,
    'the next one waits for it, here not at all'
);
SELECT ok(monitoring.cache_set('report', '"v1"', 60), 'the value arrives');
-- now() stands still in a transaction: expire it by hand.
UPDATE monitoring.cache_entries SET expires_at = pg_catalog.now() - interval '1 second'
WHERE key = 'report';
SELECT results_eq(
    $$SELECT status, value FROM monitoring.cache_get_or_lock('report')$$,
    $$VALUES ('compute', '"v1"'::jsonb)$$,
    'the next computer sees the stale value'
);
SELECT results_eq(
    $$SELECT status, value FROM monitoring.cache_get_or_lock('report')$$,
    $$VALUES ('stale', '"v1"'::jsonb)$$,
    'and others get it while it computes'
);
SELECT ok(monitoring.cache_unlock('report'), 'cache_unlock gives the lock up');

SELECT * FROM finish();
ROLLBACK;
