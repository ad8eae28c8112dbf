-- Reading traces: a trace by id with no time range (what users of Jaeger and Promscale found
-- slow), RED per operation and the service map from the minute summaries, never from spans.

-- A trace's spans in tree order (each parent before its children, siblings by start), with
-- their depth and the errors captured in them (errors whose span is not in the trace go to
-- the first row). trace_parts says when the trace's spans started, so the spans are read
-- from the partitions of those days only, by primary key.
CREATE OR REPLACE FUNCTION monitoring.trace_tree(p_trace_id text, p_max_spans integer DEFAULT 10000)
RETURNS TABLE (
    depth integer,
    span_id text,
    parent_span_id text,
    service text,
    operation text,
    kind text,
    start_time timestamptz,
    offset_ms numeric,
    duration_ms numeric,
    status_code text,
    status_message text,
    attributes jsonb,
    events jsonb,
    errors jsonb
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- One plan for every call, which finds the partitions to read when it starts: a plan made
-- for each call's days would weigh all 30-odd partitions first (milliseconds, ten times
-- the lookup itself).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_trace_id text := lower(p_trace_id);
    v_first timestamptz;
    v_last timestamptz;
    v_errors jsonb;
BEGIN
    SELECT min(p.first_start), max(p.last_start) INTO v_first, v_last
    FROM monitoring.trace_parts AS p
    WHERE p.trace_id = v_trace_id;
    IF v_first IS NULL THEN
        RETURN;
    END IF;
    -- The errors captured in the trace, by span ('' for none), in a statement of their own:
    -- on Citus events are distributed by issue, not trace, and a recursive query is planned
    -- only when every table in it is read on the one shard of the trace.
    SELECT jsonb_object_agg(e.span_id, e.list) INTO v_errors
    FROM (
        SELECT
            coalesce(e.span_id, '') AS span_id,
            jsonb_agg(jsonb_build_object(
                'event_id', e.id, 'issue_id', e.issue_id, 'exception_type', e.exception_type,
                'message', e.message, 'occurred_at', monitoring._json_time(e.occurred_at)
            ) ORDER BY e.occurred_at) AS list
        FROM monitoring.errors AS e
        WHERE e.trace_id = v_trace_id
        GROUP BY coalesce(e.span_id, '')
    ) AS e;
    RETURN QUERY
    WITH RECURSIVE span_set AS MATERIALIZED (
        SELECT s.*
        FROM monitoring.spans AS s
        WHERE s.trace_id = v_trace_id AND s.start_time BETWEEN v_first AND v_last
        ORDER BY s.start_time
        LIMIT p_max_spans
    ),

    tree AS (
        SELECT
            r.span_id,
            r.start_time,
            0 AS depth,
            ARRAY[lpad((extract(EPOCH FROM r.start_time) * 1000000)::bigint::text, 20, '0') || r.span_id]
            AS path
        FROM span_set AS r
        WHERE r.parent_span_id IS NULL
            OR NOT EXISTS (SELECT FROM span_set AS x WHERE x.span_id = r.parent_span_id)
        UNION ALL
        SELECT
            c.span_id,
            c.start_time,
            t.depth + 1,
            t.path || (lpad((extract(EPOCH FROM c.start_time) * 1000000)::bigint::text, 20, '0') || c.span_id)
        FROM tree AS t
        INNER JOIN span_set AS c ON c.parent_span_id = t.span_id
        -- ids are the sender's: a span sent as its own ancestor must not loop
        WHERE t.depth < 100
    ),

    ordered AS (
        SELECT
            t.depth,
            s.*,
            row_number() OVER (ORDER BY t.path) AS ord
        FROM tree AS t
        INNER JOIN span_set AS s ON t.span_id = s.span_id AND t.start_time = s.start_time
    )

    SELECT
        o.depth,
        o.span_id,
        o.parent_span_id,
        o.service,
        o.operation,
        o.kind,
        o.start_time,
        round((extract(EPOCH FROM o.start_time - v_first) * 1000)::numeric, 3),
        round(o.duration_ms, 3),
        o.status_code,
        o.status_message,
        o.attributes,
        o.events,
        nullif(coalesce(v_errors -> o.span_id, '[]') || CASE WHEN o.ord = 1 THEN coalesce((
            SELECT jsonb_agg(u.item)
            FROM jsonb_each(v_errors) AS x (span_id, list)
            CROSS JOIN LATERAL jsonb_array_elements(x.list) AS u (item)
            WHERE x.span_id = '' OR NOT EXISTS (SELECT FROM span_set AS y WHERE y.span_id = x.span_id)
        ), '[]') ELSE '[]' END, '[]')
    FROM ordered AS o
    ORDER BY o.ord;
END
$$;

COMMENT ON FUNCTION monitoring.trace_tree(text, integer) IS
'A trace''s spans in tree order with depth, offset from the trace''s start, duration and the '
'errors captured in each; fast at any age, no time range needed';

-- Traces that started within the last p_since, newest first (p_slowest: slowest first),
-- of a root service, with errors only: what `pg-monitoring traces` lists. The window is
-- read by index (trace_parts by first start), then each trace as monitoring.traces adds it
-- up: a view that adds up on read can not sort all traces by an index itself.
CREATE OR REPLACE FUNCTION monitoring.recent_traces(
    p_since interval DEFAULT '1 day',
    p_service text DEFAULT NULL,
    p_errors boolean DEFAULT FALSE,
    p_slowest boolean DEFAULT FALSE,
    p_limit integer DEFAULT 20
)
RETURNS SETOF monitoring.traces
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.*
    FROM (
        SELECT DISTINCT p.trace_id
        FROM monitoring.trace_parts AS p
        WHERE p.first_start >= now() - coalesce(p_since, interval '1 day')
    ) AS c
    CROSS JOIN LATERAL (
        SELECT * FROM monitoring.traces AS v WHERE v.trace_id = c.trace_id
    ) AS t
    WHERE (p_service IS NULL OR t.root_service = p_service)
        AND (NOT p_errors OR t.error)
    ORDER BY CASE WHEN p_slowest THEN t.duration_ms END DESC NULLS LAST, t.start_time DESC
    LIMIT greatest(p_limit, 0);
$$;

COMMENT ON FUNCTION monitoring.recent_traces(interval, text, boolean, boolean, integer) IS
'Traces started within p_since (NULL: a day), newest (or p_slowest) first, of root service '
'p_service, '
'with errors only if p_errors; at most p_limit';

-- RED per operation over the last p_window: requests, requests per second, error rate and
-- latency percentiles (from the histograms, within about 10%).
CREATE OR REPLACE FUNCTION monitoring.operation_stats(
    p_window interval DEFAULT '15 minutes', p_service text DEFAULT NULL
)
RETURNS TABLE (
    service text,
    operation text,
    kind text,
    requests bigint,
    requests_per_second numeric,
    errors bigint,
    error_rate numeric,
    avg_ms numeric,
    p50_ms numeric,
    p95_ms numeric,
    p99_ms numeric
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        o.service,
        o.name,
        monitoring._span_kind(o.kind),
        m.calls,
        round(m.calls / greatest(extract(EPOCH FROM p_window), 1)::numeric, 3),
        m.errors,
        round(m.errors::numeric / greatest(m.calls, 1), 4),
        round(m.duration_ns_sum / greatest(m.calls, 1) / 1000000.0, 3),
        round(monitoring.histogram_quantile(m.histogram, 0.5)::numeric, 3),
        round(monitoring.histogram_quantile(m.histogram, 0.95)::numeric, 3),
        round(monitoring.histogram_quantile(m.histogram, 0.99)::numeric, 3)
    FROM (
        SELECT
            t.operation_id,
            sum(t.calls)::bigint AS calls,
            sum(t.errors)::bigint AS errors,
            sum(t.duration_ns_sum) AS duration_ns_sum,
            monitoring.histogram_sum(t.histogram) AS histogram
        FROM monitoring.trace_operation_minutes AS t
        WHERE t.minute >= date_trunc('minute', now() - p_window, 'UTC')
        GROUP BY t.operation_id
    ) AS m
    INNER JOIN monitoring.trace_operations AS o ON m.operation_id = o.id
    WHERE p_service IS NULL OR o.service = p_service
    ORDER BY m.calls DESC, o.service, o.name;
$$;

COMMENT ON FUNCTION monitoring.operation_stats(interval, text) IS
'Per service and operation over the last p_window: requests, requests/s, errors, error rate, '
'mean and p50/p95/p99 latency in ms; read from per-minute summaries';

-- Who calls whom over the last p_window: services (p_by_operation: operations) and the calls
-- and errors between them, from parent -> child span edges. Calls within one service are
-- left out unless p_by_operation.
CREATE OR REPLACE FUNCTION monitoring.service_map(
    p_window interval DEFAULT '1 hour', p_by_operation boolean DEFAULT FALSE
)
RETURNS TABLE (
    caller_service text,
    caller_operation text,
    callee_service text,
    callee_operation text,
    calls bigint,
    errors bigint
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        p.service,
        CASE WHEN p_by_operation THEN p.name END,
        c.service,
        CASE WHEN p_by_operation THEN c.name END,
        sum(e.calls)::bigint,
        sum(e.errors)::bigint
    FROM monitoring.trace_edge_minutes AS e
    INNER JOIN monitoring.trace_operations AS p ON e.parent_operation_id = p.id
    INNER JOIN monitoring.trace_operations AS c ON e.child_operation_id = c.id
    WHERE e.minute >= date_trunc('minute', now() - p_window, 'UTC')
        AND (p_by_operation OR p.service <> c.service)
    GROUP BY 1, 2, 3, 4
    ORDER BY 5 DESC, 1, 3;
$$;

COMMENT ON FUNCTION monitoring.service_map(interval, boolean) IS
'Caller -> callee services (or operations) over the last p_window with call and error '
'counts, from parent/child spans';

-- Requests, errors and p95 latency of each service's entry points (server and consumer
-- spans) per p_step from p_from to p_to: a dashboard's time series, read from the
-- per-minute summaries rather than the spans. At most about 2,000 steps: a longer range
-- widens the step.
CREATE OR REPLACE FUNCTION monitoring.service_series(
    p_from timestamptz,
    p_to timestamptz,
    p_step interval DEFAULT '1 minute',
    p_services text[] DEFAULT NULL
)
RETURNS TABLE (
    -- quoted: time is a type name here; Grafana wants a column named time
    "time" timestamptz,  -- noqa: RF06
    service text,
    requests bigint,
    errors bigint,
    p95_ms numeric
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        to_timestamp(floor(extract(EPOCH FROM t.minute) / s.seconds) * s.seconds),
        o.service,
        sum(t.calls)::bigint,
        sum(t.errors)::bigint,
        round(
            monitoring.histogram_quantile(monitoring.histogram_sum(t.histogram), 0.95)::numeric, 3
        )
    FROM monitoring.trace_operation_minutes AS t
    INNER JOIN monitoring.trace_operations AS o ON t.operation_id = o.id
    CROSS JOIN (
        SELECT greatest(
            extract(EPOCH FROM p_step), 60, extract(EPOCH FROM p_to - p_from) / 2000
        ) AS seconds
    ) AS s
    WHERE t.minute >= date_trunc('minute', p_from, 'UTC')
        AND t.minute <= p_to
        AND o.kind IN (2, 5)
        AND (p_services IS NULL OR o.service = ANY(p_services))
    GROUP BY 1, 2
    ORDER BY 1, 2;
$$;

COMMENT ON FUNCTION monitoring.service_series(timestamptz, timestamptz, interval, text[]) IS
'Per p_step (at least a minute) from p_from to p_to and service (p_services: these only): '
'requests, errors and p95 latency in ms of its server and consumer spans; from the '
'per-minute summaries';

GRANT EXECUTE ON FUNCTION monitoring.trace_tree(text, integer),
monitoring.recent_traces(interval, text, boolean, boolean, integer),
monitoring.operation_stats(interval, text), monitoring.service_map(interval, boolean),
monitoring.service_series(timestamptz, timestamptz, interval, text[])
TO monitoring_reader, monitoring_admin;
