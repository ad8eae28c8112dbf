-- For pg_cron or a worker, every minute or so. Each batch is one DELETE of at most
-- cache.cleanup_batch_size rows, SKIP LOCKED so that it never waits for a writer; at most 100
-- batches a run, so one run stays short however far behind it is.
CREATE OR REPLACE FUNCTION monitoring.run_cache_maintenance()
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

CREATE OR REPLACE FUNCTION monitoring.cache_flush()
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

GRANT EXECUTE ON FUNCTION monitoring.run_cache_maintenance() TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.cache_flush() TO monitoring_admin;
