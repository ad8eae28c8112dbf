-- Reading logs: the view, and a search by trace, severity, time and words in the body.

-- OTLP's severity numbers by name: 1 trace ... 21 fatal (each name covers four numbers).
CREATE OR REPLACE FUNCTION monitoring._severity_name(p_number smallint)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_number BETWEEN 1 AND 24
        THEN (ARRAY['trace', 'debug', 'info', 'warn', 'error', 'fatal'])[(p_number - 1) / 4 + 1]
        ELSE 'unspecified'
    END;
$$;

CREATE OR REPLACE FUNCTION monitoring._severity_number(p_name text)
RETURNS smallint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT (4 * (pg_catalog.array_position(
        ARRAY['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
        CASE pg_catalog.lower(p_name) WHEN 'warning' THEN 'warn' WHEN 'critical' THEN 'fatal'
            ELSE pg_catalog.lower(p_name) END
    ) - 1) + 1)::smallint;
$$;

CREATE OR REPLACE VIEW monitoring.logs AS
SELECT
    l.time,
    monitoring._severity_name(l.severity_number) AS severity,
    l.severity_number,
    l.severity_text,
    l.body,
    l.attributes,
    r.service,
    l.trace_id,
    l.span_id,
    l.event_name,
    r.attributes AS resource,
    r.scope_name,
    l.observed_time,
    l.record_uid
FROM monitoring.log_records AS l
INNER JOIN monitoring.otel_resources AS r ON l.resource_id = r.id;

COMMENT ON VIEW monitoring.logs IS
'Log records: time, severity, body, attributes, service, trace and span ids';

-- The newest records first, filtered by any of: trace, least severity (a name: debug, info,
-- warn, error, fatal), time range, service, and words that must all be in the body.
CREATE OR REPLACE FUNCTION monitoring.search_logs(
    p_words text DEFAULT NULL,
    p_trace_id text DEFAULT NULL,
    p_min_severity text DEFAULT NULL,
    p_since timestamptz DEFAULT NULL,
    p_until timestamptz DEFAULT NULL,
    p_service text DEFAULT NULL,
    p_limit integer DEFAULT 100
)
RETURNS SETOF monitoring.logs
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_min smallint := monitoring._severity_number(p_min_severity);
BEGIN
    IF p_min_severity IS NOT NULL AND v_min IS NULL THEN
        RAISE EXCEPTION 'p_min_severity must be one of trace, debug, info, warn, error, fatal, not %',
            quote_literal(monitoring.truncate_text(p_min_severity, 100))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT l.*
    FROM monitoring.logs AS l
    WHERE (p_trace_id IS NULL OR l.trace_id = lower(p_trace_id))
        AND (v_min IS NULL OR l.severity_number >= v_min)
        AND (p_since IS NULL OR l.time >= p_since)
        AND (p_until IS NULL OR l.time < p_until)
        AND (p_service IS NULL OR l.service = p_service)
        AND (p_words IS NULL OR to_tsvector('simple'::regconfig, coalesce(l.body, ''))
            @@ plainto_tsquery('simple'::regconfig, p_words))
    ORDER BY l.time DESC
    LIMIT greatest(p_limit, 0);
END
$$;

COMMENT ON FUNCTION monitoring.search_logs(
    text, text, text, timestamptz, timestamptz, text, integer
) IS
'Log records, newest first, by words in the body (all of them), trace id, least severity, '
'time range and service';

GRANT SELECT ON monitoring.logs TO monitoring_reader, monitoring_admin;
GRANT EXECUTE ON FUNCTION
monitoring._severity_name(smallint),
monitoring._severity_number(text),
monitoring.search_logs(text, text, text, timestamptz, timestamptz, text, integer)
TO monitoring_reader, monitoring_admin;
