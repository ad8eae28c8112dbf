-- Log ingest: monitoring.record_logs(request) takes an OTLP ExportLogsServiceRequest in its
-- JSON mapping. As record_spans: set-based, bad records refused one by one with a reason,
-- bodies and attributes bounded and scrubbed by the errors' rules.

CREATE OR REPLACE FUNCTION monitoring._otlp_log_records(
    p_request jsonb, p_oldest timestamptz, p_newest timestamptz
)
RETURNS TABLE (
    r integer, s integer, i integer, item jsonb, record_time timestamptz, severity_number smallint,
    trace_id text, span_id text, reason text
)
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT
        f.r, f.s, f.i, f.item, f.record_time, f.severity_number, f.trace_id, f.span_id,
        CASE
            WHEN pg_catalog.jsonb_typeof(f.item) <> 'object' THEN 'a log record must be a JSON object'
            WHEN f.record_time IS NULL
                THEN 'timeUnixNano and observedTimeUnixNano must be Unix nanoseconds (decimal strings)'
            WHEN f.record_time < p_oldest
                THEN 'the record is older than the retention window (logs.retention_days)'
            WHEN f.record_time > p_newest THEN 'the record is more than a day in the future'
            WHEN f.trace_id !~ '^[0-9a-f]{32}$' THEN 'traceId must be empty or 32 hex digits'
            WHEN f.span_id !~ '^[0-9a-f]{16}$' THEN 'spanId must be empty or 16 hex digits'
            WHEN f.severity_number NOT BETWEEN 0 AND 24
                THEN 'severityNumber must be a SeverityNumber: an integer from 0 to 24'
        END AS reason
    FROM (
        SELECT
            src.r,
            src.s,
            lr.ord::integer AS i,
            lr.value AS item,
            -- OTLP: a time unknown (0 or absent) is the observed time's, and a receiver
            -- observes a record that comes without either when it receives it
            CASE
                WHEN coalesce(lr.value ->> 'timeUnixNano', '0') <> '0'
                    THEN monitoring._otlp_time(lr.value ->> 'timeUnixNano')
                WHEN coalesce(lr.value ->> 'observedTimeUnixNano', '0') <> '0'
                    THEN monitoring._otlp_time(lr.value ->> 'observedTimeUnixNano')
                ELSE now()
            END AS record_time,
            CASE
                WHEN NOT lr.value ? 'severityNumber' THEN 0
                WHEN (lr.value ->> 'severityNumber') ~ '^[0-9]{1,2}$'
                    THEN (lr.value ->> 'severityNumber')::smallint
                ELSE coalesce(pg_catalog.array_position(ARRAY[
                    'SEVERITY_NUMBER_TRACE', 'SEVERITY_NUMBER_TRACE2', 'SEVERITY_NUMBER_TRACE3',
                    'SEVERITY_NUMBER_TRACE4', 'SEVERITY_NUMBER_DEBUG', 'SEVERITY_NUMBER_DEBUG2',
                    'SEVERITY_NUMBER_DEBUG3', 'SEVERITY_NUMBER_DEBUG4', 'SEVERITY_NUMBER_INFO',
                    'SEVERITY_NUMBER_INFO2', 'SEVERITY_NUMBER_INFO3', 'SEVERITY_NUMBER_INFO4',
                    'SEVERITY_NUMBER_WARN', 'SEVERITY_NUMBER_WARN2', 'SEVERITY_NUMBER_WARN3',
                    'SEVERITY_NUMBER_WARN4', 'SEVERITY_NUMBER_ERROR', 'SEVERITY_NUMBER_ERROR2',
                    'SEVERITY_NUMBER_ERROR3', 'SEVERITY_NUMBER_ERROR4', 'SEVERITY_NUMBER_FATAL',
                    'SEVERITY_NUMBER_FATAL2', 'SEVERITY_NUMBER_FATAL3', 'SEVERITY_NUMBER_FATAL4'
                ], lr.value ->> 'severityNumber'), -1)::smallint
            END AS severity_number,
            nullif(pg_catalog.lower(lr.value ->> 'traceId'), '') AS trace_id,
            nullif(pg_catalog.lower(lr.value ->> 'spanId'), '') AS span_id
        FROM monitoring._otlp_sources(p_request, 'resourceLogs', 'scopeLogs', 'logRecords') AS src
        CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(src.items) WITH ORDINALITY AS lr (value, ord)
        -- each value once (see _otlp_spans)
        OFFSET 0
    ) AS f;
$$;

CREATE OR REPLACE FUNCTION monitoring.record_logs(p_request jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- as record_spans: no nested loops over the request's sets, no JIT for its guessed sizes,
-- no plans made per call around the request as a constant
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
    v_oldest timestamptz;
    v_newest timestamptz := now() + interval '1 day';
    v_max_bytes integer;
    v_max_length integer;
    v_total integer;
    v_rejected integer;
    v_reasons text;
    v_refused text[];
    v_stored integer;
BEGIN
    SELECT r.cfg, r.total, r.sources, r.key_pattern, r.key_likes, r.safe_keys
    INTO v_cfg, v_total, v_sources, v_key_pattern, v_key_likes, v_safe_keys
    FROM monitoring._otlp_request(p_request, 'logs') AS r;
    IF v_total = 0 THEN
        RETURN jsonb_build_object('stored', 0, 'duplicates', 0, 'rejected', 0, 'error_message', NULL);
    END IF;
    v_oldest := now() - make_interval(days => (v_cfg ->> 'logs.retention_days')::integer);
    v_max_bytes := (v_cfg ->> 'otlp.max_attributes_bytes')::integer;
    v_max_length := (v_cfg ->> 'otlp.max_attribute_length')::integer;

    WITH flat AS MATERIALIZED (
        SELECT * FROM monitoring._otlp_log_records(p_request, v_oldest, v_newest)
    ),

    stored AS (
        INSERT INTO monitoring.log_records (
            time, resource_id, severity_number, severity_text, body, attributes, trace_id,
            span_id, event_name, record_uid
        )
        SELECT
            f.record_time,
            (v_sources -> (f.r || '.' || f.s) ->> 0)::integer,
            f.severity_number,
            monitoring.truncate_text(f.item ->> 'severityText', 32),
            monitoring.truncate_text(
                CASE WHEN v_key_pattern IS NULL THEN b.body
                    ELSE monitoring._scrub_string(b.body, v_key_pattern, v_safe_keys)
                END,
                v_max_length
            ),
            -- the record's id is kept in record_uid, not twice
            coalesce(monitoring._otlp_clean(
                a.attributes - 'log.record.uid', v_max_bytes, v_max_length,
                v_key_pattern, v_key_likes, v_safe_keys
            ), '{}'),
            f.trace_id,
            f.span_id,
            monitoring.truncate_text(f.item ->> 'eventName', 200),
            monitoring._index_text(nullif(a.attributes ->> 'log.record.uid', ''), 128)
        FROM flat AS f
        -- a body is an AnyValue: a string as it is, anything else as its JSON
        CROSS JOIN LATERAL (
            SELECT CASE
                WHEN f.item -> 'body' ? 'stringValue' THEN f.item #>> '{body,stringValue}'
                WHEN f.item -> 'body' IS NULL OR f.item -> 'body' = '{}' THEN NULL
                ELSE monitoring._otlp_value(f.item -> 'body')::text
            END AS body
        ) AS b
        CROSS JOIN LATERAL (
            SELECT monitoring.otlp_attributes(f.item -> 'attributes') AS attributes
        ) AS a
        WHERE f.reason IS NULL
        -- a record sent again, with the same log.record.uid and time, is stored once
        ON CONFLICT (record_uid, time) WHERE record_uid IS NOT NULL DO NOTHING
        RETURNING 1
    )

    SELECT
        (SELECT count(*) FROM stored),
        count(*) FILTER (WHERE f.reason IS NOT NULL),
        monitoring._otlp_refusals(
            'logs', v_total,
            jsonb_agg(jsonb_build_array(f.reason, f.r, f.s, f.i)) FILTER (WHERE f.reason IS NOT NULL)
        ),
        array_agg(f.reason) FILTER (WHERE f.reason IS NOT NULL)
    INTO v_stored, v_rejected, v_reasons, v_refused
    FROM flat AS f;
    IF v_rejected > 0 THEN
        PERFORM monitoring._count_otlp_refusals('logs', v_refused);
    END IF;

    RETURN jsonb_build_object(
        'stored', v_stored,
        'duplicates', v_total - v_rejected - v_stored,
        'rejected', v_rejected,
        'error_message', v_reasons
    );
END
$$;

COMMENT ON FUNCTION monitoring.record_logs(jsonb) IS
'Stores the records of an OTLP ExportLogsServiceRequest (JSON mapping); returns {"stored", '
'"duplicates" (sent before, by log.record.uid), "rejected", "error_message" (why, for '
'OTLP''s partial_success)}';

GRANT EXECUTE ON FUNCTION monitoring.record_logs(jsonb) TO monitoring_writer, monitoring_admin;
