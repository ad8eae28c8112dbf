-- Commands on keys, whatever their value: DEL, EXISTS, EXPIRE, TTL.

CREATE OR REPLACE FUNCTION monitoring.cache_delete(VARIADIC p_keys text[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    WITH deleted AS (
        DELETE FROM monitoring.cache_entries AS e
        WHERE
            e.index_key = ANY(
                ARRAY(SELECT monitoring.cache_index_key(k) FROM unnest(p_keys) AS k)
            )
            AND e.key = ANY(p_keys)
        RETURNING e.expires_at
    )

    SELECT count(*) FILTER (WHERE d.expires_at > now()) INTO v_deleted
    FROM deleted AS d;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring.cache_delete(text[]) IS
'Deletes the keys; returns how many were live entries (Redis DEL)';

CREATE OR REPLACE FUNCTION monitoring.cache_exists(VARIADIC p_keys text[])
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT count(*)
    FROM pg_catalog.unnest(p_keys) AS k (key)
    INNER JOIN monitoring.cache_entries AS e
        ON
            e.index_key = monitoring.cache_index_key(k.key)
            AND e.key = k.key
    WHERE e.expires_at > pg_catalog.now();
$$;

COMMENT ON FUNCTION monitoring.cache_exists(text[]) IS
'How many of the keys are live entries, a key named twice counted twice (Redis EXISTS)';

CREATE OR REPLACE FUNCTION monitoring.cache_expire(p_key text, p_ttl double precision)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    -- Redis: a TTL of zero or less deletes the key.
    IF p_ttl <= 0 THEN
        DELETE FROM monitoring.cache_entries AS e
        WHERE
            e.index_key = monitoring.cache_index_key(p_key)
            AND e.key = p_key
            AND e.expires_at > now();
    ELSE
        UPDATE monitoring.cache_entries AS e
        SET expires_at = monitoring._cache_expiry(p_ttl)
        WHERE
            e.index_key = monitoring.cache_index_key(p_key)
            AND e.key = p_key
            AND e.expires_at > now();
    END IF;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION monitoring.cache_expire(text, double precision) IS
'Sets the TTL of a live key to p_ttl seconds (NULL: no expiry, like PERSIST; 0 or less: '
'deletes it, like Redis EXPIRE); false when the key is not live';

CREATE OR REPLACE FUNCTION monitoring.cache_ttl(p_key text)
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT coalesce(
        (
            SELECT
                CASE
                    WHEN e.expires_at = 'infinity' THEN -1
                    -- Redis rounds the remaining milliseconds to the nearest second.
                    ELSE pg_catalog.floor(
                        (
                            pg_catalog.floor(
                                pg_catalog.date_part(
                                    'epoch', e.expires_at - pg_catalog.now()
                                ) * 1000
                            ) + 500
                        ) / 1000
                    )::bigint
                END
            FROM monitoring.cache_entries AS e
            WHERE
                e.index_key = monitoring.cache_index_key(p_key)
                AND e.key = p_key
                AND e.expires_at > pg_catalog.now()
        ),
        -2
    );
$$;

COMMENT ON FUNCTION monitoring.cache_ttl(text) IS
'Seconds until p_key expires, rounded like Redis TTL; -1: no expiry; -2: no such key';

GRANT EXECUTE ON FUNCTION
monitoring.cache_delete(text[]),
monitoring.cache_exists(text[]),
monitoring.cache_expire(text, double precision),
monitoring.cache_ttl(text)
TO monitoring_writer;
