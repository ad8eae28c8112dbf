-- Clients count hits and misses in memory and report them every few seconds: counting in
-- cache_get would turn every read into a write, and a shared counter row into the hottest row
-- of the database (shared/reference/facts.md, "Hot rows").
CREATE OR REPLACE FUNCTION monitoring.cache_record_stats(p_hits bigint, p_misses bigint)
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
CREATE OR REPLACE FUNCTION monitoring._cache_entry_bytes(p_key text, p_value jsonb, p_bytes bytea)
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT pg_catalog.pg_column_size(p_key)::bigint
        + coalesce(pg_catalog.pg_column_size(p_value), pg_catalog.pg_column_size(p_bytes), 0);
$$;

COMMENT ON FUNCTION monitoring._cache_entry_bytes(text, jsonb, bytea) IS
'The bytes an entry counts for against cache.max_bytes: its key and value as stored';

-- The counters summed over their shards (at most bigint's maximum: they only grow), for
-- cache_stats and prometheus_metrics.
CREATE OR REPLACE FUNCTION monitoring._cache_counter_totals(
    OUT hits bigint, OUT misses bigint, OUT expired_removed bigint, OUT evicted bigint
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        least(coalesce(sum(s.hits), 0), 9223372036854775807)::bigint,
        least(coalesce(sum(s.misses), 0), 9223372036854775807)::bigint,
        least(coalesce(sum(s.expired_removed), 0), 9223372036854775807)::bigint,
        least(coalesce(sum(s.evicted), 0), 9223372036854775807)::bigint
    FROM monitoring.cache_counters AS s;
$$;

CREATE OR REPLACE FUNCTION monitoring.cache_stats()
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
    ) AS t
    CROSS JOIN monitoring._cache_counter_totals() AS c;
$$;

COMMENT ON FUNCTION monitoring.cache_stats() IS
'Live entries, expired rows awaiting cleanup, stored bytes, reported hits and misses, rows '
'removed by cleanup and eviction, and the bounds. Counts the whole table: not for hot paths.';

GRANT EXECUTE ON FUNCTION monitoring.cache_record_stats(bigint, bigint) TO monitoring_writer;
GRANT EXECUTE ON FUNCTION monitoring.cache_stats() TO monitoring_reader, monitoring_writer;
