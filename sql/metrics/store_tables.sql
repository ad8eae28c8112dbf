-- PostgreSQL-native metrics, from OTLP (record_metrics, metrics/ingest.sql): each series once
-- (metric name, type, unit, its labels: the resource's attributes merged with the data
-- point's), and its data points partitioned by day, kept 30 days by default. A series is
-- found by the digest of what identifies it, never by comparing labels; Grafana's queries
-- (metric name, label match, time range) find series by name and a GIN index on the labels,
-- then each one's points by (series, time).

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES
(
    'metrics.retention_days', '30',
    'Days metric data points are kept; older partitions are dropped by run_maintenance',
    1, 3650
),
(
    'metrics.partition_days_ahead', '7',
    'Daily metric partitions run_maintenance keeps created ahead of today',
    0, 90
),
(
    'metrics.max_labels', '64',
    'Attributes one metric data point may have; a point with more is refused (each label '
    'set is a series of its own)',
    1, 1000
),
(
    'metrics.max_buckets', '512',
    'Buckets (or quantiles) one histogram or summary data point may have; more is refused',
    16, 10000
);

-- A data point of a request as record_metrics reads it (metrics/points.sql): where it was
-- (r, s, metric m, point p), its series' identity as sent, its value or distribution, and
-- why it is refused (NULL: taken). Exponential histograms arrive here as explicit buckets.
CREATE TYPE monitoring._otlp_metric_point AS (
    r integer,
    s integer,
    m integer,
    p integer,
    attributes jsonb,
    name text,
    type smallint,
    unit text,
    description text,
    temporality smallint,
    monotonic boolean,
    time timestamptz,
    start_time timestamptz,
    value double precision,
    count bigint,
    sum double precision,
    min double precision,
    max double precision,
    bounds double precision [],
    bucket_counts bigint [],
    quantiles double precision [],
    quantile_values double precision [],
    reason text
);

-- An exponential histogram's or a summary's data point read (metrics/points.sql): its
-- buckets or quantiles, or the problem that refuses it.
CREATE TYPE monitoring._otlp_distribution AS (
    bounds double precision [],
    bucket_counts bigint [],
    quantiles double precision [],
    quantile_values double precision [],
    problem text
);

-- The series of one request: what identifies each (as sent), and its digest once the
-- point's labels are cut and scrubbed (two label sets that scrub to the same labels are one
-- series). point_labels: the point's attributes so cleaned, without the resource's.
CREATE TYPE monitoring._otlp_metric_key AS (
    r integer,
    s integer,
    m integer,
    attributes jsonb,
    digest uuid,
    point_labels jsonb,
    name text,
    type smallint,
    unit text,
    description text,
    temporality smallint,
    monotonic boolean,
    resource_id integer,
    service text
);

CREATE TABLE monitoring.metric_series (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- md5 of name, type, unit, temporality, monotonic, resource (with its scope) and the
    -- point's labels, as a uuid: a series is found by this, not by its labels
    digest uuid NOT NULL UNIQUE,
    name text NOT NULL,
    -- 1 gauge, 2 sum, 3 histogram, 4 exponential histogram (stored as explicit buckets),
    -- 5 summary (monitoring._metric_type names them)
    type smallint NOT NULL CHECK (type BETWEEN 1 AND 5),
    unit text NOT NULL DEFAULT '',
    -- OTLP's AggregationTemporality: 0 unspecified (gauges, summaries), 1 delta, 2 cumulative
    temporality smallint NOT NULL DEFAULT 0 CHECK (temporality BETWEEN 0 AND 2),
    monotonic boolean NOT NULL DEFAULT FALSE,
    resource_id integer NOT NULL,
    service text NOT NULL,
    -- the resource's attributes merged with the data point's (the point's win), scrubbed
    labels jsonb NOT NULL DEFAULT '{}',
    -- the first description sent
    description text,
    first_seen timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE monitoring.metric_series IS
'Each metric series once: name, type, unit and labels (resource and point attributes); '
'read monitoring.metric_points';

CREATE INDEX metric_series_name ON monitoring.metric_series (name);

-- labels @> '{"service.name": "shop"}'; jsonb_path_ops as for span attributes
CREATE INDEX metric_series_labels ON monitoring.metric_series
USING gin (labels jsonb_path_ops);

-- One row per data point. Fixed-width columns first (no alignment padding); the columns of
-- the kinds a point is not are NULL, which costs a bit each in the row's null bitmap.
CREATE TABLE monitoring.metric_data_points (
    time timestamptz NOT NULL,
    -- when a cumulative (or delta) sum or histogram started counting; NULL for gauges
    start_time timestamptz,
    -- gauges and sums; NULL for histograms and summaries, and for a point flagged as having
    -- no recorded value (OTLP's staleness marker)
    value double precision,
    -- histograms and summaries
    count bigint,
    sum double precision,
    min double precision,
    max double precision,
    series_id integer NOT NULL,
    -- histograms: the buckets' upper bounds (ascending) and the count of each bucket, one
    -- more than bounds (the last is up to +Infinity), as OTLP's explicit buckets are
    bounds double precision[],
    bucket_counts bigint[],
    -- summaries: the quantiles (0 to 1) and their values
    quantiles double precision[],
    quantile_values double precision[],
    -- an exporter's retry (same series, time and start) is stored once
    CONSTRAINT metric_data_points_identity UNIQUE NULLS NOT DISTINCT (series_id, time, start_time)
) PARTITION BY RANGE (time);

COMMENT ON TABLE monitoring.metric_data_points IS
'Metric data points, partitioned by day on time; read monitoring.metric_points';

CREATE TABLE monitoring.metric_data_points_default PARTITION OF monitoring.metric_data_points
DEFAULT;

SELECT monitoring._keep_rows_in_dump(t)
FROM pg_catalog.unnest(ARRAY[
    'monitoring.metric_series',
    'monitoring.metric_series_id_seq',
    'monitoring.metric_data_points_default'
]::regclass[]) AS t;
