-- record_metrics: each kind of data point stored and read back through metric_points; bad
-- points refused one by one with a reason while the rest are stored; retries stored once;
-- series stored once, labels merged, cut and scrubbed; request bounds; Grafana's query from
-- indexes; writers may write and not read.
BEGIN;
SELECT plan(28);

CREATE TEMPORARY TABLE answers (name text PRIMARY KEY, answer jsonb);

CREATE TEMPORARY TABLE sent AS
SELECT pgtap_helpers.metrics_request('shop', jsonb_build_array(
    pgtap_helpers.metric('http.server.active_requests', 'gauge', jsonb_build_array(
        pgtap_helpers.point(0, '{"asDouble": 3.5}', '{"http.route": "/pay"}'),
        pgtap_helpers.point(0, '{"asInt": "7"}', '{"http.route": "/cart"}'),
        -- no value at all: refused
        pgtap_helpers.point(1, '{}', '{"http.route": "/pay"}'),
        -- flagged as having no recorded value (a stale series): stored without one
        pgtap_helpers.point(2, '{"flags": 1}', '{"http.route": "/pay"}'),
        pgtap_helpers.point(3, '{"asDouble": "NaN"}', '{"http.route": "/pay"}'),
        pgtap_helpers.point(4, '{"asDouble": "lots"}', '{"http.route": "/pay"}'),
        pgtap_helpers.point(5, '{"asDouble": 1e400}', '{"http.route": "/pay"}')
    )),
    pgtap_helpers.metric(
        'http.server.requests', 'sum', jsonb_build_array(
            pgtap_helpers.point(0, jsonb_build_object(
                'asInt',
                '120',
                'startTimeUnixNano',
                pgtap_helpers.nanos(pgtap_helpers.base() - interval '1 minute')
            ), '{"http.route": "/pay", "password": "hunter2"}'),
            pgtap_helpers.point(0, jsonb_build_object(
                'asInt',
                '5',
                'startTimeUnixNano',
                pgtap_helpers.nanos(pgtap_helpers.base() + interval '1 minute')
            ), '{"http.route": "/late"}'),
            pgtap_helpers.point(0, '{"timeUnixNano": "yesterday", "asInt": "1"}'),
            pgtap_helpers.point(-40 * 86400, '{"asInt": "1"}'),
            pgtap_helpers.point(3 * 86400, '{"asInt": "1"}'),
            '7'::jsonb
        ),
        '{"aggregationTemporality": 2, "isMonotonic": true}'
    ),
    pgtap_helpers.metric(
        'http.server.duration', 'histogram', jsonb_build_array(
            pgtap_helpers.point(0, '{
                "count": "4", "sum": 1.25, "min": 0.05, "max": 0.9,
                "explicitBounds": [0.1, 0.5], "bucketCounts": ["1", "2", "1"]
            }'),
            pgtap_helpers.point(
                1, '{"count": "2", "explicitBounds": [0.1], "bucketCounts": ["1"]}'
            ),
            pgtap_helpers.point(
                2, '{"count": "2", "explicitBounds": [0.5, 0.1], "bucketCounts": ["1", "1", "0"]}'
            )
        ),
        '{"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA"}'
    ),
    pgtap_helpers.metric(
        'db.duration', 'exponentialHistogram', jsonb_build_array(
            pgtap_helpers.point(0, '{
                "count": "6", "sum": 7.5, "scale": 1, "zeroCount": "1",
                "positive": {"offset": 1, "bucketCounts": ["2", "1"]},
                "negative": {"bucketCounts": ["2"]}
            }'),
            pgtap_helpers.point(1, '{"count": "1", "scale": 21}'),
            pgtap_helpers.point(
                2, '{"count": "1", "scale": -10, "positive": {"offset": 2, "bucketCounts": ["1"]}}'
            )
        ),
        '{"aggregationTemporality": 1}'
    ),
    pgtap_helpers.metric('rpc.latency', 'summary', jsonb_build_array(
        pgtap_helpers.point(0, '{
            "count": "10", "sum": 4.0,
            "quantileValues": [{"value": 0.01}, {"quantile": 0.5, "value": 0.3}, {"quantile": 1, "value": 0.9}]
        }'),
        pgtap_helpers.point(1, '{"count": "1", "quantileValues": [{"quantile": 2, "value": 1}]}')
    )),
    -- a metric of no kind OTLP knows has no data points to count
    jsonb_build_object('name', 'odd', 'sketch', jsonb_build_object('dataPoints', '[{}]'::jsonb))
)) AS request;

-- what the exposition's pg_monitoring_ingest_dropped_total{signal="metrics"} held before
CREATE TEMPORARY TABLE drops_before AS
SELECT
    d.reason,
    sum(d.dropped) AS dropped
FROM monitoring.ingest_drops AS d
WHERE d.signal = 'metrics'
GROUP BY d.reason;

INSERT INTO answers
SELECT
    'mixed' AS name,
    monitoring.record_metrics(request) AS answer
FROM sent;

SELECT is(
    (
        SELECT answer - 'error_message' FROM answers
        WHERE name = 'mixed'
    ),
    '{"stored": 8, "duplicates": 0, "rejected": 13}'::jsonb,
    'good points are stored, bad ones refused one by one'
);
SELECT is(
    (
        SELECT jsonb_object_agg(d.reason, d.dropped - coalesce(b.dropped, 0))
        FROM (
            SELECT
                i.reason,
                sum(i.dropped) AS dropped
            FROM monitoring.ingest_drops AS i
            WHERE i.signal = 'metrics'
            GROUP BY i.reason
        ) AS d
        LEFT JOIN drops_before AS b ON d.reason = b.reason
    ),
    '{"invalid": 11, "too_old": 1, "in_future": 1}'::jsonb,
    'the refused points are counted as ingest drops by reason'
);
SELECT ok(
    (
        SELECT answer ->> 'error_message' FROM answers
        WHERE name = 'mixed'
    )
    ~ (
        '^13 of 21 data points rejected: a gauge or sum data point needs asInt .*'
        || 'first: resourceMetrics\[0\]\.scopeMetrics\[0\]\.metrics\[0\]\.dataPoints\[2\]'
    ),
    'each reason says where its first point was'
);
SELECT is(
    (
        SELECT count(*)::integer
        FROM regexp_matches(
            (
                SELECT answer ->> 'error_message' FROM answers
                WHERE name = 'mixed'
            ),
            '(startTimeUnixNano is after|timeUnixNano must be|retention window|in the future'
            || '|must be a JSON object)',
            'g'
        )
    ),
    4,
    'the first five reasons are named, in the request''s order'
);

-- each kind read back
SELECT set_eq(
    $$SELECT labels ->> 'http.route', value::text, metric_type FROM monitoring.metric_points
    WHERE metric_name = 'http.server.active_requests'$$,
    $$VALUES ('/pay', '3.5', 'gauge'), ('/cart', '7', 'gauge'), ('/pay', NULL, 'gauge'),
    ('/pay', 'NaN', 'gauge')$$,
    'gauges: doubles, integers, NaN, and a stale point without a value'
);
SELECT is(
    (
        SELECT (value, start_time, temporality, monotonic, labels, service)::text
        FROM monitoring.metric_points
        WHERE metric_name = 'http.server.requests'
    ),
    (
        120::double precision, pgtap_helpers.base() - interval '1 minute', 'cumulative', TRUE,
        '{"http.route": "/pay", "password": "[Filtered]", "service.name": "shop"}'::jsonb, 'shop'
    )::text,
    'a cumulative sum with its start; labels are the resource''s and the point''s, scrubbed'
);
SELECT is(
    (
        SELECT (count, sum, min, max, bounds, bucket_counts, temporality)::text
        FROM monitoring.metric_points
        WHERE metric_name = 'http.server.duration'
    ),
    (
        4::bigint, 1.25::double precision, 0.05::double precision, 0.9::double precision,
        '{0.1,0.5}'::double precision[], '{1,2,1}'::bigint[], 'delta'
    )::text,
    'a histogram with its buckets'
);
SELECT is(
    (
        SELECT (
            count, sum, array(SELECT round(b::numeric, 6) FROM unnest(bounds) AS b),
            bucket_counts, metric_type
        )::text
        FROM monitoring.metric_points
        WHERE metric_name = 'db.duration'
    ),
    (
        6::bigint, 7.5::double precision, '{-1.000000,0.000000,2.000000,2.828427}'::numeric[],
        '{2,1,2,1,0}'::bigint[], 'exponential_histogram'
    )::text,
    'an exponential histogram as explicit buckets: negative, zero, positive, +Inf'
);
SELECT is(
    (
        SELECT (count, sum, quantiles, quantile_values)::text
        FROM monitoring.metric_points
        WHERE metric_name = 'rpc.latency'
    ),
    (
        10::bigint, 4::double precision, '{0,0.5,1}'::double precision[],
        '{0.01,0.3,0.9}'::double precision[]
    )::text,
    'a summary with its quantiles (an absent quantile is 0)'
);
SELECT ok(
    (SELECT answer ->> 'error_message' FROM (
        SELECT monitoring.record_metrics(pgtap_helpers.metrics_request('shop', jsonb_build_array(
            pgtap_helpers.metric('rpc.latency', 'summary', jsonb_build_array(
                pgtap_helpers.point(9, '{"count": "1", "quantileValues": [{"quantile": 2}]}')
            )),
            pgtap_helpers.metric('db.duration', 'exponentialHistogram', jsonb_build_array(
                pgtap_helpers.point(9, '{"count": "1", "scale": -10, "positive": {"offset": 1}}')
            )),
            pgtap_helpers.metric('h', 'histogram', jsonb_build_array(
                pgtap_helpers.point(9, '{"count": "-1"}'),
                pgtap_helpers.point(9, '{"count": "1", "sum": "x"}')
            ))
        ))) AS answer
    ) AS a) ~ (
        'quantile from 0 to 1.*beyond what a double holds.*count must be a non-negative'
        || '.*sum, min and max must be numbers'
    ),
    'distributions are checked: quantiles, bucket ranges, counts, sums'
);

SELECT monitoring.record_metrics(pgtap_helpers.metrics_request('shop', jsonb_build_array(
    pgtap_helpers.metric('numbers', 'histogram', jsonb_build_array(
        pgtap_helpers.point(
            0, '{"count": 2, "explicitBounds": ["1e-5", 0.5], "bucketCounts": [1, "0", 1]}'
        )
    ))
)));
SELECT is(
    (
        SELECT (count, bounds, bucket_counts)::text FROM monitoring.metric_points
        WHERE metric_name = 'numbers'
    ),
    (2::bigint, '{1e-05,0.5}'::double precision[], '{1,0,1}'::bigint[])::text,
    'counts as JSON numbers and bounds as strings are read one by one'
);

-- retries and series
INSERT INTO answers
SELECT
    'again' AS name,
    monitoring.record_metrics(request) AS answer
FROM sent;
SELECT is(
    (
        SELECT answer - 'error_message' FROM answers
        WHERE name = 'again'
    ),
    '{"stored": 0, "duplicates": 8, "rejected": 13}'::jsonb,
    'a retry stores nothing twice'
);
SELECT is(
    monitoring.record_metrics(pgtap_helpers.metrics_request('shop', jsonb_build_array(
        pgtap_helpers.metric('twice', 'gauge', jsonb_build_array(
            pgtap_helpers.point(0, '{"asInt": "1"}'), pgtap_helpers.point(0, '{"asInt": "1"}')
        ))
    ))) - 'error_message',
    '{"stored": 1, "duplicates": 1, "rejected": 0}'::jsonb,
    'nor a point a request holds twice'
);
SELECT is(
    (SELECT count(*)::integer FROM monitoring.metric_series),
    8,
    'each series once: name, kind, resource and labels'
);
SELECT monitoring.record_metrics(pgtap_helpers.metrics_request('shop', jsonb_build_array(
    pgtap_helpers.metric('http.server.active_requests', 'gauge', jsonb_build_array(
        pgtap_helpers.point(60, '{"asDouble": 4}', '{"http.route": "/pay"}')
    )),
    pgtap_helpers.metric(
        'http.server.requests', 'sum', jsonb_build_array(
            -- only the secret differs: scrubbed, the same series
            pgtap_helpers.point(60, jsonb_build_object(
                'asInt',
                '130',
                'startTimeUnixNano',
                pgtap_helpers.nanos(pgtap_helpers.base() - interval '1 minute')
            ), '{"http.route": "/pay", "password": "other"}')
        ),
        '{"aggregationTemporality": 2, "isMonotonic": true}'
    )
)));
SELECT is(
    (SELECT count(*)::integer FROM monitoring.metric_series),
    8,
    'later points find their series; labels that scrub alike are one series'
);
SELECT is(
    (
        SELECT array_agg(value ORDER BY time)
        FROM monitoring.metric_points
        WHERE metric_name = 'http.server.requests' AND labels @> '{"http.route": "/pay"}'
    ),
    '{120,130}'::double precision[],
    'a series'' points over time'
);
SELECT is(
    (
        SELECT count(DISTINCT series_id)::integer FROM monitoring.metric_points
        WHERE metric_name = 'http.server.active_requests'
    ),
    2,
    'one series per label set'
);

-- labels bounded
SELECT monitoring.set_setting('metrics.max_labels', '2');
SELECT monitoring.set_setting('otlp.max_attribute_length', '256');
INSERT INTO answers
SELECT
    'labels' AS name,
    monitoring.record_metrics(pgtap_helpers.metrics_request('shop', jsonb_build_array(
        pgtap_helpers.metric('bounded', 'gauge', jsonb_build_array(
            pgtap_helpers.point(0, '{"asInt": "1"}', jsonb_build_object('long', repeat('v', 1000))),
            pgtap_helpers.point(0, '{"asInt": "1"}', '{"a": "1", "b": "2", "c": "3"}')
        ))
    ))) AS answer;
SELECT monitoring.reset_setting('metrics.max_labels');
SELECT monitoring.reset_setting('otlp.max_attribute_length');
SELECT is(
    (
        SELECT (answer ->> 'stored', answer ->> 'rejected') FROM answers
        WHERE name = 'labels'
    ),
    ('1'::text, '1'::text),
    'a point with more attributes than metrics.max_labels is refused'
);
SELECT ok(
    (
        SELECT labels ->> 'long' = repeat('v', 256) || '... [truncated: 744 more characters]'
        FROM monitoring.metric_points
        WHERE metric_name = 'bounded'
    ),
    'a long label value is cut'
);

-- Grafana's query: series by name and labels, their points by series and time
SET LOCAL enable_seqscan = off;
CREATE TEMPORARY TABLE grafana_plan AS
SELECT string_agg(p.line, E'\n') AS plan
FROM pgtap_helpers.explain(
    $q$SELECT floor(extract(epoch from time)/60)*60 AS "time", avg(value)
    FROM monitoring.metric_points
    WHERE metric_name = 'http.server.active_requests'
        AND labels @> '{"http.route": "/pay"}'
        AND time BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-01T06:00:00Z'
    GROUP BY 1 ORDER BY 1$q$
) AS p (line);
SELECT ok(
    (
        SELECT
            plan LIKE '%Index Scan on metric_series_name%'
            AND plan LIKE '%Index Scan using metric_data_points_%'
            || 'Index Cond: ((series_id = s.id) AND ("time" >= %'
        FROM grafana_plan
    ),
    'Grafana''s query finds series by name, and their points by series and time, by index'
);
SELECT ok(
    (
        SELECT string_agg(p.line, E'\n')
        FROM pgtap_helpers.explain(
            $q$SELECT series_id FROM monitoring.metric_points
            WHERE labels @> '{"http.route": "/pay"}'$q$
        ) AS p (line)
    ) ~ 'Bitmap Index Scan on metric_series_labels',
    'labels @> uses the GIN index'
);
RESET enable_seqscan;

-- bad requests
SELECT throws_ok(
    $$SELECT monitoring.record_metrics('[]')$$, '22023', NULL, 'a request must be an object'
);
SELECT throws_ok(
    $$SELECT monitoring.record_metrics(pgtap_helpers.metrics_request('shop', jsonb_build_array(
        pgtap_helpers.metric('many', 'gauge', (
            SELECT jsonb_agg(pgtap_helpers.point(i, '{"asInt": "1"}'))
            FROM generate_series(1, 6000) AS i
        )),
        pgtap_helpers.metric('more', 'sum', (
            SELECT jsonb_agg(pgtap_helpers.point(i, '{"asInt": "1"}'))
            FROM generate_series(1, 4001) AS i
        ))
    )))$$,
    '54000', 'p_request holds 10001 data points, over otlp.max_items_per_call (10000)',
    'more data points than otlp.max_items_per_call, over all metrics, is refused whole'
);
SELECT is(
    monitoring.record_metrics('{"resourceMetrics": []}'),
    '{"stored": 0, "duplicates": 0, "rejected": 0, "error_message": null}'::jsonb,
    'an empty request stores nothing'
);

-- roles
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', format(
        'SELECT monitoring.record_metrics(%L)',
        pgtap_helpers.metrics_request('w', jsonb_build_array(
            pgtap_helpers.metric(
                'w', 'gauge', jsonb_build_array(pgtap_helpers.point(0, '{"asInt": "1"}'))
            )
        ))
    )),
    NULL, 'a writer records metrics'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', 'SELECT * FROM monitoring.metric_points'),
    '42501', 'and reads none'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_reader', 'SELECT * FROM monitoring.metric_points'),
    NULL, 'a reader reads them'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_reader', 'SELECT * FROM monitoring.metric_data_points'),
    '42501', 'through the view only'
);

SELECT * FROM finish();
ROLLBACK;
