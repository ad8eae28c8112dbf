-- GET and MGET, as JSON or as bytes: SQL functions the planner inlines into the caller's
-- query (see tables.sql).

-- A value as Redis sees it: raw bytes as they are, JSON as its text.
CREATE OR REPLACE FUNCTION monitoring._cache_as_bytes(p_value jsonb, p_bytes bytea)
RETURNS bytea
LANGUAGE sql
STABLE
AS $$
    SELECT coalesce(p_bytes, pg_catalog.convert_to(p_value::text, 'UTF8'));
$$;

COMMENT ON FUNCTION monitoring._cache_as_bytes(jsonb, bytea) IS
'The bytes the Redis facade returns for an entry: raw bytes, or the text of a JSON value';

CREATE OR REPLACE FUNCTION monitoring.cache_get(p_key text)
RETURNS TABLE (value jsonb, value_bytes bytea)
LANGUAGE sql
STABLE
AS $$
    SELECT e.value, e.value_bytes
    FROM monitoring.cache_entries AS e
    WHERE
        e.index_key = monitoring.cache_index_key(p_key)
        AND e.key = p_key
        AND e.expires_at > pg_catalog.now();
$$;

COMMENT ON FUNCTION monitoring.cache_get(text) IS
'One row (value jsonb, value_bytes bytea) when p_key holds a live entry, none on a miss; '
'a cached JSON null is the row (''null'', NULL). Call it in FROM so that it is inlined.';

CREATE OR REPLACE FUNCTION monitoring.cache_get_bytes(p_key text)
RETURNS TABLE (value bytea)
LANGUAGE sql
STABLE
AS $$
    SELECT monitoring._cache_as_bytes(e.value, e.value_bytes)
    FROM monitoring.cache_entries AS e
    WHERE
        e.index_key = monitoring.cache_index_key(p_key)
        AND e.key = p_key
        AND e.expires_at > pg_catalog.now();
$$;

COMMENT ON FUNCTION monitoring.cache_get_bytes(text) IS
'Redis GET: one row with the entry as bytes (JSON values as their text), none on a miss';

CREATE OR REPLACE FUNCTION monitoring.cache_get_many(p_keys text[])
RETURNS TABLE (key text, value jsonb, value_bytes bytea)
LANGUAGE sql
STABLE
AS $$
    SELECT e.key, e.value, e.value_bytes
    FROM monitoring.cache_entries AS e
    WHERE
        e.index_key = ANY(
            ARRAY(SELECT monitoring.cache_index_key(k.key) FROM pg_catalog.unnest(p_keys) AS k (key))
        )
        AND e.key = ANY(p_keys)
        AND e.expires_at > pg_catalog.now();
$$;

COMMENT ON FUNCTION monitoring.cache_get_many(text[]) IS
'The live entries among p_keys, one row each (misses have no row), in one round trip';

CREATE OR REPLACE FUNCTION monitoring.cache_get_many_bytes(p_keys text[])
RETURNS TABLE (value bytea)
LANGUAGE sql
STABLE
AS $$
    SELECT (
        SELECT monitoring._cache_as_bytes(e.value, e.value_bytes)
        FROM monitoring.cache_entries AS e
        WHERE
            e.index_key = monitoring.cache_index_key(k.key)
            AND e.key = k.key
            AND e.expires_at > pg_catalog.now()
    )
    FROM pg_catalog.unnest(p_keys) WITH ORDINALITY AS k (key, position)
    ORDER BY k.position;
$$;

COMMENT ON FUNCTION monitoring.cache_get_many_bytes(text[]) IS
'Redis MGET: one row per key of p_keys, in order, with the value as bytes or NULL on a miss';

GRANT EXECUTE ON FUNCTION
monitoring._cache_as_bytes(jsonb, bytea),
monitoring.cache_get(text),
monitoring.cache_get_bytes(text),
monitoring.cache_get_many(text[]),
monitoring.cache_get_many_bytes(text[])
TO monitoring_writer;
