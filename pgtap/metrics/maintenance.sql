-- Metric maintenance: daily partitions created ahead (points of their day moved out of
-- DEFAULT), retention dropping old partitions and the series left without points, both run
-- by run_maintenance.
BEGIN;
SELECT plan(7);

-- a point before any partition exists lands in DEFAULT
SELECT monitoring.record_metrics(pgtap_helpers.metrics_request('m', jsonb_build_array(
    pgtap_helpers.metric('recent', 'gauge', jsonb_build_array(
        pgtap_helpers.point(0, '{"asInt": "1"}')
    ))
)));
SELECT is(
    (SELECT tableoid::regclass::text FROM monitoring.metric_data_points),
    'monitoring.metric_data_points_default',
    'a point of a day without a partition lands in DEFAULT'
);

SELECT is(monitoring.ensure_metric_partitions(2), 3, 'partitions from today to two days ahead');
SELECT ok(
    (SELECT tableoid::regclass::text FROM monitoring.metric_data_points)
    ~ '^monitoring\.metric_data_points_p\d{8}$',
    'the point moved into its day''s partition'
);

-- 40 days ago: a partition of that day with the one point of a series (written as ingest
-- would have, before the retention window moved past it)
SELECT monitoring._create_daily_partition(
    'monitoring.metric_data_points', 'time',
    ((now() - interval '40 days') AT TIME ZONE 'UTC')::date
);
INSERT INTO monitoring.metric_series (
    digest, name, type, resource_id, service, first_seen
)
SELECT
    md5('old')::uuid AS digest,
    'old' AS name,
    1 AS type,
    s.resource_id,
    s.service,
    now() - interval '40 days' AS first_seen
FROM monitoring.metric_series AS s;
INSERT INTO monitoring.metric_data_points (time, value, series_id)
SELECT
    now() - interval '40 days' AS time,
    1 AS value,
    s.id AS series_id
FROM monitoring.metric_series AS s
WHERE s.name = 'old';

SELECT is(
    monitoring.apply_metric_retention(),
    jsonb_build_object(
        'metric_partitions_dropped', 1, 'default_metric_points_deleted', 0,
        'metric_series_deleted', 1
    ),
    'retention drops the old partition and the series left without points'
);
SELECT is(
    (SELECT array_agg(metric_name) FROM monitoring.metric_points),
    ARRAY['recent'],
    'recent points and their series stay'
);
SELECT is(
    monitoring.apply_metric_retention(),
    jsonb_build_object(
        'metric_partitions_dropped', 0, 'default_metric_points_deleted', 0,
        'metric_series_deleted', 0
    ),
    'a second run does nothing'
);

SELECT ok(
    (
        SELECT
            r ? 'metric_partitions_created' AND r ? 'metric_partitions_dropped'
            AND NOT r ? 'failed'
        FROM (SELECT monitoring.run_maintenance() AS r) AS m
    ),
    'run_maintenance creates metric partitions and applies their retention'
);

SELECT * FROM finish();
ROLLBACK;
