-- Latency histograms: durations counted in logarithmic buckets, four per doubling from one
-- microsecond. Bucket b holds [2^(b/4), 2^((b+1)/4)) microseconds (under 1 µs: bucket 0),
-- so a percentile read from the buckets (the bucket's geometric middle) is within about 10%
-- of the true value, whatever the scale, in at most ~200 buckets. Inlined constants.

CREATE OR REPLACE FUNCTION monitoring._duration_bucket(p_ns bigint)
RETURNS smallint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_ns < 1189 THEN 0
        ELSE pg_catalog.floor(4 * pg_catalog.ln(p_ns::double precision / 1000) / 0.6931471805599453)
    END::smallint;
$$;

CREATE OR REPLACE FUNCTION monitoring._bucket_milliseconds(p_bucket integer)
RETURNS double precision
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT pg_catalog.power(2::double precision, (p_bucket + 0.5) / 4) / 1000;
$$;

-- Prometheus's buckets for span durations (seconds): its client libraries' defaults, 5 ms
-- to 10 s. Counted from the logarithmic buckets when fold_traces folds them: a logarithmic
-- bucket goes whole to the first of these at or above its geometric middle, so a span within
-- about 10% of a boundary may be counted on its other side. Fixed: the totals
-- (trace_operation_totals.buckets) are counted against these.
CREATE OR REPLACE FUNCTION monitoring.span_duration_buckets()
RETURNS double precision[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10}'::double precision [];
$$;

COMMENT ON FUNCTION monitoring.span_duration_buckets() IS
'The upper bounds (seconds) of pg_monitoring_span_duration_seconds'' buckets';

-- For each of span_duration_buckets(), the last logarithmic bucket whose middle is at or
-- below it: logarithmic bucket b is counted in Prometheus's bucket
-- width_bucket(b - 1, edges) + 1 (one past the last: +Inf).
CREATE OR REPLACE FUNCTION monitoring._span_duration_edges()
RETURNS integer[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT pg_catalog.array_agg(
        pg_catalog.floor(4 * pg_catalog.log(2, (b.le * 1000000)::numeric) - 0.5)::integer
        ORDER BY b.le
    )
    FROM pg_catalog.unnest(monitoring.span_duration_buckets()) AS b (le);
$$;

-- The p-quantile (0 < p <= 1) of a histogram ({"bucket": count}), in milliseconds.
CREATE OR REPLACE FUNCTION monitoring.histogram_quantile(
    p_histogram jsonb, p_quantile double precision
)
RETURNS double precision
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT monitoring._bucket_milliseconds(c.bucket)
    FROM (
        SELECT
            h.key::integer AS bucket,
            sum(h.value::bigint) OVER (ORDER BY h.key::integer) AS running,
            sum(h.value::bigint) OVER () AS total
        FROM pg_catalog.jsonb_each_text(p_histogram) AS h
    ) AS c
    WHERE c.running >= p_quantile * c.total
    ORDER BY c.bucket
    LIMIT 1;
$$;

COMMENT ON FUNCTION monitoring.histogram_quantile(jsonb, double precision) IS
'The p_quantile of a latency histogram ({"bucket": count}, see traces/durations.sql) in '
'milliseconds, within about 10%';

-- Histograms added up: a sum aggregate over {"bucket": count} objects.
CREATE OR REPLACE FUNCTION monitoring._histogram_add(p_a jsonb, p_b jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_a IS NULL THEN p_b
        WHEN p_b IS NULL THEN p_a
        ELSE (
            SELECT pg_catalog.jsonb_object_agg(k.key, k.n)
            FROM (
                SELECT e.key, sum(e.value::bigint) AS n
                FROM (
                    SELECT * FROM pg_catalog.jsonb_each_text(p_a)
                    UNION ALL
                    SELECT * FROM pg_catalog.jsonb_each_text(p_b)
                ) AS e
                GROUP BY e.key
            ) AS k
        )
    END;
$$;

CREATE OR REPLACE AGGREGATE monitoring.histogram_sum (jsonb)(
    sfunc = monitoring._histogram_add,
    stype = jsonb
);

COMMENT ON AGGREGATE monitoring.histogram_sum (jsonb) IS
'Latency histograms ({"bucket": count}) added up';

GRANT EXECUTE ON FUNCTION monitoring.span_duration_buckets()
TO monitoring_reader, monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.histogram_quantile(jsonb, double precision),
monitoring._histogram_add(jsonb, jsonb), monitoring.histogram_sum(jsonb)
TO monitoring_reader, monitoring_admin;
