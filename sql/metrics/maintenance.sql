-- Metric maintenance, run by run_maintenance (core/maintenance.sql): daily partitions ahead,
-- retention by dropping whole days, and the series left without points then.

CREATE OR REPLACE FUNCTION monitoring.ensure_metric_partitions(p_days_ahead integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN monitoring._ensure_daily_partitions(
        'monitoring.metric_data_points', 'time',
        coalesce(p_days_ahead, (monitoring.get_setting('metrics.partition_days_ahead'))::integer)
    );
END
$$;

COMMENT ON FUNCTION monitoring.ensure_metric_partitions(integer) IS
'Creates the daily metric data point partitions from today (UTC) to p_days_ahead days ahead; '
'returns how many it created';

CREATE OR REPLACE FUNCTION monitoring.apply_metric_retention()
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_cutoff timestamptz := now()
        - make_interval(days => (monitoring.get_setting('metrics.retention_days'))::integer);
    v_dropped record;
    v_series bigint := 0;
    v_id integer;
    v_empty integer[] := '{}';
BEGIN
    v_dropped := monitoring._drop_daily_partitions(
        'monitoring.metric_data_points', 'time', v_cutoff
    );
    -- Series with no point left, looked for only when points went (about once a day): one
    -- index probe per series and partition. A series first seen inside the window stays,
    -- so a writer that has just stored one finds it; one silent for the whole window and
    -- written again at this very moment may lose that point's series (the next export
    -- stores the series again).
    IF (v_dropped.partitions_dropped > 0 OR v_dropped.default_rows_deleted > 0)
        AND NOT monitoring._distributed('monitoring.metric_data_points') THEN
        DELETE FROM monitoring.metric_series AS s
        WHERE s.first_seen < v_cutoff
            AND NOT EXISTS (
                SELECT FROM monitoring.metric_data_points AS p WHERE p.series_id = s.id
            );
        GET DIAGNOSTICS v_series = ROW_COUNT;
    ELSIF v_dropped.partitions_dropped > 0 OR v_dropped.default_rows_deleted > 0 THEN
        -- On Citus the series are a reference table and the points distributed, and Citus
        -- plans no correlated subquery from the one into the other: each series is probed on
        -- its own, a single-shard query each (a round trip to a worker per series, once a day).
        FOR v_id IN
            SELECT s.id FROM monitoring.metric_series AS s WHERE s.first_seen < v_cutoff
        LOOP
            IF NOT EXISTS (
                SELECT FROM monitoring.metric_data_points AS p WHERE p.series_id = v_id
            ) THEN
                v_empty := v_empty || v_id;
            END IF;
        END LOOP;
        DELETE FROM monitoring.metric_series AS s WHERE s.id = ANY(v_empty);
        GET DIAGNOSTICS v_series = ROW_COUNT;
    END IF;
    RETURN jsonb_build_object(
        'metric_partitions_dropped', v_dropped.partitions_dropped,
        'default_metric_points_deleted', v_dropped.default_rows_deleted,
        'metric_series_deleted', v_series
    );
END
$$;

COMMENT ON FUNCTION monitoring.apply_metric_retention() IS
'Drops metric data point partitions older than metrics.retention_days, deletes older points '
'from DEFAULT, and the series left without points';
