-- Stampede protection. One caller gets 'compute' and holds a lock on the key for
-- p_lock_seconds; its cache_set releases it (cache_unlock if it gives up). Meanwhile the others
-- get the expired value as 'stale' if the row still has one, or else wait up to p_wait_seconds
-- for the new value ('hit') and then give up ('timeout'). The lock is a column of the entry's
-- row, not a session advisory lock, because a pooled client may set the value on another
-- connection. No row lock is held while waiting: the waiter would block the very cache_set it
-- waits for.
CREATE OR REPLACE FUNCTION monitoring.cache_get_or_lock(
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

CREATE OR REPLACE FUNCTION monitoring.cache_unlock(p_key text)
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

GRANT EXECUTE ON FUNCTION
monitoring.cache_get_or_lock(text, double precision, double precision),
monitoring.cache_unlock(text)
TO monitoring_writer;
