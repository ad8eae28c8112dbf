-- SET (with NX, XX, a TTL and tags), MSET and INCR.

CREATE OR REPLACE FUNCTION monitoring._cache_store(
    p_key text,
    p_value jsonb,
    p_bytes bytea,
    p_ttl double precision,
    p_nx boolean,
    p_xx boolean,
    p_tags text[]
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_stored boolean;
    -- First, as Redis does: SET XX with a bad TTL is an error even when the key is absent
    -- (inside the UPDATE it would only be computed for a row that matches).
    v_expires_at timestamptz := monitoring._cache_expiry(p_ttl);
    v_tags text[] := monitoring._cache_tags(p_tags);
    v_value jsonb := monitoring._cache_value(p_value, 'p_value');
BEGIN
    -- One test on the common path: PL/pgSQL sets up every expression it evaluates once per
    -- transaction, and a cache SET is usually a transaction of its own.
    IF p_key IS NULL OR (p_value IS NULL AND p_bytes IS NULL) OR (p_nx AND p_xx) THEN
        IF p_key IS NULL THEN
            RAISE EXCEPTION 'p_key must not be NULL' USING ERRCODE = 'null_value_not_allowed';
        ELSIF p_value IS NULL AND p_bytes IS NULL THEN
            RAISE EXCEPTION 'p_value must not be NULL (a JSON null is ''null''::jsonb)'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        RAISE EXCEPTION 'p_nx and p_xx exclude each other' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF p_xx THEN
        UPDATE monitoring.cache_entries AS e
        SET
            value = v_value,
            value_bytes = p_bytes,
            expires_at = v_expires_at,
            created_at = now(),
            tags = v_tags,
            locked_until = NULL
        WHERE
            e.index_key = monitoring.cache_index_key(p_key)
            AND e.key = p_key
            AND e.expires_at > now();
        v_stored := FOUND;
    ELSIF p_nx THEN
        -- An expired row, a lock placeholder or (for long keys) a colliding key is no entry:
        -- NX overwrites it.
        INSERT INTO monitoring.cache_entries AS e (key, value, value_bytes, expires_at, tags)
        VALUES (p_key, v_value, p_bytes, v_expires_at, v_tags)
        ON CONFLICT (index_key) DO UPDATE
            SET
                key = excluded.key,
                value = excluded.value,
                value_bytes = excluded.value_bytes,
                expires_at = excluded.expires_at,
                created_at = excluded.created_at,
                tags = excluded.tags,
                locked_until = NULL
            WHERE e.expires_at <= now() OR e.key <> excluded.key;
        v_stored := FOUND;
    ELSE
        v_stored := monitoring._cache_put(
            p_key, v_value, p_bytes, v_expires_at, v_tags
        );
    END IF;

    -- A plain SET arrives here as cache_set's 1-in-1000 sample for the size check.
    IF NOT (p_nx OR p_xx) OR random() < 0.001 THEN
        PERFORM monitoring._cache_evict_if_full();
    END IF;
    RETURN v_stored;
END
$$;

COMMENT ON FUNCTION monitoring._cache_store(
    text, jsonb, bytea, double precision, boolean, boolean, text[]
) IS 'The checked write path of cache_set and cache_set_bytes: NULLs, NX, XX, the size check';

-- The plain SET, nothing but the upsert: cache_set has checked the arguments and computed the
-- expiry in the caller's statement, where they cost an expression step each instead of a
-- PL/pgSQL expression set up again in every transaction.
CREATE OR REPLACE FUNCTION monitoring._cache_put(
    p_key text, p_value jsonb, p_bytes bytea, p_expires_at timestamptz, p_tags text[]
)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO monitoring.cache_entries AS e (key, value, value_bytes, expires_at, tags)
    VALUES (p_key, p_value, p_bytes, p_expires_at, p_tags)
    ON CONFLICT (index_key) DO UPDATE
        SET
            key = excluded.key,
            value = excluded.value,
            value_bytes = excluded.value_bytes,
            expires_at = excluded.expires_at,
            created_at = excluded.created_at,
            tags = excluded.tags,
            locked_until = NULL;
    RETURN TRUE;
END
$$;

COMMENT ON FUNCTION monitoring._cache_put(text, jsonb, bytea, timestamptz, text[]) IS
'The unchecked upsert behind a plain cache_set: callers pass a non-NULL key and value';

-- cache_set and cache_set_bytes, and this behind them, are SQL functions that the planner
-- inlines into the caller's SELECT: the common SET (no NX/XX, non-NULL arguments) goes
-- straight to the upsert; anything else, and one call in a thousand (the sampled size
-- check), takes the checked path.
CREATE OR REPLACE FUNCTION monitoring._cache_set(
    p_key text,
    p_value jsonb,
    p_bytes bytea,
    p_ttl double precision,
    p_nx boolean,
    p_xx boolean,
    p_tags text[]
)
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT CASE
        WHEN
            p_key IS NOT NULL AND (p_value IS NOT NULL OR p_bytes IS NOT NULL)
            AND NOT p_nx AND NOT p_xx AND pg_catalog.random() >= 0.001
            THEN monitoring._cache_put(
                p_key, monitoring._cache_value(p_value, 'p_value'), p_bytes,
                monitoring._cache_expiry(p_ttl), monitoring._cache_tags(p_tags)
            )
        ELSE monitoring._cache_store(p_key, p_value, p_bytes, p_ttl, p_nx, p_xx, p_tags)
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_set(
    text, jsonb, bytea, double precision, boolean, boolean, text[]
) IS 'cache_set and cache_set_bytes: the plain SET to _cache_put, the rest to _cache_store';

CREATE OR REPLACE FUNCTION monitoring.cache_set(
    p_key text,
    p_value jsonb,
    p_ttl double precision DEFAULT NULL,
    p_nx boolean DEFAULT FALSE,
    p_xx boolean DEFAULT FALSE,
    p_tags text[] DEFAULT NULL
)
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT monitoring._cache_set(p_key, p_value, NULL, p_ttl, p_nx, p_xx, p_tags);
$$;

COMMENT ON FUNCTION monitoring.cache_set(text, jsonb, double precision, boolean, boolean, text[])
IS 'Stores JSON p_value under p_key for p_ttl seconds (NULL: no expiry); p_nx: only if absent, '
'p_xx: only if present. True when stored. Replaces any TTL and tags the key had. JSON nested '
'more than 512 levels and tags over 500 characters are refused.';

CREATE OR REPLACE FUNCTION monitoring.cache_set_bytes(
    p_key text,
    p_value bytea,
    p_ttl double precision DEFAULT NULL,
    p_nx boolean DEFAULT FALSE,
    p_xx boolean DEFAULT FALSE,
    p_tags text[] DEFAULT NULL
)
RETURNS boolean
LANGUAGE sql
AS $$
    SELECT monitoring._cache_set(p_key, NULL, p_value, p_ttl, p_nx, p_xx, p_tags);
$$;

COMMENT ON FUNCTION monitoring.cache_set_bytes(
    text, bytea, double precision, boolean, boolean, text[]
) IS 'cache_set for raw bytes (Redis SET): returned as they are, never parsed';

CREATE OR REPLACE FUNCTION monitoring._cache_store_many(
    p_keys text[], p_values jsonb[], p_bytes bytea[], p_ttl double precision
)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_stored bigint;
BEGIN
    -- array_position, and MSET's pairing of keys with values, are for lists
    IF array_ndims(p_keys) > 1 OR array_ndims(p_bytes) > 1 THEN
        RAISE EXCEPTION 'p_keys and p_values must be one-dimensional arrays'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.array_position(p_keys, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'p_keys must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- an entry holds a value (cache_set_many's JSON values are never SQL NULL)
    IF pg_catalog.array_position(p_bytes, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'p_values must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF coalesce(cardinality(p_values), cardinality(p_bytes)) IS DISTINCT FROM cardinality(p_keys)
    THEN
        RAISE EXCEPTION 'p_keys has % elements but the values %',
            cardinality(p_keys), coalesce(cardinality(p_values), cardinality(p_bytes))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The last value of a repeated key wins, as in Redis MSET; ON CONFLICT may not touch a row
    -- twice in one statement.
    INSERT INTO monitoring.cache_entries AS e (key, value, value_bytes, expires_at)
    SELECT DISTINCT ON (i.key) i.key, i.value, i.value_bytes, monitoring._cache_expiry(p_ttl)
    FROM ROWS FROM (unnest(p_keys), unnest(p_values), unnest(p_bytes)) WITH ORDINALITY
        AS i (key, value, value_bytes, position)
    ORDER BY i.key, i.position DESC
    ON CONFLICT (index_key) DO UPDATE
        SET
            key = excluded.key,
            value = excluded.value,
            value_bytes = excluded.value_bytes,
            expires_at = excluded.expires_at,
            created_at = excluded.created_at,
            tags = NULL,
            locked_until = NULL;
    GET DIAGNOSTICS v_stored = ROW_COUNT;

    IF random() < 0.001 * v_stored THEN
        PERFORM monitoring._cache_evict_if_full();
    END IF;
    RETURN v_stored;
END
$$;

COMMENT ON FUNCTION monitoring._cache_store_many(text[], jsonb[], bytea[], double precision) IS
'The one write path of cache_set_many and cache_set_many_bytes';

CREATE OR REPLACE FUNCTION monitoring.cache_set_many(
    p_entries jsonb, p_ttl double precision DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    IF jsonb_typeof(p_entries) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'p_entries must be a JSON object of key: value, not %',
            coalesce(jsonb_typeof(p_entries), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN monitoring._cache_store_many(
        ARRAY(SELECT jsonb_object_keys(p_entries)),
        ARRAY(
            SELECT monitoring._cache_value(p_entries -> k, 'p_entries')
            FROM jsonb_object_keys(p_entries) AS k
        ),
        NULL,
        p_ttl
    );
END
$$;

COMMENT ON FUNCTION monitoring.cache_set_many(jsonb, double precision) IS
'Stores every key: value of the JSON object p_entries with TTL p_ttl; returns how many';

CREATE OR REPLACE FUNCTION monitoring.cache_set_many_bytes(
    p_keys text[], p_values bytea[], p_ttl double precision DEFAULT NULL
)
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT monitoring._cache_store_many(p_keys, NULL, p_values, p_ttl);
$$;

COMMENT ON FUNCTION monitoring.cache_set_many_bytes(text[], bytea[], double precision) IS
'Redis MSET: stores p_values[i] under p_keys[i] (the last of a repeated key wins)';

-- Redis's string2ll: optional '-', no '+', no spaces, no leading zeros, at most 64 bits.
CREATE OR REPLACE FUNCTION monitoring._cache_add(
    p_key text, p_value jsonb, p_bytes bytea, p_by bigint
)
RETURNS bigint
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    -- 'escape' turns any non-ASCII byte into a backslash sequence, which the pattern rejects:
    -- no invalid UTF-8 error can escape from here.
    v_text text := coalesce(encode(p_bytes, 'escape'), p_value::text);
    v_number numeric;
    v_sum numeric;
BEGIN
    IF v_text ~ '^(0|-?[1-9][0-9]{0,18})$' THEN
        v_number := v_text::numeric;
    END IF;
    IF v_number IS NULL OR v_number NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'the value of cache key % is not an integer or out of range',
            quote_literal(monitoring.truncate_text(p_key, 100))
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    v_sum := v_number + p_by;
    IF v_sum NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'incrementing cache key % by % would overflow',
            quote_literal(monitoring.truncate_text(p_key, 100)), p_by
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    RETURN v_sum;
END
$$;

COMMENT ON FUNCTION monitoring._cache_add(text, jsonb, bytea, bigint) IS
'The integer a cache value holds (as Redis parses it) plus p_by, or an error';

CREATE OR REPLACE FUNCTION monitoring.cache_incr(p_key text, p_by bigint DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_result bigint;
BEGIN
    IF p_key IS NULL OR p_by IS NULL THEN
        RAISE EXCEPTION 'p_key and p_by must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- One statement, so two concurrent increments can not both read the old value. A live
    -- entry keeps its TTL, tags and age (Redis INCR); anything else is replaced by 0 + p_by.
    INSERT INTO monitoring.cache_entries AS e (key, value)
    VALUES (p_key, to_jsonb(p_by))
    ON CONFLICT (index_key) DO UPDATE
        SET
            key = excluded.key,
            value = CASE
                WHEN e.expires_at > now() AND e.key = excluded.key
                    THEN to_jsonb(monitoring._cache_add(p_key, e.value, e.value_bytes, p_by))
                ELSE excluded.value
            END,
            value_bytes = NULL,
            expires_at = CASE
                WHEN e.expires_at > now() AND e.key = excluded.key THEN e.expires_at
                ELSE excluded.expires_at
            END,
            created_at = CASE
                WHEN e.expires_at > now() AND e.key = excluded.key THEN e.created_at
                ELSE excluded.created_at
            END,
            tags = CASE WHEN e.expires_at > now() AND e.key = excluded.key THEN e.tags END,
            locked_until = NULL
    RETURNING e.value::bigint INTO v_result;
    RETURN v_result;
END
$$;

COMMENT ON FUNCTION monitoring.cache_incr(text, bigint) IS
'Adds p_by (default 1) to the integer under p_key, atomically, starting from 0 when absent; '
'keeps the TTL (Redis INCR/INCRBY). The value becomes a JSON number.';

GRANT EXECUTE ON FUNCTION
monitoring._cache_store(text, jsonb, bytea, double precision, boolean, boolean, text[]),
monitoring._cache_put(text, jsonb, bytea, timestamptz, text[]),
monitoring._cache_set(text, jsonb, bytea, double precision, boolean, boolean, text[]),
monitoring.cache_set(text, jsonb, double precision, boolean, boolean, text[]),
monitoring.cache_set_bytes(text, bytea, double precision, boolean, boolean, text[]),
monitoring._cache_store_many(text[], jsonb[], bytea[], double precision),
monitoring.cache_set_many(jsonb, double precision),
monitoring.cache_set_many_bytes(text[], bytea[], double precision),
monitoring._cache_add(text, jsonb, bytea, bigint),
monitoring.cache_incr(text, bigint)
TO monitoring_writer;
