-- The cache's values: JSON and bytes, TTLs, expired entries, NX and XX, INCR, DEL.
BEGIN;
SELECT plan(55);

-- Values: JSON and bytes, a cached null apart from a miss, a value shaped like any wrapper.
SELECT ok(monitoring.cache_set('j', '{"a": [1, 2]}'), 'cache_set stores JSON');
SELECT results_eq(
    $$SELECT value, value_bytes FROM monitoring.cache_get('j')$$,
    $$VALUES ('{"a": [1, 2]}'::jsonb, NULL::bytea)$$,
    'cache_get returns it'
);
SELECT ok(monitoring.cache_set('null', 'null'), 'a JSON null can be cached');
SELECT results_eq(
    $$SELECT value FROM monitoring.cache_get('null')$$,
    $$VALUES ('null'::jsonb)$$,
    'a cached null is a row holding JSON null'
);
SELECT is_empty($$SELECT * FROM monitoring.cache_get('absent')$$, 'a miss is no row');
SELECT ok(
    monitoring.cache_set('wrapper', '{"value_bytes": "\\x00", "__bytes__": "AA=="}'),
    'a value shaped like an encoding wrapper'
);
SELECT is(
    (SELECT value FROM monitoring.cache_get('wrapper')),
    '{"value_bytes": "\\x00", "__bytes__": "AA=="}'::jsonb,
    'comes back unchanged: bytes have their own column, no wrapper'
);
SELECT ok(monitoring.cache_set_bytes('raw', '\x00ff'::bytea), 'cache_set_bytes stores bytes');
SELECT results_eq(
    $$SELECT value, value_bytes FROM monitoring.cache_get('raw')$$,
    $$VALUES (NULL::jsonb, '\x00ff'::bytea)$$,
    'cache_get returns them in value_bytes'
);
SELECT is(
    (SELECT value FROM monitoring.cache_get_bytes('j')),
    pg_catalog.convert_to('{"a": [1, 2]}', 'UTF8'),
    'cache_get_bytes gives a JSON value as its text'
);
SELECT throws_ok(
    $$SELECT monitoring.cache_set('k', NULL)$$, '22004', NULL, 'an SQL NULL value is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.cache_set(NULL, '1')$$, '22004', 'p_key must not be NULL',
    'a NULL key is refused on write'
);
SELECT is(monitoring.cache_ttl(NULL), -2::bigint, 'and is absent on read');
-- The same with the arguments unknown when planning: cache_set's inlined CASE must still
-- send NULLs to the checked path, not to the bare upsert.
PREPARE pgtap_set (text, jsonb) AS SELECT monitoring.cache_set($1, $2) AS stored;
PREPARE pgtap_set_bytes (text, bytea) AS
SELECT monitoring.cache_set_bytes($1, $2) AS stored;
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT throws_ok(
    $$EXECUTE pgtap_set('k', NULL)$$, '22004', NULL,
    'a NULL value is refused at run time too'
);
SELECT throws_ok(
    $$EXECUTE pgtap_set(NULL, '1')$$, '22004', 'p_key must not be NULL',
    'and a NULL key'
);
SELECT throws_ok(
    $$EXECUTE pgtap_set_bytes('k', NULL)$$, '22004', NULL,
    'and a NULL value of cache_set_bytes'
);
RESET plan_cache_mode;
DEALLOCATE pgtap_set;
DEALLOCATE pgtap_set_bytes;

-- TTLs.
SELECT ok(monitoring.cache_set('t', '1', 100), 'a TTL in seconds');
SELECT is(monitoring.cache_ttl('t'), 100::bigint, 'cache_ttl rounds like Redis');
SELECT is(monitoring.cache_ttl('j'), -1::bigint, 'no expiry is -1');
SELECT is(monitoring.cache_ttl('absent'), -2::bigint, 'a missing key is -2');
SELECT throws_ok(
    $$SELECT monitoring.cache_set('k', '1', 0)$$, '22023',
    'p_ttl must be a number of seconds above 0 and at most 1e12, not 0',
    'a zero TTL is refused, as Redis SET EX 0'
);
SELECT throws_ok(
    $$SELECT monitoring.cache_set('k', '1', -5)$$, '22023', NULL, 'a negative TTL is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.cache_set('k', '1', 'NaN')$$, '22023', NULL, 'a NaN TTL is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.cache_set('k', '1', 1e13)$$, '22023', NULL, 'an absurd TTL is refused'
);
SELECT ok(monitoring.cache_set('k', '1', 1e12), 'a TTL of 1e12 seconds is the largest');
SELECT ok(monitoring.cache_set('frac', '1', 0.5), 'a fractional TTL (Redis PX)');
SELECT ok(monitoring.cache_expire('t', 7), 'cache_expire on a live key');
SELECT is(monitoring.cache_ttl('t'), 7::bigint, 'changes its TTL');
SELECT ok(monitoring.cache_expire('t', NULL), 'cache_expire with NULL');
SELECT is(monitoring.cache_ttl('t'), -1::bigint, 'removes the expiry (PERSIST)');
SELECT ok(NOT monitoring.cache_expire('absent', 5), 'cache_expire on a missing key is false');
SELECT ok(monitoring.cache_expire('t', 0), 'cache_expire with 0');
SELECT is(monitoring.cache_exists('t'), 0::bigint, 'deletes the key, as Redis EXPIRE does');

-- Expired entries are invisible before any cleanup.
INSERT INTO monitoring.cache_entries (key, value, expires_at)
VALUES ('old', '"stale"', pg_catalog.now() - interval '1 second');
SELECT is_empty($$SELECT * FROM monitoring.cache_get('old')$$, 'an expired entry is a miss');
SELECT is(monitoring.cache_ttl('old'), -2::bigint, 'and has no TTL');
SELECT is(
    monitoring.cache_exists('old', 'j', 'j'), 2::bigint, 'exists counts live keys, repeats too'
);
SELECT is(
    (
        SELECT pg_catalog.array_agg(key ORDER BY key)
        FROM monitoring.cache_get_many(ARRAY['old', 'j'])
    ),
    ARRAY['j'],
    'get_many skips it'
);

-- NX and XX.
SELECT ok(NOT monitoring.cache_set('j', '2', p_nx => TRUE), 'NX on a live key stores nothing');
SELECT ok(monitoring.cache_set('old', '"new"', p_nx => TRUE), 'NX on an expired key stores');
SELECT
    ok(
        NOT monitoring.cache_set('nothing', '1', p_xx => TRUE), 'XX on a missing key stores nothing'
    );
SELECT ok(monitoring.cache_set('j', '3', p_xx => TRUE), 'XX on a live key stores');
SELECT is((SELECT value FROM monitoring.cache_get('j')), '3'::jsonb, 'and replaces the value');
SELECT throws_ok(
    $$SELECT monitoring.cache_set('j', '1', p_nx => TRUE, p_xx => TRUE)$$, '22023',
    'p_nx and p_xx exclude each other', 'NX and XX together are refused'
);
SELECT throws_ok(
    $$SELECT monitoring.cache_set('absent-key', '1', -5, p_xx => TRUE)$$, '22023', NULL,
    'XX with a bad TTL is refused even when the key is absent, as in Redis'
);

-- INCR.
SELECT is(monitoring.cache_incr('n'), 1::bigint, 'incr creates a missing key at 0');
SELECT is(monitoring.cache_incr('n', 41), 42::bigint, 'incr by an amount');
SELECT is(monitoring.cache_incr('n', -50), -8::bigint, 'incr by a negative amount');
SELECT ok(monitoring.cache_set_bytes('s', '10', 100), 'a Redis string of digits');
SELECT is(monitoring.cache_incr('s'), 11::bigint, 'is an integer to incr');
SELECT is(monitoring.cache_ttl('s'), 100::bigint, 'incr keeps the TTL');
SELECT ok(monitoring.cache_set_bytes('s', ' 1'), 'a string with a space');
SELECT throws_ok(
    $$SELECT monitoring.cache_incr('s')$$, '22P02',
    $$the value of cache key 's' is not an integer or out of range$$,
    'is no integer to incr, as in Redis'
);
SELECT ok(monitoring.cache_set('s', '9223372036854775807'), 'the largest bigint');
SELECT throws_ok(
    $$SELECT monitoring.cache_incr('s')$$, '22003', NULL, 'incr past it overflows'
);

-- DEL.
SELECT is(monitoring.cache_delete('j', 'j', 'absent', 'old'), 2::bigint, 'delete counts live keys');

SELECT * FROM finish();
ROLLBACK;
