-- Span ingest: monitoring.record_spans(request) takes an OTLP ExportTraceServiceRequest in
-- its JSON mapping, as `pg-monitoring serve` and the Python exporter send it, or as psql can.
-- Set-based: a batch of 1,000 spans is a handful of statements, not 1,000 calls. A span whose
-- identity is wrong is refused with a reason (OTLP's partial success); the others are
-- stored. A retry of spans already stored changes nothing (the key is trace, span, start).

CREATE OR REPLACE FUNCTION monitoring.record_spans(p_request jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The sets joined here come from functions over the request, whose sizes the planner can
-- only guess: it would join them by nested loops (a thousand spans by a thousand), and its
-- guesses of millions of rows would compile each query with JIT (seconds, for a batch that
-- takes milliseconds). Hash joins, no JIT; the settings cost once per call, a batch.
-- Generic plans: a custom plan would be made for every call with the request, hundreds of
-- kilobytes, as a constant folded into each query (6% of a call's instructions).
SET enable_nestloop = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_cfg jsonb;
    v_key_pattern text;
    v_key_likes text[];
    v_safe_keys text[];
    v_sources jsonb;
    v_spans monitoring._otlp_span[];
    v_oldest timestamptz;
    v_newest timestamptz := now() + interval '1 day';
    v_max_bytes integer;
    v_max_length integer;
    v_max_events integer;
    v_total integer;
    v_valid integer;
    v_rejected integer;
    v_reasons text;
    v_stored integer;
BEGIN
    SELECT r.cfg, r.total, r.sources, r.key_pattern, r.key_likes, r.safe_keys
    INTO v_cfg, v_total, v_sources, v_key_pattern, v_key_likes, v_safe_keys
    FROM monitoring._otlp_request(p_request, 'spans') AS r;
    IF v_total = 0 THEN
        RETURN jsonb_build_object('stored', 0, 'duplicates', 0, 'rejected', 0, 'error_message', NULL);
    END IF;
    v_oldest := now() - make_interval(days => (v_cfg ->> 'traces.retention_days')::integer);
    v_max_bytes := (v_cfg ->> 'otlp.max_attributes_bytes')::integer;
    v_max_length := (v_cfg ->> 'otlp.max_attribute_length')::integer;
    v_max_events := (v_cfg ->> 'traces.max_events')::integer;

    -- Read and checked once, kept for the statements below.
    v_spans := ARRAY(SELECT sp FROM monitoring._otlp_spans(p_request, v_oldest, v_newest) AS sp);

    WITH flat AS MATERIALIZED (
        SELECT sp.service, sp.kind, sp.name, sp.reason, sp.r, sp.s, sp.i
        FROM unnest(v_spans) AS sp
    ),

    new_operations AS (
        -- operations before the spans, for the same reason as resources (_otlp_request)
        INSERT INTO monitoring.trace_operations AS o (service, kind, name)
        SELECT DISTINCT f.service, f.kind, f.name
        -- a join, not NOT EXISTS, as for resources (otlp/values.sql)
        FROM flat AS f
        LEFT JOIN monitoring.trace_operations AS e
            ON f.service = e.service AND f.kind = e.kind AND f.name = e.name
        WHERE f.reason IS NULL AND e.id IS NULL
        ORDER BY f.service, f.kind, f.name
        ON CONFLICT ON CONSTRAINT trace_operations_identity DO NOTHING
    )

    SELECT
        count(*) FILTER (WHERE f.reason IS NULL),
        count(*) FILTER (WHERE f.reason IS NOT NULL),
        monitoring._otlp_refusals(
            'spans', v_total,
            jsonb_agg(jsonb_build_array(f.reason, f.r, f.s, f.i)) FILTER (WHERE f.reason IS NOT NULL)
        )
    INTO v_valid, v_rejected, v_reasons
    FROM flat AS f;
    IF v_rejected > 0 THEN
        PERFORM monitoring._count_otlp_refusals(
            'spans', ARRAY(SELECT sp.reason FROM unnest(v_spans) AS sp)
        );
    END IF;

    WITH batch AS MATERIALIZED (
        SELECT
            sp.*,
            (v_sources -> (sp.r || '.' || sp.s) ->> 0)::integer AS resource_id,
            o.id AS operation_id
        FROM unnest(v_spans) AS sp
        INNER JOIN monitoring.trace_operations AS o
            ON sp.service = o.service AND sp.kind = o.kind AND sp.name = o.name
        WHERE sp.reason IS NULL
    ),

    stored AS (
        INSERT INTO monitoring.trace_spans AS t (
            start_time, duration_ns, operation_id, resource_id, status_code, trace_id, span_id,
            parent_span_id, status_message, attributes, events, links
        )
        SELECT
            b.start_time,
            b.duration_ns,
            b.operation_id,
            b.resource_id,
            b.status_code,
            b.trace_id,
            b.span_id,
            b.parent_span_id,
            CASE WHEN b.status_message <> '' THEN monitoring.truncate_text(
                CASE WHEN v_key_pattern IS NULL THEN b.status_message
                    ELSE monitoring.scrub_text(b.status_message) END,
                v_max_length
            ) END,
            -- cut and scrubbed only when a cheap test says it may change something (nesting
            -- is bounded already, by _otlp_value)
            CASE
                WHEN b.attributes IS NULL THEN '{}'
                WHEN pg_column_size(b.attributes) > least(v_max_length, v_max_bytes)
                    OR v_key_pattern IS NOT NULL AND monitoring._may_hold_secrets(
                        b.attributes::text, v_key_pattern, v_key_likes
                    )
                    THEN monitoring._otlp_clean(
                        b.attributes, v_max_bytes, v_max_length,
                        v_key_pattern, v_key_likes, v_safe_keys
                    )
                ELSE b.attributes
            END,
            CASE WHEN b.events IS NOT NULL THEN monitoring._otlp_span_extras(
                b.events, 'events', v_max_events, v_max_bytes, v_max_length,
                v_key_pattern, v_key_likes, v_safe_keys
            ) END,
            CASE WHEN b.links IS NOT NULL THEN monitoring._otlp_span_extras(
                b.links, 'links', v_max_events, v_max_bytes, v_max_length,
                v_key_pattern, v_key_likes, v_safe_keys
            ) END
        FROM (
            -- one row per key even when a request repeats a span (ON CONFLICT can not take
            -- two rows of one key in one statement)
            SELECT DISTINCT ON (d.trace_id, d.span_id, d.start_time) d.*
            FROM batch AS d
            ORDER BY d.trace_id, d.span_id, d.start_time, d.r, d.s, d.i
        ) AS b
        ON CONFLICT DO NOTHING
        RETURNING t.trace_id, t.span_id, t.parent_span_id, t.start_time, t.duration_ns,
            t.operation_id, t.status_code
    ),

    parts AS (
        INSERT INTO monitoring.trace_parts (
            trace_id, first_start, last_start, last_end, span_count, error_count,
            root_span_id, root_operation_id, root_status, root_remote
        )
        SELECT
            st.trace_id,
            min(st.start_time),
            max(st.start_time),
            max(st.start_time + st.duration_ns / 1000 * interval '1 microsecond'),
            count(*),
            count(*) FILTER (WHERE st.status_code = 2),
            (array_agg(st.span_id ORDER BY b.remote_parent, st.start_time)
                FILTER (WHERE st.parent_span_id IS NULL OR b.remote_parent))[1],
            (array_agg(st.operation_id ORDER BY b.remote_parent, st.start_time)
                FILTER (WHERE st.parent_span_id IS NULL OR b.remote_parent))[1],
            (array_agg(st.status_code ORDER BY b.remote_parent, st.start_time)
                FILTER (WHERE st.parent_span_id IS NULL OR b.remote_parent))[1],
            (array_agg(b.remote_parent ORDER BY b.remote_parent, st.start_time)
                FILTER (WHERE st.parent_span_id IS NULL OR b.remote_parent))[1]
        FROM stored AS st
        INNER JOIN batch AS b
            ON st.trace_id = b.trace_id AND st.span_id = b.span_id AND st.start_time = b.start_time
        GROUP BY st.trace_id
        -- in key order, as every writer of these tables does
        ORDER BY st.trace_id
    ),

    minutes AS (
        INSERT INTO monitoring.trace_operation_minutes (
            minute, operation_id, calls, errors, duration_ns_sum, histogram
        )
        SELECT h.minute, h.operation_id, sum(h.calls), sum(h.errors), sum(h.duration_ns_sum),
            jsonb_object_agg(h.bucket, h.calls)
        FROM (
            SELECT
                date_trunc('minute', st.start_time, 'UTC') AS minute,
                st.operation_id,
                monitoring._duration_bucket(st.duration_ns) AS bucket,
                count(*) AS calls,
                count(*) FILTER (WHERE st.status_code = 2) AS errors,
                sum(st.duration_ns) AS duration_ns_sum
            FROM stored AS st
            GROUP BY 1, 2, 3
        ) AS h
        GROUP BY h.minute, h.operation_id
    ),

    edges AS (
        INSERT INTO monitoring.trace_edge_minutes (
            minute, parent_operation_id, child_operation_id, calls, errors
        )
        SELECT
            date_trunc('minute', c.start_time, 'UTC'),
            p.operation_id,
            c.operation_id,
            count(*),
            count(*) FILTER (WHERE c.status_code = 2)
        FROM stored AS c
        INNER JOIN batch AS p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
        GROUP BY 1, 2, 3
    ),

    orphans AS (
        INSERT INTO monitoring.trace_orphans (
            trace_id, parent_span_id, child_span_id, child_operation_id, child_start, child_error
        )
        SELECT
            c.trace_id, c.parent_span_id, c.span_id, c.operation_id, c.start_time,
            c.status_code = 2
        FROM stored AS c
        WHERE c.parent_span_id IS NOT NULL
            AND NOT EXISTS (
                SELECT FROM batch AS p
                WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
            )
    )

    SELECT count(*) INTO v_stored FROM stored;

    RETURN jsonb_build_object(
        'stored', v_stored,
        'duplicates', v_valid - v_stored,
        'rejected', v_rejected,
        'error_message', v_reasons
    );
END
$$;

COMMENT ON FUNCTION monitoring.record_spans(jsonb) IS
'Stores the spans of an OTLP ExportTraceServiceRequest (JSON mapping); returns {"stored", '
'"duplicates" (sent before), "rejected", "error_message" (why, for OTLP''s partial_success)}';

GRANT EXECUTE ON FUNCTION monitoring.record_spans(jsonb) TO monitoring_writer, monitoring_admin;
