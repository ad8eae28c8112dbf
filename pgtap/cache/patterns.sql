-- Keys by pattern (Redis globs), long keys (indexed by prefix and digest), and by tag.
BEGIN;
SELECT plan(23);

-- Glob patterns.
SELECT ok(monitoring.cache_set_many(
    '{"user:1": 1, "user:2": 2, "user:10": 10, "usex:1": 0, "100%_off": 0, "1000_off": 0,
      "a*b": 0, "axb": 0, "h[e]llo": 0, "hello": 0, "hallo": 0}'
) = 11, 'set_many stores a JSON object');
SELECT is(
    (SELECT pg_catalog.array_agg(k ORDER BY k) FROM monitoring.cache_keys('user:*') AS k),
    ARRAY['user:1', 'user:10', 'user:2'],
    'a prefix pattern'
);
SELECT is(
    (SELECT pg_catalog.array_agg(k ORDER BY k) FROM monitoring.cache_keys('user:?') AS k),
    ARRAY['user:1', 'user:2'],
    '? is one character'
);
SELECT is(
    (SELECT pg_catalog.array_agg(k ORDER BY k) FROM monitoring.cache_keys('h[ae]llo') AS k),
    ARRAY['hallo', 'hello'],
    'a character class'
);
SELECT is(
    (SELECT pg_catalog.array_agg(k ORDER BY k) FROM monitoring.cache_keys('h[^a]llo') AS k),
    ARRAY['hello'],
    'a negated class'
);
SELECT is(
    (SELECT pg_catalog.array_agg(k ORDER BY k) FROM monitoring.cache_keys('h\[e\]llo') AS k),
    ARRAY['h[e]llo'],
    'backslash escapes a metacharacter'
);
SELECT is(
    (SELECT pg_catalog.array_agg(k ORDER BY k) FROM monitoring.cache_keys('a\*b') AS k),
    ARRAY['a*b'],
    'an escaped * is literal'
);
SELECT is(
    (SELECT pg_catalog.array_agg(k ORDER BY k) FROM monitoring.cache_keys('100%_off') AS k),
    ARRAY['100%_off'],
    '% and _ are literal'
);
SELECT is(
    (SELECT pg_catalog.array_agg(k ORDER BY k) FROM monitoring.cache_keys('[z-x]*') AS k),
    NULL,
    'a reversed range is swapped, as in Redis (no key starts with x, y or z)'
);
SELECT is(
    (
        SELECT pg_catalog.array_agg(k ORDER BY k)
        FROM monitoring.cache_keys('user:*', 'user:10', 1) AS k
    ),
    ARRAY['user:2'],
    'keys pages after a key'
);
SELECT is(
    monitoring.cache_delete_pattern('user:*'), 3::bigint, 'delete_pattern deletes the matches'
);
SELECT is(monitoring.cache_exists('usex:1'), 1::bigint, 'and nothing else');
SELECT is(monitoring.cache_delete_pattern('[]'), 0::bigint, 'an empty class matches nothing');
SELECT ok(monitoring.cache_set('', '"empty"'), 'the empty key is a key');
SELECT is(
    (SELECT pg_catalog.array_agg(k) FROM monitoring.cache_keys('') AS k),
    ARRAY[''],
    'the empty pattern matches it'
);
SELECT is(
    (
        SELECT pg_catalog.count(*) FROM monitoring.cache_keys('**') AS k
        WHERE k = ''
    ),
    0::bigint,
    'and ** does not, as in Redis'
);

-- Long keys: indexed by prefix and digest, still found and matched.
SELECT ok(monitoring.cache_set(pg_catalog.repeat('é', 3000), '"long"'), 'a 6000-byte key');
SELECT is(
    (SELECT value FROM monitoring.cache_get(pg_catalog.repeat('é', 3000))),
    '"long"'::jsonb,
    'is read back'
);
SELECT is(
    monitoring.cache_exists(pg_catalog.repeat('é', 2999) || 'e'),
    0::bigint,
    'and differs from a key with the same 500-character prefix'
);
SELECT is(
    (
        SELECT pg_catalog.count(*) FROM monitoring.cache_entries AS e
        WHERE e.index_key IS DISTINCT FROM monitoring.cache_index_key(e.key)
    ),
    0::bigint,
    'the generated index_key column agrees with cache_index_key, short and long keys alike'
);
SELECT is(monitoring.cache_delete_pattern('éé*'), 1::bigint, 'and matches a pattern');

-- Tags.
SELECT ok(monitoring.cache_set('p1', '1', p_tags => ARRAY['product']), 'tagged entries');
SELECT is(monitoring.cache_delete_tag('product'), 1::bigint, 'delete by tag');

SELECT * FROM finish();
ROLLBACK;
