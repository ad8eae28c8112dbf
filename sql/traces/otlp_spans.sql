-- The spans of an OTLP ExportTraceServiceRequest (JSON mapping), one row each, with what
-- identifies it checked: reason says why a span is refused (NULL: it is taken). A
-- set-returning SQL function, inlined into record_spans' queries.

CREATE OR REPLACE FUNCTION monitoring._otlp_kind(p_value text, p_names text[])
RETURNS smallint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- integers as OTLP/JSON says; enum names as the generic protobuf JSON mapping writes them;
    -- absent (or JSON null: ->> gives NULL) is 0; -1 for anything else (the caller refuses it)
    SELECT CASE
        WHEN p_value IS NULL THEN 0
        WHEN pg_catalog.length(p_value) = 1 AND p_value COLLATE "C" BETWEEN '0' AND '9'
            AND p_value::smallint < pg_catalog.cardinality(p_names)
            THEN p_value::smallint
        ELSE coalesce(pg_catalog.array_position(p_names, p_value) - 1, -1)
    END::smallint;
$$;

CREATE OR REPLACE FUNCTION monitoring._otlp_spans(
    p_request jsonb, p_oldest timestamptz, p_newest timestamptz
)
RETURNS SETOF monitoring._otlp_span
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT
        f.r, f.s, f.i, f.attributes,
        f.span #>> '{status,message}' AS status_message,
        f.span -> 'events' AS events,
        f.span -> 'links' AS links,
        f.service, f.trace_id, f.span_id, f.parent_span_id, f.start_time,
        CASE WHEN f.end_time IS NOT NULL
            THEN monitoring._otlp_duration(
                f.span ->> 'startTimeUnixNano', f.span ->> 'endTimeUnixNano'
            )
        END AS duration_ns,
        f.kind,
        monitoring._index_text(f.span ->> 'name', 400) AS name,
        f.status_code,
        -- SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE (0x100) and _IS_REMOTE (0x200) both set
        f.parent_span_id IS NOT NULL
        AND pg_catalog.jsonb_typeof(f.span -> 'flags') = 'number'
        AND pg_catalog.length(f.span ->> 'flags') BETWEEN 1 AND 10
        AND (f.span ->> 'flags') COLLATE "C" ~ '^[0-9]+$'
        AND ((f.span ->> 'flags')::bigint & 768) = 768 AS remote_parent,
        CASE
            WHEN pg_catalog.jsonb_typeof(f.span) <> 'object' THEN 'a span must be a JSON object'
            -- hex by a length test and an unbounded class in the C collation: a tenth of
            -- what translate() costs on 32 characters, and of a bounded '{32}'
            WHEN f.trace_id IS NULL OR pg_catalog.length(f.trace_id) <> 32
                OR f.trace_id !~ '^[0-9a-f]+$'
                OR f.trace_id = '00000000000000000000000000000000'
                THEN 'traceId must be 32 hex digits, not all zero (OTLP/JSON writes ids in hex, '
                'not base64)'
            WHEN f.span_id IS NULL OR pg_catalog.length(f.span_id) <> 16
                OR f.span_id !~ '^[0-9a-f]+$'
                OR f.span_id = '0000000000000000'
                THEN 'spanId must be 16 hex digits, not all zero'
            WHEN pg_catalog.length(f.parent_span_id) <> 16
                OR f.parent_span_id !~ '^[0-9a-f]+$'
                THEN 'parentSpanId must be empty or 16 hex digits'
            WHEN f.start_time IS NULL
                THEN 'startTimeUnixNano must be Unix nanoseconds (a decimal string)'
            WHEN f.end_time IS NULL
                THEN 'endTimeUnixNano must be Unix nanoseconds (a decimal string)'
            WHEN f.end_time < f.start_time THEN 'endTimeUnixNano is before startTimeUnixNano'
            WHEN f.start_time < p_oldest
                THEN 'the span started before the retention window (traces.retention_days)'
            WHEN f.start_time > p_newest THEN 'the span starts more than a day in the future'
            WHEN pg_catalog.jsonb_typeof(f.span -> 'name') IS DISTINCT FROM 'string'
                THEN 'name must be a string'
            WHEN f.kind < 0 THEN 'kind must be a SpanKind: an integer from 0 to 5'
            WHEN f.status_code < 0 THEN 'status.code must be a StatusCode: 0, 1 or 2'
        END AS reason
    FROM (
        SELECT
            src.r,
            src.s,
            sp.ord::integer AS i,
            sp.value AS span,
            sa.attributes,
            src.service,
            -- ids in the C collation: ASCII lowercase and comparisons byte by byte, where a
            -- database's own collation would look up each character
            pg_catalog.lower((sp.value ->> 'traceId') COLLATE "C") AS trace_id,
            pg_catalog.lower((sp.value ->> 'spanId') COLLATE "C") AS span_id,
            nullif(pg_catalog.lower((sp.value ->> 'parentSpanId') COLLATE "C"), '') AS parent_span_id,
            monitoring._otlp_time(sp.value ->> 'startTimeUnixNano') AS start_time,
            monitoring._otlp_time(sp.value ->> 'endTimeUnixNano') AS end_time,
            monitoring._otlp_kind(sp.value ->> 'kind', ARRAY[
                'SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER',
                'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'
            ]) AS kind,
            monitoring._otlp_kind(sp.value #>> '{status,code}', ARRAY[
                'STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'
            ]) AS status_code
        FROM monitoring._otlp_sources(p_request, 'resourceSpans', 'scopeSpans', 'spans') AS src
        CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(src.items) WITH ORDINALITY AS sp (value, ord)
        -- a span's attributes in the same pass: a subquery run per span costs less than
        -- grouping the attributes of all spans and joining them back
        CROSS JOIN LATERAL (
            SELECT pg_catalog.jsonb_object_agg(
                a.value ->> 'key', monitoring._otlp_value(a.value -> 'value')
            ) AS attributes
            FROM pg_catalog.jsonb_array_elements(
                CASE WHEN pg_catalog.jsonb_typeof(sp.value -> 'attributes') = 'array'
                    THEN sp.value -> 'attributes' ELSE '[]' END
            ) AS a
            WHERE pg_catalog.jsonb_typeof(a.value -> 'key') = 'string'
        ) AS sa
        -- each value once: pulled up, every mention of start_time above would parse the
        -- nanoseconds again
        OFFSET 0
    ) AS f;
$$;

-- A span's events and links as we keep them: the first p_max of each, times as UTC ISO
-- text, attributes flat, cleaned as the span's are. NULL when there are none.
CREATE OR REPLACE FUNCTION monitoring._otlp_span_extras(
    p_items jsonb, p_what text, p_max integer, p_max_bytes integer, p_max_length integer,
    p_key_pattern text, p_key_likes text[], p_safe_keys text[]
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    IF jsonb_typeof(p_items) IS DISTINCT FROM 'array' OR p_items = '[]' OR p_max = 0 THEN
        RETURN NULL;
    END IF;
    RETURN (
        SELECT jsonb_agg(
            CASE p_what
                WHEN 'events' THEN jsonb_build_object(
                    'time', monitoring._json_time(monitoring._otlp_time(e.value ->> 'timeUnixNano')),
                    'name', monitoring.truncate_text(e.value ->> 'name', 400)
                )
                ELSE jsonb_build_object(
                    'trace_id', monitoring.truncate_text(lower(e.value ->> 'traceId'), 64),
                    'span_id', monitoring.truncate_text(lower(e.value ->> 'spanId'), 32)
                )
            END
            || jsonb_build_object('attributes', monitoring._otlp_clean(
                monitoring.otlp_attributes(e.value -> 'attributes'), p_max_bytes, p_max_length,
                p_key_pattern, p_key_likes, p_safe_keys
            ))
            ORDER BY e.ord
        )
        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e (value, ord)
        WHERE e.ord <= p_max
    ) || CASE WHEN jsonb_array_length(p_items) > p_max
        THEN jsonb_build_array(jsonb_build_object(
            '_truncated', format('kept %s of %s %s (traces.max_events)', p_max, jsonb_array_length(p_items), p_what)
        ))
        ELSE '[]'::jsonb
    END;
END
$$;
