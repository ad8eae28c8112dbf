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

GRANT SELECT, INSERT, UPDATE, DELETE ON monitoring.cache_entries TO monitoring_writer;
