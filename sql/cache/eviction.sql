-- Eviction: the cache kept within cache.max_entries between maintenance runs.

-- Enforces max_entries between maintenance runs; cache writes call it for one write in ~1000.
-- It must be cheap when the cache is within bounds, so it counts rows from the statistics
-- system (committed rows, plus this transaction's own changes) rather than with count(*).
-- SECURITY DEFINER: it reads settings, which the writer may not.
CREATE OR REPLACE FUNCTION monitoring._cache_evict_if_full()
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
CREATE OR REPLACE FUNCTION monitoring._cache_evict(p_count bigint)
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

GRANT EXECUTE ON FUNCTION monitoring._cache_evict_if_full() TO monitoring_writer;
