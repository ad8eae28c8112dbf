-- What readers query: one row per metric data point with its series' name and labels, the
-- shape Grafana's PostgreSQL data source wants (time, a value, labels to group by).

CREATE OR REPLACE FUNCTION monitoring._metric_type(p_type smallint)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT (ARRAY['gauge', 'sum', 'histogram', 'exponential_histogram', 'summary'])[p_type];
$$;

CREATE OR REPLACE FUNCTION monitoring._metric_temporality(p_temporality smallint)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT (ARRAY['unspecified', 'delta', 'cumulative'])[p_temporality + 1];
$$;

-- A view PostgreSQL flattens into the query: metric_name = ... and labels @> ... find the
-- series by their indexes, then each series' points by (series_id, time) in the partitions
-- of the time range.
CREATE OR REPLACE VIEW monitoring.metric_points AS
SELECT
    p.time,
    s.name AS metric_name,
    s.labels,
    p.value,
    monitoring._metric_type(s.type) AS metric_type,
    s.unit,
    s.service,
    p.start_time,
    p.count,
    p.sum,
    p.min,
    p.max,
    p.bounds,
    p.bucket_counts,
    p.quantiles,
    p.quantile_values,
    monitoring._metric_temporality(s.temporality) AS temporality,
    s.monotonic,
    p.series_id
FROM monitoring.metric_data_points AS p
INNER JOIN monitoring.metric_series AS s ON p.series_id = s.id;

COMMENT ON VIEW monitoring.metric_points IS
'One row per metric data point: time, metric name, labels (resource and point attributes; '
'@> uses an index), value (gauges, sums), count, sum, min, max and buckets (histograms; '
'exponential ones as explicit buckets), quantiles (summaries)';

GRANT SELECT ON monitoring.metric_points TO monitoring_reader, monitoring_admin;
GRANT EXECUTE ON FUNCTION
monitoring._metric_type(smallint), monitoring._metric_temporality(smallint)
TO monitoring_reader, monitoring_admin;
