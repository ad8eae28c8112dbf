-- The data points of an OTLP ExportMetricsServiceRequest (JSON mapping), one row each, read
-- and checked: reason says why a point is refused (NULL: it is taken). Nothing here raises on
-- a bad value: a number that is not one, or that a double can not hold, becomes NULL and the
-- point is refused with a reason, alone.

-- A JSON number, or a string protobuf's JSON mapping writes for a double ("NaN", "Infinity",
-- "-Infinity", or digits), as a double; NULL when it is none or out of a double's range (a
-- cast would raise). Inlined: most values are plain JSON numbers, one range test each.
CREATE OR REPLACE FUNCTION monitoring._otlp_double(p_value jsonb)
RETURNS double precision
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.jsonb_typeof(p_value) = 'number' THEN CASE
            WHEN pg_catalog.abs(p_value::numeric) < 1e308
                -- below a double's smallest normal value: 0, as a double would round it
                THEN CASE WHEN pg_catalog.abs(p_value::numeric) < 1e-307 THEN 0
                    ELSE p_value::numeric::double precision END
        END
        WHEN pg_catalog.jsonb_typeof(p_value) <> 'string' THEN NULL
        WHEN (p_value #>> '{}') IN ('NaN', 'Infinity', '-Infinity')
            THEN (p_value #>> '{}')::double precision
        WHEN pg_catalog.length(p_value #>> '{}') <= 400
            AND (p_value #>> '{}') COLLATE "C" ~ E'^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]{1,3})?$'
            AND pg_catalog.abs((p_value #>> '{}')::numeric) < 1e308
            THEN CASE WHEN pg_catalog.abs((p_value #>> '{}')::numeric) < 1e-307 THEN 0
                ELSE (p_value #>> '{}')::numeric::double precision END
    END;
$$;

-- An int64 as OTLP/JSON writes it (a decimal string, or a JSON number), up to 18 digits;
-- NULL when it is not one. p_unsigned: a count (fixed64), never negative.
CREATE OR REPLACE FUNCTION monitoring._otlp_integer(p_value jsonb, p_unsigned boolean)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.jsonb_typeof(p_value) IN ('string', 'number')
            AND (p_value #>> '{}') COLLATE "C" ~ CASE WHEN p_unsigned
                THEN '^(0|[1-9][0-9]{0,17})$' ELSE '^-?(0|[1-9][0-9]{0,17})$' END
            THEN (p_value #>> '{}')::bigint
    END;
$$;

-- The items of a list one by one (what _otlp_doubles and _otlp_counts, below, do when the
-- list is not in the form they cast whole), NULL where one is not a double, or a count.
CREATE OR REPLACE FUNCTION monitoring._otlp_double_items(p_list jsonb)
RETURNS double precision[]
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    RETURN ARRAY(
        SELECT monitoring._otlp_double(e.value)
        FROM jsonb_array_elements(p_list) WITH ORDINALITY AS e (value, ord)
        ORDER BY e.ord
    );
END
$$;

CREATE OR REPLACE FUNCTION monitoring._otlp_count_items(p_list jsonb)
RETURNS bigint[]
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    RETURN ARRAY(
        SELECT monitoring._otlp_integer(e.value, TRUE)
        FROM jsonb_array_elements(p_list) WITH ORDINALITY AS e (value, ord)
        ORDER BY e.ord
    );
END
$$;

-- A list of doubles (a histogram's explicitBounds), NULL items where one is not a number a
-- double holds; NULL when it is not a list. The common case in one cast: JSON numbers
-- (jsonb writes them without exponents: up to 200 digits either side of the point is
-- within a double's range). Inlined: no query in it.
CREATE OR REPLACE FUNCTION monitoring._otlp_doubles(p_list jsonb)
RETURNS double precision[]
LANGUAGE sql
-- as the text-to-array cast is (declared IMMUTABLE, it would not be inlined)
STABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_list IS NULL THEN '{}'
        WHEN pg_catalog.jsonb_typeof(p_list) <> 'array' THEN NULL
        WHEN p_list::text COLLATE "C" ~ E'^\\[(-?[0-9]{1,200}(\\.[0-9]{1,200})?(, )?)*\\]$'
            THEN pg_catalog.translate(p_list::text, '[]', '{}')::double precision []
        ELSE monitoring._otlp_double_items(p_list)
    END;
$$;

-- A list of counts (uint64: decimal strings in OTLP/JSON), NULL items where one is not a
-- count; NULL when it is not a list. Decimal strings in one cast; inlined.
CREATE OR REPLACE FUNCTION monitoring._otlp_counts(p_list jsonb)
RETURNS bigint[]
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_list IS NULL THEN '{}'
        WHEN pg_catalog.jsonb_typeof(p_list) <> 'array' THEN NULL
        WHEN p_list::text COLLATE "C" ~ E'^\\[("(0|[1-9][0-9]{0,17})"(, )?)*\\]$'
            THEN pg_catalog.translate(p_list::text, '[]"', '{}')::bigint []
        ELSE monitoring._otlp_count_items(p_list)
    END;
$$;

-- Why an explicit histogram's buckets are refused, or NULL.
CREATE OR REPLACE FUNCTION monitoring._otlp_buckets_problem(
    p_bounds double precision[], p_counts bigint[], p_max_buckets integer
)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    IF p_bounds IS NULL OR p_counts IS NULL THEN
        RETURN 'explicitBounds and bucketCounts must be lists';
    ELSIF cardinality(p_counts) > p_max_buckets THEN
        RETURN 'more buckets than metrics.max_buckets';
    ELSIF array_position(p_bounds, NULL) IS NOT NULL OR array_position(p_counts, NULL) IS NOT NULL
        THEN
        RETURN 'explicitBounds must be numbers and bucketCounts non-negative integers';
    ELSIF cardinality(p_counts) > 0 AND cardinality(p_counts) <> cardinality(p_bounds) + 1 THEN
        RETURN 'bucketCounts must have one more item than explicitBounds';
    END IF;
    FOR i IN 2..cardinality(p_bounds) LOOP
        IF NOT p_bounds[i] > p_bounds[i - 1] THEN
            RETURN 'explicitBounds must be in ascending order';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- The buckets of an exponential histogram's data point (p_type 4) or the quantiles of a
-- summary's (5), or the problem that refuses them. An exponential histogram becomes
-- explicit buckets: bucket i of scale s covers
-- (2^(i*2^-s), 2^((i+1)*2^-s)]; its negative buckets, zero bucket and positive buckets in
-- ascending order, each bound the upper end of its bucket (what Grafana's heatmaps and
-- histogram_quantile-style queries read). PL/pgSQL: only distributions pay for it.
CREATE OR REPLACE FUNCTION monitoring._otlp_distribution(
    p_type smallint, p_point jsonb, p_max_buckets integer
)
RETURNS monitoring._otlp_distribution
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    d monitoring._otlp_distribution;
    v_scale integer;
    v_step double precision;
    v_zero double precision;
    v_zero_count bigint;
    v_side text;
    v_offset integer;
    v_counts bigint[];
    v_negative_offset integer := 0;
    v_negative bigint[] := '{}';
    v_positive_offset integer := 0;
    v_positive bigint[] := '{}';
BEGIN
    IF p_type = 5 THEN
        IF jsonb_typeof(coalesce(p_point -> 'quantileValues', '[]')) <> 'array' THEN
            d.problem := 'quantileValues must be a list';
            RETURN d;
        ELSIF jsonb_array_length(coalesce(p_point -> 'quantileValues', '[]')) > p_max_buckets THEN
            d.problem := 'more quantiles than metrics.max_buckets';
            RETURN d;
        END IF;
        -- an absent quantile or value is 0 (left out by the JSON mapping)
        SELECT
            coalesce(array_agg(
                CASE WHEN e.value ? 'quantile' THEN monitoring._otlp_double(e.value -> 'quantile')
                    ELSE 0 END ORDER BY e.ord
            ), '{}'),
            coalesce(array_agg(
                CASE WHEN e.value ? 'value' THEN monitoring._otlp_double(e.value -> 'value')
                    ELSE 0 END ORDER BY e.ord
            ), '{}')
        INTO d.quantiles, d.quantile_values
        FROM jsonb_array_elements(coalesce(p_point -> 'quantileValues', '[]'))
            WITH ORDINALITY AS e (value, ord);
        IF array_position(d.quantiles, NULL) IS NOT NULL
            OR array_position(d.quantile_values, NULL) IS NOT NULL
            OR EXISTS (SELECT FROM unnest(d.quantiles) AS q WHERE NOT q BETWEEN 0 AND 1) THEN
            d.problem := 'each of quantileValues must have a quantile from 0 to 1 and a number';
        END IF;
        RETURN d;
    END IF;

    -- exponential
    v_scale := coalesce(monitoring._otlp_integer(p_point -> 'scale', false),
        CASE WHEN p_point ? 'scale' THEN -99 ELSE 0 END);
    v_zero_count := coalesce(monitoring._otlp_integer(p_point -> 'zeroCount', true),
        CASE WHEN p_point ? 'zeroCount' THEN -1 ELSE 0 END);
    v_zero := coalesce(monitoring._otlp_double(p_point -> 'zeroThreshold'),
        CASE WHEN p_point ? 'zeroThreshold' THEN -1 ELSE 0 END);
    IF v_scale NOT BETWEEN -10 AND 20 THEN
        d.problem := 'scale must be an integer from -10 to 20';
        RETURN d;
    ELSIF v_zero_count < 0 OR NOT v_zero BETWEEN 0 AND 1e300 THEN
        d.problem := 'zeroCount must be a non-negative integer and zeroThreshold a number >= 0';
        RETURN d;
    END IF;
    v_step := 2::double precision ^ (-v_scale);
    FOREACH v_side IN ARRAY ARRAY['negative', 'positive'] LOOP
        IF p_point -> v_side IS NULL THEN
            CONTINUE;
        END IF;
        v_offset := coalesce(monitoring._otlp_integer(p_point -> v_side -> 'offset', false),
            CASE WHEN p_point -> v_side ? 'offset' THEN NULL ELSE 0 END);
        IF jsonb_typeof(coalesce(p_point -> v_side -> 'bucketCounts', '[]')) <> 'array'
            OR v_offset IS NULL OR abs(v_offset) > 1000000000 THEN
            d.problem := format('%s must have an integer offset and a list of bucketCounts', v_side);
            RETURN d;
        ELSIF jsonb_array_length(coalesce(p_point -> v_side -> 'bucketCounts', '[]'))
            > p_max_buckets THEN
            d.problem := 'more buckets than metrics.max_buckets';
            RETURN d;
        END IF;
        v_counts := monitoring._otlp_counts(p_point -> v_side -> 'bucketCounts');
        IF array_position(v_counts, NULL) IS NOT NULL THEN
            d.problem := format('%s.bucketCounts must be non-negative integers', v_side);
            RETURN d;
        -- each bound 2^(index * step) must be a double: exponents from -1022 to 1023
        ELSIF (v_offset + cardinality(v_counts)) * v_step > 1023 OR v_offset * v_step < -1022 THEN
            d.problem := format('%s buckets beyond what a double holds at scale %s', v_side, v_scale);
            RETURN d;
        END IF;
        IF v_side = 'negative' THEN
            v_negative_offset := v_offset;
            v_negative := v_counts;
        ELSE
            v_positive_offset := v_offset;
            v_positive := v_counts;
        END IF;
    END LOOP;
    IF cardinality(v_negative) + cardinality(v_positive) + 1 > p_max_buckets THEN
        d.problem := 'more buckets than metrics.max_buckets';
        RETURN d;
    END IF;
    -- the zero bucket's bound: its threshold, but never above the first positive bucket's
    -- lower end (bounds must ascend)
    IF cardinality(v_positive) > 0 THEN
        v_zero := least(v_zero, 2::double precision ^ (v_positive_offset * v_step));
    END IF;
    d.bounds := ARRAY(
        SELECT -(2::double precision ^ ((v_negative_offset + k) * v_step))
        FROM generate_series(cardinality(v_negative) - 1, 0, -1) AS k
    ) || v_zero || ARRAY(
        SELECT 2::double precision ^ ((v_positive_offset + k + 1) * v_step)
        FROM generate_series(0, cardinality(v_positive) - 1) AS k
    );
    d.bucket_counts := ARRAY(
        SELECT v_negative[k] FROM generate_series(cardinality(v_negative), 1, -1) AS k
    ) || v_zero_count || v_positive || 0::bigint;
    RETURN d;
END
$$;

CREATE OR REPLACE FUNCTION monitoring._otlp_metric_points(
    p_request jsonb, p_oldest timestamptz, p_newest timestamptz, p_max_labels integer,
    p_max_buckets integer
)
RETURNS SETOF monitoring._otlp_metric_point
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT
        f.r, f.s, f.m, f.p,
        coalesce(f.attributes, '{}'),
        f.name, f.type, f.unit, f.description, f.temporality, f.monotonic, f.time,
        f.start_time,
        f.value,
        f.count, f.sum, f.min, f.max,
        coalesce(f.bounds, (f.dist).bounds), coalesce(f.bucket_counts, (f.dist).bucket_counts),
        (f.dist).quantiles, (f.dist).quantile_values,
        CASE
            WHEN pg_catalog.jsonb_typeof(f.point) <> 'object'
                THEN 'a data point must be a JSON object'
            WHEN f.name IS NULL OR f.name = '' THEN 'a metric''s name must be a non-empty string'
            WHEN f.temporality < 0
                THEN 'aggregationTemporality must be an AggregationTemporality: 0, 1 or 2'
            WHEN f.label_count > p_max_labels
                THEN 'more attributes than metrics.max_labels'
            WHEN f.time IS NULL THEN 'timeUnixNano must be Unix nanoseconds (a decimal string)'
            WHEN f.time < p_oldest
                THEN 'the point is older than the retention window (metrics.retention_days)'
            WHEN f.time > p_newest THEN 'the point is more than a day in the future'
            WHEN f.start_time IS NULL AND coalesce(f.point ->> 'startTimeUnixNano', '0') <> '0'
                THEN 'startTimeUnixNano must be Unix nanoseconds (a decimal string)'
            WHEN f.start_time > f.time THEN 'startTimeUnixNano is after timeUnixNano'
            WHEN f.type <= 2 AND f.value IS NULL AND NOT f.no_value
                THEN 'a gauge or sum data point needs asInt (a decimal string) or asDouble '
                '(a number)'
            WHEN f.type >= 3 AND f.count IS NULL
                THEN 'count must be a non-negative integer (a decimal string)'
            WHEN f.type >= 3 AND (
                f.sum IS NULL AND f.point ? 'sum' OR f.min IS NULL AND f.point ? 'min'
                OR f.max IS NULL AND f.point ? 'max'
            ) THEN 'sum, min and max must be numbers'
            WHEN f.type = 3
                THEN monitoring._otlp_buckets_problem(f.bounds, f.bucket_counts, p_max_buckets)
            WHEN f.type >= 4 THEN (f.dist).problem
        END AS reason
    FROM (
        SELECT
            src.r,
            src.s,
            mt.ord::integer AS m,
            dp.ord::integer AS p,
            dp.value AS point,
            pa.attributes,
            CASE WHEN pg_catalog.jsonb_typeof(dp.value -> 'attributes') = 'array'
                THEN pg_catalog.jsonb_array_length(dp.value -> 'attributes') ELSE 0 END
                AS label_count,
            k.name,
            k.type,
            k.unit,
            k.description,
            k.temporality,
            k.monotonic,
            monitoring._otlp_time(dp.value ->> 'timeUnixNano') AS time,
            -- gauges have no start: one sent is not part of their identity
            CASE WHEN k.type > 1 THEN monitoring._otlp_time(dp.value ->> 'startTimeUnixNano') END
                AS start_time,
            CASE WHEN k.type <= 2 THEN coalesce(
                monitoring._otlp_double(dp.value -> 'asDouble'),
                monitoring._otlp_integer(dp.value -> 'asInt', false)::double precision
            ) END AS value,
            -- DataPointFlags' NO_RECORDED_VALUE (bit 0): the series went stale, no value
            coalesce(
                pg_catalog.jsonb_typeof(dp.value -> 'flags') = 'number'
                AND (dp.value ->> 'flags') COLLATE "C" ~ '^[0-9]{1,10}$'
                AND ((dp.value ->> 'flags')::bigint & 1) = 1, FALSE
            ) AS no_value,
            -- distributions: OTLP's JSON leaves out what is 0 (an absent count is 0, an
            -- absent sum unknown)
            CASE WHEN k.type >= 3 THEN coalesce(
                monitoring._otlp_integer(dp.value -> 'count', true),
                CASE WHEN dp.value ? 'count' THEN NULL ELSE 0 END
            ) END AS count,
            CASE WHEN k.type >= 3 THEN monitoring._otlp_double(dp.value -> 'sum') END AS sum,
            CASE WHEN k.type >= 3 THEN monitoring._otlp_double(dp.value -> 'min') END AS min,
            CASE WHEN k.type >= 3 THEN monitoring._otlp_double(dp.value -> 'max') END AS max,
            -- explicit histograms here (the common distribution), the others in PL/pgSQL
            CASE WHEN k.type = 3 THEN monitoring._otlp_doubles(dp.value -> 'explicitBounds') END
                AS bounds,
            CASE WHEN k.type = 3 THEN monitoring._otlp_counts(dp.value -> 'bucketCounts') END
                AS bucket_counts,
            CASE WHEN k.type >= 4 AND pg_catalog.jsonb_typeof(dp.value) = 'object'
                THEN monitoring._otlp_distribution(k.type, dp.value, p_max_buckets)
            END AS dist
        FROM monitoring._otlp_sources(
            p_request, 'resourceMetrics', 'scopeMetrics', 'metrics'
        ) AS src
        CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(src.items) WITH ORDINALITY AS mt (value, ord)
        -- what a metric's points share, once per metric: its kind (which of OTLP's oneof
        -- data fields it has), name, unit and temporality
        CROSS JOIN LATERAL (
            SELECT
                t.type,
                t.data,
                monitoring._index_text(
                    CASE WHEN pg_catalog.jsonb_typeof(mt.value -> 'name') = 'string'
                        THEN mt.value ->> 'name' END, 400
                ) AS name,
                coalesce(monitoring._index_text(
                    CASE WHEN pg_catalog.jsonb_typeof(mt.value -> 'unit') = 'string'
                        THEN mt.value ->> 'unit' END, 100
                ), '') AS unit,
                monitoring.truncate_text(nullif(
                    CASE WHEN pg_catalog.jsonb_typeof(mt.value -> 'description') = 'string'
                        THEN mt.value ->> 'description' END, ''
                ), 1000) AS description,
                CASE WHEN t.type IN (2, 3, 4) THEN monitoring._otlp_kind(
                    t.data ->> 'aggregationTemporality', ARRAY[
                        'AGGREGATION_TEMPORALITY_UNSPECIFIED', 'AGGREGATION_TEMPORALITY_DELTA',
                        'AGGREGATION_TEMPORALITY_CUMULATIVE'
                    ]
                ) ELSE 0 END::smallint AS temporality,
                coalesce(t.type = 2 AND (t.data -> 'isMonotonic') = 'true', FALSE) AS monotonic
            FROM (
                SELECT
                    c.type,
                    mt.value -> (ARRAY[
                        'gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'
                    ])[c.type] AS data
                FROM (
                    SELECT CASE
                        WHEN pg_catalog.jsonb_typeof(mt.value) <> 'object' THEN NULL
                        WHEN mt.value ? 'gauge' THEN 1
                        WHEN mt.value ? 'sum' THEN 2
                        WHEN mt.value ? 'histogram' THEN 3
                        WHEN mt.value ? 'exponentialHistogram' THEN 4
                        WHEN mt.value ? 'summary' THEN 5
                    END::smallint AS type
                ) AS c
            ) AS t
            OFFSET 0
        ) AS k
        CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(
            CASE WHEN pg_catalog.jsonb_typeof(k.data -> 'dataPoints') = 'array'
                THEN k.data -> 'dataPoints' ELSE '[]' END
        ) WITH ORDINALITY AS dp (value, ord)
        -- a point's attributes in the same pass (see _otlp_spans)
        CROSS JOIN LATERAL (
            SELECT pg_catalog.jsonb_object_agg(
                a.value ->> 'key', monitoring._otlp_value(a.value -> 'value')
            ) AS attributes
            FROM pg_catalog.jsonb_array_elements(
                CASE WHEN pg_catalog.jsonb_typeof(dp.value -> 'attributes') = 'array'
                    THEN dp.value -> 'attributes' ELSE '[]' END
            ) AS a
            WHERE pg_catalog.jsonb_typeof(a.value -> 'key') = 'string'
        ) AS pa
        -- each value once: pulled up, each mention of dist above would run it again
        OFFSET 0
    ) AS f;
$$;
