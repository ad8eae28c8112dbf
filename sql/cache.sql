-- The cache: a Redis replacement in an UNLOGGED table.
--
-- UNLOGGED means no WAL: writes are cheap, but PostgreSQL truncates the table after a crash or
-- an unclean shutdown, a standby never sees its rows (a failover starts empty), and
-- pg_basebackup leaves it out. A clean restart keeps it. That is what a cache may lose.
--
-- Hot reads are LANGUAGE sql STABLE set-returning functions the planner inlines into the
-- caller's query, over a table granted to monitoring_writer: a SECURITY DEFINER wrapper would
-- cost ~30% of a GET (shared/reference/facts.md), and the cache is no secret from the writer.
-- Writes are plpgsql, whose plans are cached per session.
--
-- An entry is live while expires_at > now(); every read says so, so an expired entry is never
-- returned, whether or not cleanup has removed it yet. 'infinity' means no expiry. Two rows
-- are not entries at all: a lock placeholder of cache_get_or_lock (no value, expires_at
-- '-infinity') and an expired entry kept for its stale value.

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
)
VALUES
(
    'cache.max_entries', '1000000',
    'Rows the cache may hold; beyond it the entries nearest to expiry are evicted first',
    1, 1000000000000
),
(
    'cache.max_bytes', '1073741824',
    'Stored bytes of keys and values the cache may hold (enforced by run_cache_maintenance)',
    1048576, 1125899906842624
),
(
    'cache.cleanup_batch_size', '5000',
    'Rows one cleanup or eviction batch deletes; a maintenance run does at most 100 batches',
    1, 1000000
);

-- The btree key of an entry. A btree tuple holds at most ~2.7 KB, so a key longer than 500
-- characters (up to 2000 bytes) is indexed as its first 500 characters, '#' and the md5 of the
-- whole key: 533 characters, so it can never equal a short key, and it keeps the prefix that
-- pattern deletes scan by. Readers compare the full key too, so even an md5 collision could
-- only make one long key overwrite the other, never return the other's value.
-- md5, not sha256: it takes text and is IMMUTABLE, which the generated column and inlining
-- into the hot read path both need (sha256 would need convert_to, which is only STABLE).
CREATE FUNCTION monitoring.cache_index_key(p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.char_length(p_key) <= 500 THEN p_key
        ELSE pg_catalog.left(p_key, 500) || '#' || pg_catalog.md5(p_key)
    END;
$$;

COMMENT ON FUNCTION monitoring.cache_index_key(text) IS
'The indexed form of a cache key: the key itself, or for keys over 500 characters its first '
'500 characters, ''#'' and its md5';

CREATE UNLOGGED TABLE monitoring.cache_entries (
    key text COLLATE "C" NOT NULL,
    -- "C": byte order, so a key prefix is an index range whatever the database's collation.
    -- cache_index_key's body written out: a function call here would be inlined, which means
    -- parsed from its source text, at the start of every INSERT (a fifth of a SET's CPU).
    -- pgTAP checks that the two agree.
    index_key text COLLATE "C" NOT NULL GENERATED ALWAYS AS (
        CASE
            WHEN pg_catalog.char_length(key) <= 500 THEN key
            ELSE pg_catalog.left(key, 500) || '#' || pg_catalog.md5(key)
        END
    ) STORED,
    -- Exactly one of value (JSON) and value_bytes (raw, from the Redis facade) is set in an
    -- entry; both are NULL in a lock placeholder. Two columns instead of a wrapper object in
    -- jsonb, so no user value can be mistaken for our encoding.
    value jsonb,
    value_bytes bytea,
    expires_at timestamptz NOT NULL DEFAULT 'infinity',
    -- When this value was stored: a SET that replaces a value resets it, INCR and EXPIRE keep it.
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    tags text[],
    -- While in the future, a cache_get_or_lock caller is computing this key's value.
    locked_until timestamptz,
    CONSTRAINT cache_entries_pkey PRIMARY KEY (index_key),
    CONSTRAINT cache_entries_one_value CHECK (value IS NULL OR value_bytes IS NULL)
);

COMMENT ON TABLE monitoring.cache_entries IS
'Cache entries (UNLOGGED: emptied by a crash, not replicated); read them through the '
'monitoring.cache_* functions, which skip expired rows';

-- One index serves both cleanup (expires_at <= now()) and eviction order: the entries nearest
-- to expiry go first, entries without expiry last and oldest first (Redis's volatile-ttl, then
-- Solid Cache's FIFO). A separate FIFO index would cost every write a third index insert.
CREATE INDEX cache_entries_eviction ON monitoring.cache_entries (expires_at, created_at);

-- Partial: untagged entries, the common case, cost nothing here.
CREATE INDEX cache_entries_tags ON monitoring.cache_entries USING gin (tags)
WHERE tags IS NOT NULL;

-- Hit and miss counts arrive from clients in batches (cache_record_stats), spread over shards
-- by backend so that reporters do not queue on one row; the maintenance run adds its own.
CREATE UNLOGGED TABLE monitoring.cache_counters (
    shard integer PRIMARY KEY,
    hits bigint NOT NULL DEFAULT 0,
    misses bigint NOT NULL DEFAULT 0,
    expired_removed bigint NOT NULL DEFAULT 0,
    evicted bigint NOT NULL DEFAULT 0
);

COMMENT ON TABLE monitoring.cache_counters IS
'Cache hit, miss, cleanup and eviction counts, summed by monitoring.cache_stats()';

-- Redis's TTL rules, with one limit of our own: a TTL must be a positive number of seconds
-- (fractions allowed) of at most 10^12 (31,700 years; timestamptz ends in 294276 AD). NaN,
-- zero, negative and larger TTLs raise. NULL means no expiry.
CREATE FUNCTION monitoring._cache_bad_ttl(p_ttl double precision)
RETURNS timestamptz
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'p_ttl must be a number of seconds above 0 and at most 1e12, not %', p_ttl
        USING ERRCODE = 'invalid_parameter_value';
END
$$;

COMMENT ON FUNCTION monitoring._cache_bad_ttl(double precision) IS
'Raises the error for a TTL that is not positive, NaN or over 1e12 seconds';

-- Plain SQL so that it inlines into the callers' statements; the error branch is a call.
CREATE FUNCTION monitoring._cache_expiry(p_ttl double precision)
RETURNS timestamptz
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN p_ttl IS NULL THEN 'infinity'::timestamptz
        WHEN p_ttl > 0 AND p_ttl <= 1e12
            THEN pg_catalog.now() + p_ttl * INTERVAL '1 second'
        ELSE monitoring._cache_bad_ttl(p_ttl)
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_expiry(double precision) IS
'When an entry stored now with TTL p_ttl seconds expires (''infinity'' for NULL)';

-- A JSON value a SET may store: nested at most 512 levels, so that clients can read it back
-- (Python's json module gives up at about 1,000 levels, Ruby's JSON at 100 by default).
-- Raises naming p_name otherwise.
CREATE FUNCTION monitoring._cache_checked_value(p_value jsonb, p_name text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF jsonb_path_exists(p_value, 'strict $.**{513}') THEN
        RAISE EXCEPTION '% is nested more than 512 levels deep', p_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_value;
END
$$;

-- p_value, checked only when it may be too deep: each level of a jsonb value takes 8 bytes
-- or more, so one of 4 kB or less (as clients send it) is not, and the SET, where this is
-- inlined, pays one comparison. STABLE as pg_column_size is: an IMMUTABLE SQL function over
-- a STABLE one is not inlined.
CREATE FUNCTION monitoring._cache_value(p_value jsonb, p_name text)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN p_value IS NULL OR pg_catalog.pg_column_size(p_value) <= 4096 THEN p_value
        ELSE monitoring._cache_checked_value(p_value, p_name)
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_value(jsonb, text) IS
'p_value as a SET stores it; raises for JSON nested more than 512 levels deep';

-- Tags a SET may store: each is an entry of the GIN tag index, which holds at most ~2.7 kB;
-- 500 characters are at most 2,000 bytes. Raises naming p_tags otherwise.
CREATE FUNCTION monitoring._cache_checked_tags(p_tags text[])
RETURNS text[]
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF EXISTS (SELECT FROM unnest(p_tags) AS t (tag) WHERE length(t.tag) > 500) THEN
        RAISE EXCEPTION 'p_tags must be tags of at most 500 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN nullif(p_tags, '{}');
END
$$;

-- The tags to store (NULL for none), checked only when they may be too long: inlined into
-- the SET (STABLE, as array_to_string is), where tags of 500 bytes in all cost one
-- comparison.
CREATE FUNCTION monitoring._cache_tags(p_tags text[])
RETURNS text[]
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN p_tags IS NULL OR pg_catalog.octet_length(pg_catalog.array_to_string(p_tags, '')) <= 500
            THEN nullif(p_tags, '{}')
        ELSE monitoring._cache_checked_tags(p_tags)
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_tags(text[]) IS
'p_tags as a SET stores them (NULL for none); raises for a tag over 500 characters';

-- A value as Redis sees it: raw bytes as they are, JSON as its text.
CREATE FUNCTION monitoring._cache_as_bytes(p_value jsonb, p_bytes bytea)
RETURNS bytea
LANGUAGE sql
STABLE
AS $$
    SELECT coalesce(p_bytes, pg_catalog.convert_to(p_value::text, 'UTF8'));
$$;

COMMENT ON FUNCTION monitoring._cache_as_bytes(jsonb, bytea) IS
'The bytes the Redis facade returns for an entry: raw bytes, or the text of a JSON value';

CREATE FUNCTION monitoring.cache_get(p_key text)
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

CREATE FUNCTION monitoring.cache_get_bytes(p_key text)
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

CREATE FUNCTION monitoring.cache_get_many(p_keys text[])
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

CREATE FUNCTION monitoring.cache_get_many_bytes(p_keys text[])
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

-- Enforces max_entries between maintenance runs; cache writes call it for one write in ~1000.
-- It must be cheap when the cache is within bounds, so it counts rows from the statistics
-- system (committed rows, plus this transaction's own changes) rather than with count(*).
-- SECURITY DEFINER: it reads settings, which the writer may not.
CREATE FUNCTION monitoring._cache_evict_if_full()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table oid := 'monitoring.cache_entries'::regclass;
    v_rows bigint;
    v_excess bigint;
BEGIN
    v_rows := pg_stat_get_live_tuples(v_table)
        + pg_stat_get_xact_tuples_inserted(v_table)
        - pg_stat_get_xact_tuples_deleted(v_table);
    v_excess := v_rows - monitoring.get_setting('cache.max_entries')::bigint;
    IF v_excess <= 0 THEN
        RETURN 0;
    END IF;
    RETURN monitoring._cache_evict(
        least(v_excess, monitoring.get_setting('cache.cleanup_batch_size')::bigint)
    );
END
$$;

COMMENT ON FUNCTION monitoring._cache_evict_if_full() IS
'Evicts one batch when the statistics say the cache holds more rows than cache.max_entries';

-- Eviction order: nearest expiry first, so expired rows go before live ones, and rows without
-- expiry last, oldest first. SKIP LOCKED: two evictors take different rows, and neither waits
-- for a writer.
CREATE FUNCTION monitoring._cache_evict(p_count bigint)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM monitoring.cache_entries AS e
    WHERE e.index_key IN (
        SELECT victim.index_key
        FROM monitoring.cache_entries AS victim
        ORDER BY victim.expires_at, victim.created_at
        LIMIT p_count
        FOR UPDATE SKIP LOCKED
    );
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring._cache_evict(bigint) IS
'Deletes up to p_count rows in eviction order: nearest expiry first, no expiry last';

CREATE FUNCTION monitoring._cache_store(
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
CREATE FUNCTION monitoring._cache_put(
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
CREATE FUNCTION monitoring._cache_set(
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

CREATE FUNCTION monitoring.cache_set(
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

CREATE FUNCTION monitoring.cache_set_bytes(
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

CREATE FUNCTION monitoring._cache_store_many(
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

CREATE FUNCTION monitoring.cache_set_many(p_entries jsonb, p_ttl double precision DEFAULT NULL)
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

CREATE FUNCTION monitoring.cache_set_many_bytes(
    p_keys text[], p_values bytea[], p_ttl double precision DEFAULT NULL
)
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT monitoring._cache_store_many(p_keys, NULL, p_values, p_ttl);
$$;

COMMENT ON FUNCTION monitoring.cache_set_many_bytes(text[], bytea[], double precision) IS
'Redis MSET: stores p_values[i] under p_keys[i] (the last of a repeated key wins)';

CREATE FUNCTION monitoring.cache_delete(VARIADIC p_keys text[])
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

CREATE FUNCTION monitoring.cache_exists(VARIADIC p_keys text[])
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

CREATE FUNCTION monitoring.cache_expire(p_key text, p_ttl double precision)
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

CREATE FUNCTION monitoring.cache_ttl(p_key text)
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

-- Redis's string2ll: optional '-', no '+', no spaces, no leading zeros, at most 64 bits.
CREATE FUNCTION monitoring._cache_add(p_key text, p_value jsonb, p_bytes bytea, p_by bigint)
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

CREATE FUNCTION monitoring.cache_incr(p_key text, p_by bigint DEFAULT 1)
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

-- One character of a glob as a regular expression atom, good in and out of brackets: letters
-- and digits as they are, anything else as \Uhhhhhhhh, so nothing in a key is special.
CREATE FUNCTION monitoring._cache_regex_char(p_char text)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE
        WHEN p_char ~ '^[A-Za-z0-9]$' THEN p_char
        ELSE E'\\U' || pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.ascii(p_char)), 8, '0')
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_regex_char(text) IS
'A character as a regular expression atom that matches just that character';

-- A glob pattern, Redis style (* ? [abc] [^a-z] \x), as an anchored regular expression and
-- the literal prefix every match starts with. It follows Redis's stringmatchlen to the letter,
-- quirks included: an unclosed [ ends at the end of the pattern, a - right before the closing ]
-- makes a range that swallows the ], and the empty key matches only '' and '*'. It matches
-- characters where Redis matches bytes, which differs only for ? and [] over non-ASCII keys.
-- LIKE is never used, so % and _ are ordinary characters.
CREATE FUNCTION monitoring.cache_glob(
    p_pattern text, OUT regex text, OUT prefix text, OUT prefix_end text
)
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_chars text[];
    v_length integer;
    v_i integer := 1;
    v_c text;
    v_class text;
    v_empty_class boolean;
    v_negated boolean;
    v_literal boolean := TRUE;
    v_last integer;
BEGIN
    IF p_pattern IS NULL THEN
        RETURN;
    END IF;
    -- Every key a scan reads is matched in time that grows with the pattern (and this loop
    -- with its square): 1,000 characters hold any prefix the index keeps (500) and then some.
    IF length(p_pattern) > 1000 THEN
        RAISE EXCEPTION 'p_pattern must be at most 1000 characters, not %', length(p_pattern)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- regexp_split_to_array('', '') is {""}, one empty character: an empty pattern has none.
    v_chars := CASE WHEN p_pattern <> '' THEN regexp_split_to_array(p_pattern, '') END;
    v_length := cardinality(v_chars);
    regex := '';
    prefix := '';
    WHILE v_i <= v_length LOOP
        v_c := v_chars[v_i];
        IF v_c = '*' THEN
            -- A run of stars is one, as in Redis: 1,000 of them make a regex too complex to
            -- compile.
            IF right(regex, 2) <> '.*' THEN
                regex := regex || '.*';
            END IF;
            v_literal := FALSE;
        ELSIF v_c = '?' THEN
            regex := regex || '.';
            v_literal := FALSE;
        ELSIF v_c = '[' THEN
            v_literal := FALSE;
            v_i := v_i + 1;
            v_negated := v_i <= v_length AND v_chars[v_i] = '^';
            IF v_negated THEN
                v_i := v_i + 1;
            END IF;
            v_class := '';
            LOOP
                EXIT WHEN v_i > v_length OR v_chars[v_i] = ']';
                IF v_chars[v_i] = E'\\' AND v_i < v_length THEN
                    v_i := v_i + 1;
                    v_class := v_class || monitoring._cache_regex_char(v_chars[v_i]);
                ELSIF v_chars[v_i + 1] = '-' AND v_i + 2 <= v_length THEN
                    -- Redis swaps a reversed range.
                    v_class := v_class
                        || monitoring._cache_regex_char(least(v_chars[v_i], v_chars[v_i + 2] COLLATE "C"))
                        || '-'
                        || monitoring._cache_regex_char(greatest(v_chars[v_i], v_chars[v_i + 2] COLLATE "C"));
                    v_i := v_i + 2;
                ELSE
                    v_class := v_class || monitoring._cache_regex_char(v_chars[v_i]);
                END IF;
                v_i := v_i + 1;
            END LOOP;
            v_empty_class := v_class = '';
            IF v_empty_class AND NOT v_negated THEN
                -- [] matches no character, so the pattern matches nothing.
                regex := NULL;
                prefix := NULL;
                RETURN;
            END IF;
            regex := regex || CASE
                WHEN v_empty_class THEN '.'
                WHEN v_negated THEN '[^' || v_class || ']'
                ELSE '[' || v_class || ']'
            END;
        ELSE
            IF v_c = E'\\' AND v_i < v_length THEN
                v_i := v_i + 1;
                v_c := v_chars[v_i];
            END IF;
            regex := regex || monitoring._cache_regex_char(v_c);
            IF v_literal THEN
                prefix := prefix || v_c;
            END IF;
        END IF;
        v_i := v_i + 1;
    END LOOP;
    -- Redis's matcher needs at least one key character to start, and lists every key for a
    -- lone * only through a special case of KEYS and SCAN.
    regex := CASE
        WHEN p_pattern IN ('', '*') THEN '^' || regex || '$'
        ELSE '^(?=.)' || regex || '$'
    END;

    -- The index holds only the first 500 characters of long keys.
    prefix := left(prefix, 500);
    -- The least string above every string that starts with prefix, in byte order: its last
    -- character plus one, skipping the UTF-16 surrogates, which are no characters; none when the
    -- prefix is empty or all U+10FFFF.
    prefix_end := rtrim(prefix, chr(1114111));
    v_last := ascii(right(prefix_end, 1));
    prefix_end := CASE
        WHEN prefix_end = '' THEN NULL
        ELSE left(prefix_end, -1) || chr(CASE WHEN v_last = 55295 THEN 57344 ELSE v_last + 1 END)
    END;
END
$$;

COMMENT ON FUNCTION monitoring.cache_glob(text) IS
'A Redis glob pattern as an anchored regular expression (NULL: matches nothing) and the '
'literal prefix of every key it matches, with the least string above that prefix';

-- The keys matching p_pattern, in index order, after the key p_after. A literal prefix turns
-- into an index range, so 'user:*' reads only the user: keys of a million-key cache; a pattern
-- that starts with a wildcard reads them all.
CREATE FUNCTION monitoring._cache_matching(p_pattern text, p_after text, p_limit bigint)
RETURNS TABLE (index_key text, key text)
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_glob record;
    v_after text := monitoring.cache_index_key(p_after);
BEGIN
    IF p_limit < 0 THEN
        RAISE EXCEPTION 'p_limit must be 0 or more (NULL: no limit), not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_glob := monitoring.cache_glob(p_pattern);
    IF v_glob.regex IS NULL THEN
        RETURN;
    END IF;
    IF v_glob.prefix_end IS NULL THEN
        RETURN QUERY
        SELECT e.index_key, e.key::text
        FROM monitoring.cache_entries AS e
        WHERE
            e.index_key >= greatest(v_glob.prefix, v_after)
            AND e.index_key IS DISTINCT FROM v_after
            AND e.key ~ v_glob.regex
            AND e.expires_at > now()
        ORDER BY e.index_key
        LIMIT p_limit;
    ELSE
        RETURN QUERY
        SELECT e.index_key, e.key::text
        FROM monitoring.cache_entries AS e
        WHERE
            e.index_key >= greatest(v_glob.prefix, v_after)
            AND e.index_key < v_glob.prefix_end
            AND e.index_key IS DISTINCT FROM v_after
            AND e.key ~ v_glob.regex
            AND e.expires_at > now()
        ORDER BY e.index_key
        LIMIT p_limit;
    END IF;
END
$$;

COMMENT ON FUNCTION monitoring._cache_matching(text, text, bigint) IS
'Index key and key of the live entries matching glob p_pattern after key p_after, '
'at most p_limit (NULL: all)';

CREATE FUNCTION monitoring.cache_keys(
    p_pattern text DEFAULT '*', p_after text DEFAULT NULL, p_limit bigint DEFAULT NULL
)
RETURNS SETOF text
LANGUAGE sql
STABLE
AS $$
    SELECT m.key FROM monitoring._cache_matching(p_pattern, p_after, p_limit) AS m;
$$;

COMMENT ON FUNCTION monitoring.cache_keys(text, text, bigint) IS
'Live keys matching the Redis glob p_pattern (at most 1000 characters), in index order; '
'p_after and p_limit page through them (Redis KEYS and SCAN MATCH)';

CREATE FUNCTION monitoring.cache_delete_pattern(p_pattern text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    -- = ANY(ARRAY(...)), not a join: joined to a function scan, the planner would hash the
    -- whole table.
    DELETE FROM monitoring.cache_entries AS e
    WHERE e.index_key = ANY(
        ARRAY(SELECT m.index_key FROM monitoring._cache_matching(p_pattern, NULL, NULL) AS m)
    );
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring.cache_delete_pattern(text) IS
E'Deletes the live keys matching the Redis glob p_pattern (user:*, h?llo, h[ae]llo, \\*); '
'returns how many';

CREATE FUNCTION monitoring.cache_delete_tag(p_tag text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    -- tags IS NOT NULL matches the partial index's predicate.
    DELETE FROM monitoring.cache_entries AS e
    WHERE e.tags @> ARRAY[p_tag] AND e.tags IS NOT NULL AND e.expires_at > now();
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring.cache_delete_tag(text) IS
'Deletes the live entries stored with tag p_tag; returns how many';

-- Stampede protection. One caller gets 'compute' and holds a lock on the key for
-- p_lock_seconds; its cache_set releases it (cache_unlock if it gives up). Meanwhile the others
-- get the expired value as 'stale' if the row still has one, or else wait up to p_wait_seconds
-- for the new value ('hit') and then give up ('timeout'). The lock is a column of the entry's
-- row, not a session advisory lock, because a pooled client may set the value on another
-- connection. No row lock is held while waiting: the waiter would block the very cache_set it
-- waits for.
CREATE FUNCTION monitoring.cache_get_or_lock(
    p_key text,
    p_lock_seconds double precision DEFAULT 30,
    p_wait_seconds double precision DEFAULT 5
)
RETURNS TABLE (status text, value jsonb, value_bytes bytea)
LANGUAGE plpgsql
AS $$
DECLARE
    v_deadline timestamptz;
    v_entry record;
    v_found boolean;
    v_lock_until timestamptz;
BEGIN
    IF p_key IS NULL THEN
        RAISE EXCEPTION 'p_key must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- NULL too: no lock would be taken, and a wait for NULL seconds would never end
    IF NOT coalesce(p_lock_seconds BETWEEN 0.001 AND 86400, FALSE) THEN
        RAISE EXCEPTION 'p_lock_seconds must be between 0.001 and 86400, not %',
            coalesce(p_lock_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT coalesce(p_wait_seconds BETWEEN 0 AND 3600, FALSE) THEN
        RAISE EXCEPTION 'p_wait_seconds must be between 0 and 3600, not %',
            coalesce(p_wait_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_deadline := clock_timestamp() + p_wait_seconds * INTERVAL '1 second';

    LOOP
        SELECT
            e.value AS stale_value,
            e.value_bytes AS stale_bytes,
            e.expires_at > now() AS live,
            coalesce(e.locked_until > clock_timestamp(), FALSE) AS locked
        INTO v_entry
        FROM monitoring.cache_entries AS e
        WHERE e.index_key = monitoring.cache_index_key(p_key) AND e.key = p_key;
        v_found := FOUND;

        IF v_found AND v_entry.live THEN
            RETURN QUERY SELECT 'hit', v_entry.stale_value, v_entry.stale_bytes;
            RETURN;
        END IF;

        IF NOT v_found OR NOT v_entry.locked THEN
            v_lock_until := clock_timestamp() + p_lock_seconds * INTERVAL '1 second';
            IF v_found THEN
                UPDATE monitoring.cache_entries AS e
                SET locked_until = v_lock_until
                WHERE
                    e.index_key = monitoring.cache_index_key(p_key)
                    AND e.key = p_key
                    AND e.expires_at <= now()
                    AND (e.locked_until IS NULL OR e.locked_until <= clock_timestamp());
            ELSE
                -- DO NOTHING takes no row lock when another caller got there first.
                INSERT INTO monitoring.cache_entries AS e (key, expires_at, locked_until)
                VALUES (p_key, '-infinity', v_lock_until)
                ON CONFLICT (index_key) DO NOTHING;
            END IF;
            IF FOUND THEN
                RETURN QUERY SELECT 'compute', v_entry.stale_value, v_entry.stale_bytes;
                RETURN;
            END IF;
            -- Another caller changed the row since we read it: read it again.
            CONTINUE;
        END IF;

        IF num_nonnulls(v_entry.stale_value, v_entry.stale_bytes) = 1 THEN
            RETURN QUERY SELECT 'stale', v_entry.stale_value, v_entry.stale_bytes;
            RETURN;
        END IF;
        IF clock_timestamp() >= v_deadline THEN
            RETURN QUERY SELECT 'timeout', NULL::jsonb, NULL::bytea;
            RETURN;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;

COMMENT ON FUNCTION monitoring.cache_get_or_lock(text, double precision, double precision) IS
'Stampede protection: (''hit'', value) for a live entry; (''compute'', stale value or NULL) '
'when the caller must compute the value and cache_set it; (''stale'', value) or, after '
'waiting p_wait_seconds, (''timeout'', NULL) while another caller computes it';

CREATE FUNCTION monitoring.cache_unlock(p_key text)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM monitoring.cache_entries AS e
    WHERE
        e.index_key = monitoring.cache_index_key(p_key)
        AND e.key = p_key
        AND e.expires_at = '-infinity'
        AND e.value IS NULL
        AND e.value_bytes IS NULL;
    IF FOUND THEN
        RETURN TRUE;
    END IF;
    UPDATE monitoring.cache_entries AS e
    SET locked_until = NULL
    WHERE
        e.index_key = monitoring.cache_index_key(p_key)
        AND e.key = p_key
        AND e.locked_until IS NOT NULL;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION monitoring.cache_unlock(text) IS
'Gives up the cache_get_or_lock lock on p_key without storing a value';

-- Clients count hits and misses in memory and report them every few seconds: counting in
-- cache_get would turn every read into a write, and a shared counter row into the hottest row
-- of the database (shared/reference/facts.md, "Hot rows").
CREATE FUNCTION monitoring.cache_record_stats(p_hits bigint, p_misses bigint)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT coalesce(p_hits >= 0 AND p_misses >= 0, FALSE) THEN
        RAISE EXCEPTION 'p_hits and p_misses must be counts (0 or more), not % and %',
            coalesce(p_hits::text, 'NULL'), coalesce(p_misses::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A count stops at the largest bigint (cache_stats' sums too): any writer may report,
    -- and an overflow would fail every later report of its shard.
    INSERT INTO monitoring.cache_counters AS c (shard, hits, misses)
    VALUES (pg_backend_pid() % 16, p_hits, p_misses)
    ON CONFLICT (shard) DO UPDATE
        SET
            hits = least(c.hits::numeric + excluded.hits, 9223372036854775807)::bigint,
            misses = least(c.misses::numeric + excluded.misses, 9223372036854775807)::bigint;
END
$$;

COMMENT ON FUNCTION monitoring.cache_record_stats(bigint, bigint) IS
'Adds a client''s hit and miss counts to the cache statistics';

-- Stored size: compressed as on disk, without row headers and indexes.
CREATE FUNCTION monitoring._cache_entry_bytes(p_key text, p_value jsonb, p_bytes bytea)
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT pg_catalog.pg_column_size(p_key)::bigint
        + coalesce(pg_catalog.pg_column_size(p_value), pg_catalog.pg_column_size(p_bytes), 0);
$$;

COMMENT ON FUNCTION monitoring._cache_entry_bytes(text, jsonb, bytea) IS
'The bytes an entry counts for against cache.max_bytes: its key and value as stored';

CREATE FUNCTION monitoring.cache_stats()
RETURNS TABLE (
    entries bigint,
    expired bigint,
    bytes bigint,
    hits bigint,
    misses bigint,
    expired_removed bigint,
    evicted bigint,
    max_entries bigint,
    max_bytes bigint
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        t.entries,
        t.expired,
        t.bytes,
        c.hits,
        c.misses,
        c.expired_removed,
        c.evicted,
        monitoring.get_setting('cache.max_entries')::bigint,
        monitoring.get_setting('cache.max_bytes')::bigint
    FROM (
        SELECT
            count(*) FILTER (WHERE e.expires_at > now()) AS entries,
            count(*) FILTER (WHERE e.expires_at <= now()) AS expired,
            coalesce(sum(monitoring._cache_entry_bytes(e.key, e.value, e.value_bytes)), 0)::bigint
                AS bytes
        FROM monitoring.cache_entries AS e
    ) AS t,
        (
            SELECT
                least(coalesce(sum(s.hits), 0), 9223372036854775807)::bigint AS hits,
                least(coalesce(sum(s.misses), 0), 9223372036854775807)::bigint AS misses,
                least(coalesce(sum(s.expired_removed), 0), 9223372036854775807)::bigint
                    AS expired_removed,
                least(coalesce(sum(s.evicted), 0), 9223372036854775807)::bigint AS evicted
            FROM monitoring.cache_counters AS s
        ) AS c;
$$;

COMMENT ON FUNCTION monitoring.cache_stats() IS
'Live entries, expired rows awaiting cleanup, stored bytes, reported hits and misses, rows '
'removed by cleanup and eviction, and the bounds. Counts the whole table: not for hot paths.';

-- For pg_cron or a worker, every minute or so. Each batch is one DELETE of at most
-- cache.cleanup_batch_size rows, SKIP LOCKED so that it never waits for a writer; at most 100
-- batches a run, so one run stays short however far behind it is.
CREATE FUNCTION monitoring.run_cache_maintenance()
RETURNS TABLE (expired_removed bigint, evicted bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch bigint := monitoring.get_setting('cache.cleanup_batch_size')::bigint;
    v_max_entries bigint := monitoring.get_setting('cache.max_entries')::bigint;
    v_max_bytes bigint := monitoring.get_setting('cache.max_bytes')::bigint;
    v_deleted bigint;
    v_batches integer := 0;
    v_excess bigint;
    v_freed bigint;
BEGIN
    expired_removed := 0;
    evicted := 0;
    LOOP
        -- A locked expired row keeps its stale value for the waiters of cache_get_or_lock.
        DELETE FROM monitoring.cache_entries AS e
        WHERE e.index_key IN (
            SELECT x.index_key
            FROM monitoring.cache_entries AS x
            WHERE
                x.expires_at <= now()
                AND (x.locked_until IS NULL OR x.locked_until <= now())
            ORDER BY x.expires_at
            LIMIT v_batch
            FOR UPDATE SKIP LOCKED
        );
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
        expired_removed := expired_removed + v_deleted;
        v_batches := v_batches + 1;
        EXIT WHEN v_deleted < v_batch OR v_batches >= 100;
    END LOOP;

    SELECT count(*) - v_max_entries INTO v_excess FROM monitoring.cache_entries;
    WHILE v_excess > 0 AND v_batches < 100 LOOP
        v_deleted := monitoring._cache_evict(least(v_excess, v_batch));
        EXIT WHEN v_deleted = 0;
        evicted := evicted + v_deleted;
        v_excess := v_excess - v_deleted;
        v_batches := v_batches + 1;
    END LOOP;

    SELECT coalesce(sum(monitoring._cache_entry_bytes(e.key, e.value, e.value_bytes)), 0)
        - v_max_bytes
    INTO v_excess
    FROM monitoring.cache_entries AS e;
    WHILE v_excess > 0 AND v_batches < 100 LOOP
        WITH victims AS (
            DELETE FROM monitoring.cache_entries AS e
            WHERE e.index_key IN (
                SELECT x.index_key
                FROM monitoring.cache_entries AS x
                ORDER BY x.expires_at, x.created_at
                LIMIT v_batch
                FOR UPDATE SKIP LOCKED
            )
            RETURNING monitoring._cache_entry_bytes(e.key, e.value, e.value_bytes) AS bytes
        )

        SELECT count(*), coalesce(sum(v.bytes), 0) INTO v_deleted, v_freed
        FROM victims AS v;
        EXIT WHEN v_deleted = 0;
        evicted := evicted + v_deleted;
        v_excess := v_excess - v_freed;
        v_batches := v_batches + 1;
    END LOOP;

    IF expired_removed + evicted > 0 THEN
        INSERT INTO monitoring.cache_counters AS c (shard, expired_removed, evicted)
        VALUES (pg_backend_pid() % 16, expired_removed, evicted)
        ON CONFLICT (shard) DO UPDATE
            SET
                expired_removed = c.expired_removed + excluded.expired_removed,
                evicted = c.evicted + excluded.evicted;
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION monitoring.run_cache_maintenance() IS
'Deletes expired entries in batches, then evicts (nearest expiry first, no expiry last) '
'down to cache.max_entries and cache.max_bytes; returns how many rows each step removed';

CREATE FUNCTION monitoring.cache_flush()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE monitoring.cache_entries;
END
$$;

COMMENT ON FUNCTION monitoring.cache_flush() IS
'Empties the cache at once (Redis FLUSHDB); the statistics counters stay';

GRANT SELECT, INSERT, UPDATE, DELETE ON monitoring.cache_entries TO monitoring_writer;
GRANT EXECUTE ON FUNCTION
monitoring.cache_index_key(text),
monitoring._cache_bad_ttl(double precision),
monitoring._cache_expiry(double precision),
monitoring._cache_checked_value(jsonb, text),
monitoring._cache_value(jsonb, text),
monitoring._cache_checked_tags(text[]),
monitoring._cache_tags(text[]),
monitoring._cache_as_bytes(jsonb, bytea),
monitoring.cache_get(text),
monitoring.cache_get_bytes(text),
monitoring.cache_get_many(text[]),
monitoring.cache_get_many_bytes(text[]),
monitoring._cache_evict_if_full(),
monitoring._cache_store(text, jsonb, bytea, double precision, boolean, boolean, text[]),
monitoring._cache_put(text, jsonb, bytea, timestamptz, text[]),
monitoring._cache_set(text, jsonb, bytea, double precision, boolean, boolean, text[]),
monitoring.cache_set(text, jsonb, double precision, boolean, boolean, text[]),
monitoring.cache_set_bytes(text, bytea, double precision, boolean, boolean, text[]),
monitoring._cache_store_many(text[], jsonb[], bytea[], double precision),
monitoring.cache_set_many(jsonb, double precision),
monitoring.cache_set_many_bytes(text[], bytea[], double precision),
monitoring.cache_delete(text[]),
monitoring.cache_exists(text[]),
monitoring.cache_expire(text, double precision),
monitoring.cache_ttl(text),
monitoring._cache_add(text, jsonb, bytea, bigint),
monitoring.cache_incr(text, bigint),
monitoring._cache_regex_char(text),
monitoring.cache_glob(text),
monitoring._cache_matching(text, text, bigint),
monitoring.cache_keys(text, text, bigint),
monitoring.cache_delete_pattern(text),
monitoring.cache_delete_tag(text),
monitoring.cache_get_or_lock(text, double precision, double precision),
monitoring.cache_unlock(text),
monitoring.cache_record_stats(bigint, bigint)
TO monitoring_writer;
GRANT EXECUTE ON FUNCTION monitoring.cache_stats() TO monitoring_reader, monitoring_writer;
GRANT EXECUTE ON FUNCTION monitoring.run_cache_maintenance() TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.cache_flush() TO monitoring_admin;
