-- prometheus_metrics' counters: events, new and regressed issues, spans, span errors and the
-- span latency histogram, ingest drops. Each moves by what happened, once, at the fold, and
-- never goes down when retention deletes what it counted.
BEGIN;
SELECT plan(21);

-- the samples of the page whose line starts with p_start, in page order, ';' between
CREATE FUNCTION pg_temp.sample(p_start text)
RETURNS text
LANGUAGE sql
AS $$
    SELECT string_agg(l.line, ';' ORDER BY l.n)
    FROM regexp_split_to_table(monitoring.prometheus_metrics(), E'\n')
        WITH ORDINALITY AS l (line, n)
    WHERE starts_with(l.line, p_start)
$$;

-- events: by the event's own level; an issue is new at the fold that adds its first events
SELECT monitoring.capture_message('card declined', 'error', NULL, 'production', 'shop');
SELECT monitoring.capture_message('card declined', 'warning', NULL, 'production', 'shop');
SELECT monitoring.capture_message('stock ran out', 'error', NULL, 'production', 'shop');
SELECT monitoring.capture_message('odd', 'info', NULL, 'staging', 'shop');

SELECT is(
    pg_temp.sample('pg_monitoring_events_total'),
    NULL,
    'events are counted at the fold, not before'
);

SELECT monitoring.fold_counts();

SELECT is(
    pg_temp.sample('pg_monitoring_events_total{'),
    'pg_monitoring_events_total{environment="production",level="error",service="shop"} 2;'
    || 'pg_monitoring_events_total{environment="production",level="warning",service="shop"} 1;'
    || 'pg_monitoring_events_total{environment="staging",level="info",service="shop"} 1',
    'events by service, environment and their own level'
);

SELECT is(
    pg_temp.sample('pg_monitoring_issues_new_total{'),
    'pg_monitoring_issues_new_total{environment="production",service="shop"} 2;'
    || 'pg_monitoring_issues_new_total{environment="staging",service="shop"} 1',
    'new issues by service and environment'
);

SELECT monitoring.capture_message('card declined', 'error', NULL, 'production', 'shop');
SELECT monitoring.fold_counts();

SELECT is(
    pg_temp.sample('pg_monitoring_issues_new_total{environment="production"'),
    'pg_monitoring_issues_new_total{environment="production",service="shop"} 2',
    'a known issue''s next event makes no new issue'
);

-- a regression: counted once, however many events follow it
SELECT monitoring.resolve_issue(g.id)
FROM monitoring.error_issues AS g
WHERE g.title = 'card declined' AND g.environment = 'production';
SELECT monitoring.capture_message('card declined', 'error', NULL, 'production', 'shop');
SELECT monitoring.capture_message('card declined', 'error', NULL, 'production', 'shop');

SELECT is(
    pg_temp.sample('pg_monitoring_issues_regressed_total{environment="production"'),
    'pg_monitoring_issues_regressed_total{environment="production",service="shop"} 0',
    'a regression is counted at the fold'
);

SELECT monitoring.fold_counts();

SELECT is(
    pg_temp.sample('pg_monitoring_issues_regressed_total{environment="production"')
    || ';' || pg_temp.sample('pg_monitoring_events_total{environment="production",level="error"'),
    'pg_monitoring_issues_regressed_total{environment="production",service="shop"} 1;'
    || 'pg_monitoring_events_total{environment="production",level="error",service="shop"} 5',
    'one regression, and its events'
);

-- retention deletes the events and their issues (as if their time had passed): the counters
-- stay
CREATE TEMPORARY TABLE before_retention AS
SELECT
    pg_temp.sample('pg_monitoring_events_total{') AS events,
    pg_temp.sample('pg_monitoring_issues_') AS issues;
DELETE FROM monitoring.error_events;
UPDATE monitoring.error_issues SET last_seen = now() - interval '1 year';

SELECT is(
    (monitoring.apply_error_retention() ->> 'issues_deleted')::integer,
    3,
    'retention deleted every issue'
);

SELECT monitoring.fold_counts();

SELECT is(
    (
        SELECT
            pg_temp.sample('pg_monitoring_events_total{') = b.events
            AND pg_temp.sample('pg_monitoring_issues_') = b.issues
        FROM before_retention AS b
    ),
    TRUE,
    'events, new and regressed issues do not go down when retention deletes issues'
);

-- storm protection: the events counted but not stored are counted apart too
SELECT monitoring.set_setting('errors.storm_full_events', '1');
SELECT monitoring.set_setting('errors.storm_check_one_in', '1');
SELECT monitoring.set_setting('errors.storm_keep_one_in', '1000000');
SELECT monitoring.capture_message('flood', 'error', NULL, 'production', 'stormy')
FROM generate_series(1, 6);
SELECT monitoring.fold_counts();

SELECT is(
    pg_temp.sample(
        'pg_monitoring_events_total{environment="production",level="error",'
        || 'service="stormy"}'
    ),
    'pg_monitoring_events_total{environment="production",level="error",service="stormy"} 6',
    'events sampled out are events'
);
SELECT is(
    pg_temp.sample(
        'pg_monitoring_events_sampled_out_total{environment="production",'
        || 'level="error",service="stormy"}'
    ),
    'pg_monitoring_events_sampled_out_total{environment="production",level="error",'
    || 'service="stormy"} ' || (
        SELECT i.events_sampled_out FROM monitoring.issues AS i
        WHERE i.service = 'stormy' AND i.events_sampled_out > 0
    ),
    'and counted apart, as the issue counts them'
);

-- spans: entry points (server, consumer) only; 3 ms, 40 ms, 700 ms and 20 s
SELECT monitoring.record_spans(pgtap_helpers.spans_request('shop', jsonb_build_array(
    pgtap_helpers.span(
        '0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', NULL, 'GET /pay', 0, 3
    ),
    pgtap_helpers.span(
        '0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203332', 'b7ad6b7169203331', 'SELECT',
        1, 40, 3
    ),
    pgtap_helpers.span(
        '0af7651916cd43dd8448eb211c80319d', 'b7ad6b7169203333', NULL, 'GET /pay', 0, 700, 2, 2
    ),
    pgtap_helpers.span(
        '0af7651916cd43dd8448eb211c80319e', 'b7ad6b7169203334', NULL, 'orders', 0, 20000, 5
    ),
    -- refused: an id that is not hex, a start before the retention window
    pgtap_helpers.span('0af7651916cd43dd8448eb211c80319f', 'nothex', NULL, 'GET /pay', 0, 1),
    pgtap_helpers.span(
        '0af7651916cd43dd8448eb211c80319f', 'b7ad6b7169203335', NULL, 'GET /pay',
        -3456000000.0, 1
    )
)));

SELECT is(
    pg_temp.sample('pg_monitoring_spans_total'),
    NULL,
    'spans are counted at the fold'
);

SELECT monitoring.fold_traces();

SELECT is(
    pg_temp.sample('pg_monitoring_spans_total{') || ';'
    || pg_temp.sample('pg_monitoring_span_errors_total{'),
    'pg_monitoring_spans_total{operation="GET /pay",service="shop"} 2;'
    || 'pg_monitoring_spans_total{operation="orders",service="shop"} 1;'
    || 'pg_monitoring_span_errors_total{operation="GET /pay",service="shop"} 1;'
    || 'pg_monitoring_span_errors_total{operation="orders",service="shop"} 0',
    'spans and errors of server and consumer operations; a client span is not exported'
);

SELECT is(
    pg_temp.sample(
        'pg_monitoring_span_duration_seconds_bucket{operation="GET /pay",service="shop",le="0.005"}'
    )
    || ';'
    || pg_temp.sample(
        'pg_monitoring_span_duration_seconds_bucket{operation="GET /pay",service="shop",le="0.5"}'
    )
    || ';'
    || pg_temp.sample(
        'pg_monitoring_span_duration_seconds_bucket{operation="GET /pay",service="shop",le="1"}'
    )
    || ';' || pg_temp.sample('pg_monitoring_span_duration_seconds_sum{operation="GET')
    || ';' || pg_temp.sample('pg_monitoring_span_duration_seconds_count{operation="GET'),
    'pg_monitoring_span_duration_seconds_bucket{operation="GET /pay",service="shop",le="0.005"} 1;'
    || 'pg_monitoring_span_duration_seconds_bucket{operation="GET /pay",service="shop",le="0.5"} 1;'
    || 'pg_monitoring_span_duration_seconds_bucket{operation="GET /pay",service="shop",le="1"} 2;'
    || 'pg_monitoring_span_duration_seconds_sum{operation="GET /pay",service="shop"} 0.703000000;'
    || 'pg_monitoring_span_duration_seconds_count{operation="GET /pay",service="shop"} 2',
    'the latency histogram: each span in its bucket, the sum in seconds, the count'
);

-- every series: le ascending as printed, counts never decreasing, +Inf last and equal to
-- the count
CREATE TEMPORARY TABLE buckets AS
SELECT
    l.n,
    substring(l.line FROM 'operation="([^"]*)"') AS operation,
    substring(l.line FROM 'le="([^"]*)"') AS le,
    split_part(l.line, ' ', -1)::numeric AS value,
    split_part(split_part(l.line, '{', 1), ' ', 1) AS name
FROM regexp_split_to_table(monitoring.prometheus_metrics(), E'\n') WITH ORDINALITY AS l (line, n)
WHERE l.line LIKE 'pg\_monitoring\_span\_duration\_seconds%';

SELECT is(
    (
        SELECT array_agg(DISTINCT b.operation || ':' || b.ok::text)
        FROM (
            SELECT
                b.operation,
                array_agg(b.le ORDER BY b.n) FILTER (WHERE b.le IS NOT NULL)
                = array_append(
                    array(
                        SELECT u::numeric::text FROM unnest(monitoring.span_duration_buckets()) AS u
                    ),
                    '+Inf'
                )
                AND bool_and(b.ok_order)
                AND max(b.value) FILTER (WHERE b.le = '+Inf')
                = max(b.value) FILTER (WHERE b.name LIKE '%\_count')
                    AS ok
            FROM (
                SELECT
                    b.*,
                    b.name NOT LIKE '%\_bucket' OR b.value >= coalesce(lag(b.value) OVER (
                        PARTITION BY b.operation, b.name ORDER BY b.n
                    ), 0) AS ok_order
                FROM buckets AS b
            ) AS b
            GROUP BY b.operation
        ) AS b
    ),
    ARRAY['GET /pay:true', 'orders:true'],
    'buckets: every boundary in ascending order, cumulative, +Inf equal to the count'
);

SELECT is(
    pg_temp.sample(
        'pg_monitoring_span_duration_seconds_bucket{operation="orders",service="shop",le="10"}'
    )
    || ';'
    || pg_temp.sample(
        'pg_monitoring_span_duration_seconds_bucket{operation="orders",service="shop",le="+Inf"}'
    ),
    'pg_monitoring_span_duration_seconds_bucket{operation="orders",service="shop",le="10"} 0;'
    || 'pg_monitoring_span_duration_seconds_bucket{operation="orders",service="shop",le="+Inf"} 1',
    'a span over the last boundary is counted in +Inf only'
);

-- folding again adds nothing; retention deleting the minutes takes nothing away
SELECT monitoring.fold_traces();
CREATE TEMPORARY TABLE spans_before AS
SELECT pg_temp.sample('pg_monitoring_span') AS page;
DELETE FROM monitoring.trace_operation_minutes;
SELECT monitoring.run_maintenance();

SELECT is(
    pg_temp.sample('pg_monitoring_span'),
    (SELECT b.page FROM spans_before AS b),
    'span counters are unchanged by another fold and by the minutes'' deletion'
);

-- the bound on series: the operations with the most calls
SELECT monitoring.set_setting('metrics.max_span_operations', '1');
SELECT is(
    pg_temp.sample('pg_monitoring_spans_total{'),
    'pg_monitoring_spans_total{operation="GET /pay",service="shop"} 2',
    'metrics.max_span_operations bounds the operations exported, the most called first'
);
SELECT monitoring.set_setting('metrics.max_span_operations', '100');

-- ingest drops: what record_spans and record_logs refused, by reason
SELECT monitoring.record_logs(pgtap_helpers.logs_request('shop', jsonb_build_array(
    jsonb_build_object('timeUnixNano', 'soon', 'body', jsonb_build_object('stringValue', 'x'))
)));

SELECT is(
    pg_temp.sample('pg_monitoring_ingest_dropped_total{'),
    'pg_monitoring_ingest_dropped_total{reason="in_future",signal="logs"} 0;'
    || 'pg_monitoring_ingest_dropped_total{reason="in_future",signal="metrics"} 0;'
    || 'pg_monitoring_ingest_dropped_total{reason="in_future",signal="spans"} 0;'
    || 'pg_monitoring_ingest_dropped_total{reason="invalid",signal="logs"} 1;'
    || 'pg_monitoring_ingest_dropped_total{reason="invalid",signal="metrics"} 0;'
    || 'pg_monitoring_ingest_dropped_total{reason="invalid",signal="spans"} 1;'
    || 'pg_monitoring_ingest_dropped_total{reason="too_old",signal="logs"} 0;'
    || 'pg_monitoring_ingest_dropped_total{reason="too_old",signal="metrics"} 0;'
    || 'pg_monitoring_ingest_dropped_total{reason="too_old",signal="spans"} 1',
    'refused spans and log records counted by signal and reason; the known reasons at 0'
);

SELECT monitoring._count_ingest_drop('metrics', 'too_old', 5);
SELECT monitoring._count_ingest_drop('metrics', 'too_old', 0);
SELECT is(
    pg_temp.sample('pg_monitoring_ingest_dropped_total{reason="too_old",signal="metrics"}'),
    'pg_monitoring_ingest_dropped_total{reason="too_old",signal="metrics"} 5',
    '_count_ingest_drop adds a count (0 adds nothing)'
);

SELECT throws_ok(
    $$SELECT monitoring._count_ingest_drop('traces', 'invalid', 1)$$,
    '22023',
    'p_signal must be events, spans, logs or metrics, not traces',
    'an unknown signal is refused'
);

SELECT throws_ok(
    $$SELECT monitoring._count_ingest_drop('spans', 'the span is bad', 1)$$,
    '22023',
    'p_reason must be a short label (a-z, 0-9, _; 40 at most), not the span is bad',
    'a reason that is not a short label is refused: it becomes a label value'
);

SELECT * FROM finish();
ROLLBACK;
