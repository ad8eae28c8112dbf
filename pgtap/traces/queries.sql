-- Reading traces: one row per trace, exact while its spans arrive in several batches from
-- several services and after the fold; the design document's errors-to-traces query by
-- index; a trace by id in tree order with its errors; RED per operation; the service map.
BEGIN;
SELECT plan(27);

-- trace t1: the gateway's root span comes last, after the payment service's spans
SELECT monitoring.record_spans(pgtap_helpers.spans_request('payments', jsonb_build_array(
    pgtap_helpers.span(
        '11111111111111111111111111111111',
        'b000000000000001',
        'a000000000000002',
        'charge',
        20,
        100
    ),
    pgtap_helpers.span(
        '11111111111111111111111111111111',
        'b000000000000002',
        'b000000000000001',
        'SELECT',
        30,
        10,
        3,
        2
    )
)));

SELECT is(
    (
        SELECT (span_count, root_service, error) FROM monitoring.traces
        WHERE trace_id = '11111111111111111111111111111111'
    ),
    (2::bigint, NULL::text, TRUE),
    'a trace is there with its first batch; no root yet'
);

SELECT monitoring.record_spans(pgtap_helpers.spans_request('gateway', jsonb_build_array(
    pgtap_helpers.span(
        '11111111111111111111111111111111', 'a000000000000001', NULL, 'POST /pay', 0, 200, 2, 2
    ),
    pgtap_helpers.span(
        '11111111111111111111111111111111',
        'a000000000000002',
        'a000000000000001',
        'call payments',
        15,
        110,
        3,
        0
    )
)));

CREATE TEMPORARY TABLE before_fold AS
SELECT * FROM monitoring.traces
WHERE trace_id = '11111111111111111111111111111111';

SELECT is(
    (
        SELECT (span_count, error_count, root_service, root_operation, status_code, duration_ms)
        FROM before_fold
    ),
    (4::bigint, 2::bigint, 'gateway'::text, 'POST /pay'::text, 'error'::text, 200.000::numeric),
    'batches from two services add up: spans, errors, the root, start to last end'
);
SELECT is(
    (SELECT start_time FROM before_fold), pgtap_helpers.base(), 'it starts with its first span'
);
SELECT is((SELECT count(*)::integer FROM before_fold), 1, 'one row per trace');

SELECT ok(
    (monitoring.run_maintenance() ->> 'traces_folded')::integer >= 1, 'the fold merges its rows'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.trace_parts
        WHERE trace_id = '11111111111111111111111111111111'
    ),
    1, 'into one'
);
SELECT is(
    (
        SELECT t FROM monitoring.traces AS t
        WHERE trace_id = '11111111111111111111111111111111'
    )::text,
    (SELECT b FROM before_fold AS b)::text,
    'and the trace reads the same after the fold'
);

-- an error captured in the payment service's span
SELECT monitoring.capture_error(
    'CardDeclined', 'card declined', p_service => 'payments',
    p_fingerprint => ARRAY['pgtap-trace-join'], p_context => '{"user_id": "u-9"}',
    p_trace_id => '11111111111111111111111111111111', p_span_id => 'b000000000000001'
);
SELECT monitoring.capture_error(
    'Timeout', 'no span', p_service => 'gateway',
    p_trace_id => '11111111111111111111111111111111', p_span_id => 'ffffffffffffffff'
);

SELECT is(
    (
        SELECT (e.message, e.context ->> 'user_id', t.trace_id, t.duration_ms, t.status_code)
        FROM monitoring.errors AS e
        LEFT JOIN monitoring.traces AS t ON e.trace_id = t.trace_id
        WHERE e.fingerprint = 'pgtap-trace-join'
        ORDER BY e.occurred_at DESC
    ),
    (
        'card declined'::text,
        'u-9'::text,
        '11111111111111111111111111111111'::text,
        200.000::numeric,
        'error'::text
    ),
    'the design document''s query joins the error to its trace'
);

-- 20,000 other traces, and statistics that say so: the planner's own choice
INSERT INTO monitoring.trace_parts (
    trace_id, first_start, last_start, last_end, span_count, error_count
)
SELECT
    lpad(to_hex(i), 32, '7') AS trace_id,
    now() AS first_start,
    now() AS last_start,
    now() AS last_end,
    1 AS span_count,
    0 AS error_count
FROM generate_series(1, 20000) AS i;
ANALYZE monitoring.trace_parts;
SELECT ok(
    (SELECT string_agg(p, E'\n') FROM pgtap_helpers.explain($q$
        SELECT e.message, e.context->>'user_id', t.trace_id, t.duration_ms, t.status_code
        FROM monitoring.errors e LEFT JOIN monitoring.traces t ON e.trace_id = t.trace_id
        WHERE e.fingerprint = 'pgtap-trace-join' ORDER BY e.occurred_at DESC
    $q$) AS p) ~ 'Index (Only )?Scan using trace_parts_trace',
    'and looks the trace up by index'
);

CREATE TEMPORARY TABLE tree AS
SELECT
    row_number() OVER () AS n,
    t.*
FROM monitoring.trace_tree('11111111111111111111111111111111') AS t;

SELECT is(
    (SELECT array_agg(depth || ':' || operation ORDER BY n) FROM tree),
    ARRAY['0:POST /pay', '1:call payments', '2:charge', '3:SELECT'],
    'trace_tree: parents before children, with their depth, across services'
);
SELECT is(
    (SELECT array_agg(offset_ms ORDER BY n) FROM tree),
    ARRAY[0.000, 15.000, 20.000, 30.000]::numeric[],
    'each span''s offset from the trace''s start'
);
SELECT is(
    (
        SELECT errors -> 0 ->> 'message' FROM tree
        WHERE operation = 'charge'
    ), 'card declined',
    'an error shows in the span it was captured in'
);
SELECT is(
    (
        SELECT errors -> 0 ->> 'message' FROM tree
        WHERE n = 1
    ), 'no span',
    'an error whose span is not in the trace shows on the first row'
);
SELECT is(
    (SELECT count(*)::integer FROM monitoring.trace_tree('5b8efff798038103d269b633813fc60c')), 0,
    'an unknown trace has no rows'
);
SELECT is(
    (
        SELECT count(*)::integer
        FROM monitoring.trace_tree(upper('11111111111111111111111111111111'))
    ),
    4,
    'ids in any case'
);

-- RED: 100 calls of one operation, 1..100 ms, every tenth an error
SELECT monitoring.record_spans(pgtap_helpers.spans_request('red', (
    SELECT
        jsonb_agg(pgtap_helpers.span(
            lpad(to_hex(i), 32, '0'), lpad(to_hex(i), 16, '0'), NULL, 'GET /items', 0, i, 2,
            CASE WHEN i % 10 = 0 THEN 2 ELSE 0 END
        ))
    FROM generate_series(1, 100) AS i
)));

SELECT is(
    (
        SELECT (requests, errors, error_rate)
        FROM monitoring.operation_stats(interval '2 hours', 'red')
    ),
    (100::bigint, 10::bigint, 0.1000::numeric),
    'operation_stats counts requests and errors'
);
SELECT ok(
    (
        SELECT
            p50_ms BETWEEN 45 AND 55
            AND p95_ms BETWEEN 85.5 AND 104.5
            AND p99_ms BETWEEN 89 AND 109
        FROM monitoring.operation_stats(interval '2 hours', 'red')
    ),
    'and its percentiles are within 10%'
);

-- the same as a dashboard's time series: a row per step and service, from the summaries
SELECT is(
    (
        SELECT (count(*), min(s.time), sum(s.requests), sum(s.errors))
        FROM monitoring.service_series(
            now() - interval '3 hours', now(), interval '1 minute', ARRAY['red']
        ) AS s
    ),
    (1::bigint, date_trunc('minute', pgtap_helpers.base()), 100::numeric, 10::numeric),
    'service_series: requests and errors of the minute the spans started in'
);
SELECT ok(
    (
        SELECT s.p95_ms BETWEEN 85.5 AND 104.5
        FROM monitoring.service_series(
            now() - interval '3 hours', now(), interval '1 minute', ARRAY['red']
        ) AS s
    ),
    'and its p95 within 10%'
);
SELECT is(
    (
        SELECT count(*)::integer
        FROM monitoring.service_series(
            now() - interval '3 hours', now(), interval '1 minute', ARRAY['nobody']
        )
    ),
    0,
    'services not asked for are left out'
);

-- the service map: the edge gateway -> payments crossed batches; the fold found its parent
SELECT is(
    (
        SELECT array_agg(caller_service || '->' || callee_service || ':' || calls ORDER BY 1)
        FROM monitoring.service_map(interval '2 hours')
    ),
    ARRAY['gateway->payments:1'],
    'service_map: calls between services, whichever batch came first'
);
SELECT is(
    (
        SELECT calls FROM monitoring.service_map(interval '2 hours', TRUE)
        WHERE caller_operation = 'charge' AND callee_operation = 'SELECT'
    ),
    1::bigint, 'and by operation, within a service too'
);

-- a service whose caller exports nowhere: its entry span (a remote parent, OTLP's flags
-- 0x300) stands for the root, until the root arrives
SELECT monitoring.record_spans(pgtap_helpers.spans_request('api', jsonb_build_array(
    pgtap_helpers.span(
        '22222222222222222222222222222222', 'c000000000000002', 'c000000000000001',
        'GET /orders', 10, 50, 2, 2
    ) || '{"flags": 769}',
    pgtap_helpers.span(
        '22222222222222222222222222222222', 'c000000000000003', 'c000000000000002',
        'SELECT orders', 20, 5, 3, 0
    )
)));
SELECT is(
    (
        SELECT (root_service, root_operation, status_code, root_remote)
        FROM monitoring.traces
        WHERE trace_id = '22222222222222222222222222222222'
    ),
    ('api'::text, 'GET /orders'::text, 'error'::text, TRUE),
    'an entry span whose parent is remote stands for the root'
);
SELECT monitoring.record_spans(pgtap_helpers.spans_request('browser', jsonb_build_array(
    pgtap_helpers.span(
        '22222222222222222222222222222222', 'c000000000000001', NULL, 'page load', 0, 100, 1, 1
    )
)));
SELECT is(
    (
        SELECT (root_service, root_operation, status_code, root_remote)
        FROM monitoring.traces
        WHERE trace_id = '22222222222222222222222222222222'
    ),
    ('browser'::text, 'page load'::text, 'ok'::text, FALSE),
    'and gives way to the root when it arrives'
);
SELECT ok(
    (monitoring.run_maintenance() ->> 'traces_folded')::integer >= 1, 'fold'
);
SELECT is(
    (
        SELECT (root_service, root_remote)
        FROM monitoring.traces
        WHERE trace_id = '22222222222222222222222222222222'
    ),
    ('browser'::text, FALSE),
    'the fold keeps the root'
);

SELECT is(
    (
        SELECT array_agg(trace_id ORDER BY start_time DESC)
        FROM monitoring.recent_traces(interval '2 hours', p_errors => TRUE)
    ),
    (
        SELECT array_agg(trace_id ORDER BY start_time DESC)
        FROM monitoring.traces
        WHERE start_time >= now() - interval '2 hours' AND error
    ),
    'recent_traces: the traces of a window, filtered, newest first'
);

SELECT * FROM finish();
ROLLBACK;
