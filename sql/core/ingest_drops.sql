-- Counting what ingest refuses or drops (core/ingest_drops_table.sql): record_spans and
-- record_logs count the items they refuse, record_metrics its data points. Called inside
-- those functions' transactions: a request refused whole by an exception rolls its count
-- back with it, and is the client's (or serve's) to count.

-- Adds p_count to the items of p_signal (events, spans, logs, metrics) dropped for
-- p_reason, a short label (lowercase letters, digits and underscores: it becomes a
-- Prometheus label value, so a small fixed set per signal, not a message).
CREATE OR REPLACE FUNCTION monitoring._count_ingest_drop(
    p_signal text, p_reason text, p_count bigint
)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_count IS NULL OR p_count <= 0 THEN
        RETURN;
    END IF;
    IF p_signal IS NULL OR p_signal NOT IN ('events', 'spans', 'logs', 'metrics') THEN
        RAISE EXCEPTION 'p_signal must be events, spans, logs or metrics, not %',
            coalesce(p_signal, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_reason IS NULL OR p_reason COLLATE "C" !~ '^[a-z][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'p_reason must be a short label (a-z, 0-9, _; 40 at most), not %',
            coalesce(p_reason, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO monitoring.ingest_drops AS d (signal, reason, shard, dropped)
    VALUES (p_signal, p_reason, pg_catalog.pg_backend_pid() % 16, p_count)
    ON CONFLICT (signal, reason, shard) DO UPDATE
        SET dropped = least(d.dropped::numeric + excluded.dropped, 9223372036854775807)::bigint;
END
$$;

COMMENT ON FUNCTION monitoring._count_ingest_drop(text, text, bigint) IS
'Adds p_count items of p_signal dropped for p_reason (a short label) to the ingest drops '
'prometheus_metrics() exposes';

-- The label an OTLP item's refusal (the reason _otlp_spans and _otlp_log_records give) is
-- counted under: too_old (before the retention window), in_future, or invalid (anything
-- else in the item is wrong).
CREATE OR REPLACE FUNCTION monitoring._otlp_drop_reason(p_reason text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_reason LIKE '%retention window%' THEN 'too_old'
        WHEN p_reason LIKE '%in the future' THEN 'in_future'
        ELSE 'invalid'
    END;
$$;

-- Counts an OTLP request's refused items (their refusal sentences) by drop reason.
CREATE OR REPLACE FUNCTION monitoring._count_otlp_refusals(p_signal text, p_reasons text[])
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM monitoring._count_ingest_drop(p_signal, d.reason, d.n)
    FROM (
        SELECT monitoring._otlp_drop_reason(r.reason) AS reason, count(*) AS n
        FROM unnest(p_reasons) AS r (reason)
        WHERE r.reason IS NOT NULL
        GROUP BY 1
        -- shard rows in one order, so two callers sharing a shard never deadlock
        ORDER BY 1
    ) AS d;
END
$$;
