-- Metric ingest: monitoring.record_metrics(request) takes an OTLP ExportMetricsServiceRequest
-- in its JSON mapping, as `pg-monitoring serve` sends it (POST /v1/metrics). As record_spans:
-- set-based, a bad data point refused alone with a reason (OTLP's partial success), labels
-- cut and scrubbed by the span attributes' rules, and a retry of points already stored
-- changes nothing (the key is series, time, start).

CREATE OR REPLACE FUNCTION monitoring.record_metrics(p_request jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- as record_spans: no nested loops over the request's sets, no JIT for its guessed sizes,
-- no plans made per call around the request as a constant
SET enable_nestloop = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_cfg jsonb;
    v_key_pattern text;
    v_key_likes text[];
    v_safe_keys text[];
    v_sources jsonb;
    v_points monitoring._otlp_metric_point[];
    v_keys monitoring._otlp_metric_key[];
    v_resources jsonb;
    v_digests uuid[];
    v_series jsonb;
    v_max_bytes integer;
    v_max_length integer;
    v_total integer;
    v_valid integer;
    v_rejected integer;
    v_reasons text;
    v_stored integer;
BEGIN
    SELECT r.cfg, r.total, r.sources, r.key_pattern, r.key_likes, r.safe_keys
    INTO v_cfg, v_total, v_sources, v_key_pattern, v_key_likes, v_safe_keys
    FROM monitoring._otlp_request(p_request, 'metrics') AS r;
    IF v_total = 0 THEN
        RETURN jsonb_build_object('stored', 0, 'duplicates', 0, 'rejected', 0, 'error_message', NULL);
    END IF;
    v_max_bytes := (v_cfg ->> 'otlp.max_attributes_bytes')::integer;
    v_max_length := (v_cfg ->> 'otlp.max_attribute_length')::integer;

    -- Read and checked once, kept for the statements below.
    v_points := ARRAY(
        SELECT pt
        FROM monitoring._otlp_metric_points(
            p_request,
            now() - make_interval(days => (v_cfg ->> 'metrics.retention_days')::integer),
            now() + interval '1 day',
            (v_cfg ->> 'metrics.max_labels')::integer,
            (v_cfg ->> 'metrics.max_buckets')::integer
        ) AS pt
    );

    SELECT
        count(*) FILTER (WHERE p.reason IS NULL),
        count(*) FILTER (WHERE p.reason IS NOT NULL),
        monitoring._otlp_refusals(
            'metrics', v_total,
            jsonb_agg(jsonb_build_array(p.reason, p.r, p.s, p.m, p.p)) FILTER (WHERE p.reason IS NOT NULL)
        )
    INTO v_valid, v_rejected, v_reasons
    FROM unnest(v_points) AS p;
    IF v_rejected > 0 THEN
        PERFORM monitoring._count_otlp_refusals(
            'metrics', ARRAY(SELECT p.reason FROM unnest(v_points) AS p)
        );
    END IF;

    -- The resources' attributes, which each series' labels begin with.
    SELECT jsonb_object_agg(o.id::text, o.attributes)
    INTO v_resources
    FROM monitoring.otel_resources AS o
    WHERE o.id = ANY(ARRAY(SELECT (e.value ->> 0)::integer FROM jsonb_each(v_sources) AS e));

    -- Each series the points name once: the point's labels, cut and scrubbed, and the
    -- digest that finds the series (its resource by id: the resource's attributes are merged
    -- in only when a series is new). Cleaned once per label set, not per point.
    v_keys := ARRAY(
        SELECT ROW(
            k.r, k.s, k.m, k.attributes,
            md5(
                k.name || E'\x1f' || k.type || E'\x1f' || k.unit || E'\x1f' || k.temporality
                || E'\x1f' || k.monotonic || E'\x1f' || k.resource_id || E'\x1f'
                || k.point_labels::text
            )::uuid,
            k.point_labels, k.name, k.type, k.unit, k.description, k.temporality, k.monotonic,
            k.resource_id, k.service
        )::monitoring._otlp_metric_key
        FROM (
            SELECT
                d.*,
                (v_sources -> (d.r || '.' || d.s) ->> 0)::integer AS resource_id,
                v_sources -> (d.r || '.' || d.s) ->> 1 AS service,
                -- cut and scrubbed only when a cheap test says it may change something
                -- (nesting is bounded already, by _otlp_value)
                CASE
                    WHEN pg_column_size(d.attributes) > least(v_max_length, v_max_bytes)
                        OR v_key_pattern IS NOT NULL AND monitoring._may_hold_secrets(
                            d.attributes::text, v_key_pattern, v_key_likes
                        )
                        THEN monitoring._otlp_clean(
                            d.attributes, v_max_bytes, v_max_length,
                            v_key_pattern, v_key_likes, v_safe_keys
                        )
                    ELSE d.attributes
                END AS point_labels
            FROM (
                SELECT DISTINCT
                    p.r, p.s, p.m, p.attributes, p.name, p.type, p.unit, p.description,
                    p.temporality, p.monotonic
                FROM unnest(v_points) AS p
                WHERE p.reason IS NULL
            ) AS d
            -- each label set cleaned once (pulled up, each mention of point_labels would again)
            OFFSET 0
        ) AS k
    );

    -- The series' ids: known ones by their digests (one index probe each: a join would
    -- read the whole table, as this function allows no nested loops), new ones stored in a
    -- statement of their own, before the points, and looked up again: one another writer
    -- stored at the same moment is then found. Not stored first and then looked up: each
    -- insert that conflicts would use up an id.
    v_digests := ARRAY(SELECT DISTINCT k.digest FROM unnest(v_keys) AS k);
    SELECT coalesce(jsonb_object_agg(ms.digest::text, ms.id), '{}')
    INTO v_series
    FROM monitoring.metric_series AS ms
    WHERE ms.digest = ANY(v_digests);
    IF (SELECT count(*) FROM jsonb_object_keys(v_series)) < cardinality(v_digests) THEN
        INSERT INTO monitoring.metric_series AS ms (
            digest, name, type, unit, temporality, monotonic, resource_id, service, labels,
            description
        )
        SELECT DISTINCT ON (k.digest)
            k.digest, k.name, k.type, k.unit, k.temporality, k.monotonic, k.resource_id,
            k.service, (v_resources -> k.resource_id::text) || k.point_labels, k.description
        FROM unnest(v_keys) AS k
        WHERE NOT v_series ? k.digest::text
        -- in key order, as every writer of this table does
        ORDER BY k.digest
        ON CONFLICT (digest) DO NOTHING;

        SELECT coalesce(jsonb_object_agg(ms.digest::text, ms.id), '{}')
        INTO v_series
        FROM monitoring.metric_series AS ms
        WHERE ms.digest = ANY(v_digests);
    END IF;

    WITH stored AS (
        INSERT INTO monitoring.metric_data_points (
            time, start_time, value, count, sum, min, max, series_id, bounds, bucket_counts,
            quantiles, quantile_values
        )
        SELECT
            p.time, p.start_time, p.value, p.count, p.sum, p.min, p.max,
            (v_series ->> k.digest::text)::integer, p.bounds, p.bucket_counts, p.quantiles,
            p.quantile_values
        FROM unnest(v_points) AS p
        INNER JOIN unnest(v_keys) AS k
            ON p.r = k.r AND p.s = k.s AND p.m = k.m AND p.attributes = k.attributes
        WHERE p.reason IS NULL
        -- a point sent again (or twice in one request) is stored once
        ON CONFLICT DO NOTHING
        RETURNING 1
    )

    SELECT count(*) INTO v_stored FROM stored;

    RETURN jsonb_build_object(
        'stored', v_stored,
        'duplicates', v_valid - v_stored,
        'rejected', v_rejected,
        'error_message', v_reasons
    );
END
$$;

COMMENT ON FUNCTION monitoring.record_metrics(jsonb) IS
'Stores the data points of an OTLP ExportMetricsServiceRequest (JSON mapping) as series and '
'points; returns {"stored", "duplicates" (sent before), "rejected", "error_message" (why, '
'for OTLP''s partial_success)}';

GRANT EXECUTE ON FUNCTION monitoring.record_metrics(jsonb) TO monitoring_writer, monitoring_admin;
