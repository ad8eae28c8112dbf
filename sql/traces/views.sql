-- What readers query: spans with their operation and resource, one row per trace.

CREATE OR REPLACE FUNCTION monitoring._span_kind(p_kind smallint)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT (ARRAY['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'])[p_kind + 1];
$$;

CREATE OR REPLACE FUNCTION monitoring._span_status(p_status smallint)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT (ARRAY['unset', 'ok', 'error'])[p_status + 1];
$$;

CREATE OR REPLACE VIEW monitoring.spans AS
SELECT
    s.trace_id,
    s.span_id,
    s.parent_span_id,
    s.start_time,
    s.start_time + s.duration_ns / 1000 * interval '1 microsecond' AS end_time,
    s.duration_ns / 1000000.0 AS duration_ms,
    o.service,
    o.name AS operation,
    monitoring._span_kind(o.kind) AS kind,
    monitoring._span_status(s.status_code) AS status_code,
    s.status_message,
    s.attributes,
    s.events,
    s.links,
    r.attributes AS resource,
    r.scope_name,
    s.operation_id,
    s.resource_id
FROM monitoring.trace_spans AS s
INNER JOIN monitoring.trace_operations AS o ON s.operation_id = o.id
INNER JOIN monitoring.otel_resources AS r ON s.resource_id = r.id;

COMMENT ON VIEW monitoring.spans IS
'One row per span: trace, ids, times, service, operation, kind, status, attributes (@> uses '
'an index), events, links and the resource';

-- One row per trace: the first of its trace_parts rows stands for it, and the others are
-- added up beside it. A view PostgreSQL flattens into the query, so a join on trace_id (the
-- design document's errors-to-traces query) looks each trace up by index, and the sums are
-- exact whether or not the fold has merged the rows yet.
CREATE OR REPLACE VIEW monitoring.traces AS
SELECT
    p.trace_id,
    a.start_time,
    round((extract(EPOCH FROM a.end_time - a.start_time) * 1000)::numeric, 3) AS duration_ms,
    monitoring._span_status(a.root_status) AS status_code,
    o.service AS root_service,
    o.name AS root_operation,
    a.span_count,
    a.error_count > 0 AS error,
    a.error_count,
    a.end_time,
    a.root_span_id,
    a.last_start,
    a.root_remote
FROM monitoring.trace_parts AS p
CROSS JOIN
    LATERAL (
        SELECT
            min(q.first_start) AS start_time,
            max(q.last_start) AS last_start,
            max(q.last_end) AS end_time,
            sum(q.span_count)::bigint AS span_count,
            sum(q.error_count)::bigint AS error_count,
            -- the root, else the first entry span (its parent in a process that does not
            -- export here: a browser, a gateway)
            (
                array_agg(q.root_span_id ORDER BY q.root_remote, q.id)
                FILTER (WHERE q.root_span_id IS NOT NULL)
            )[1] AS root_span_id,
            (
                array_agg(q.root_operation_id ORDER BY q.root_remote, q.id)
                FILTER (WHERE q.root_span_id IS NOT NULL)
            )[1] AS root_operation_id,
            (
                array_agg(q.root_status ORDER BY q.root_remote, q.id)
                FILTER (WHERE q.root_span_id IS NOT NULL)
            )[1] AS root_status,
            (
                array_agg(q.root_remote ORDER BY q.root_remote, q.id)
                FILTER (WHERE q.root_span_id IS NOT NULL)
            )[1] AS root_remote
        FROM monitoring.trace_parts AS q
        WHERE q.trace_id = p.trace_id
    ) AS a
LEFT JOIN monitoring.trace_operations AS o ON a.root_operation_id = o.id
WHERE NOT EXISTS (
    SELECT FROM monitoring.trace_parts AS e
    WHERE e.trace_id = p.trace_id AND e.id < p.id
);

COMMENT ON VIEW monitoring.traces IS
'One row per trace: start, duration, the root span''s status, service and operation (its '
'entry span''s, root_remote, while the root is in a process that does not export here; NULL '
'until one arrives), span and error counts; exact as spans arrive';

GRANT SELECT ON monitoring.spans, monitoring.traces TO monitoring_reader, monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring._span_kind(smallint), monitoring._span_status(smallint)
TO monitoring_reader, monitoring_admin;
