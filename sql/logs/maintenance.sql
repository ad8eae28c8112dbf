-- Log maintenance, run by run_maintenance (core/maintenance.sql): partitions ahead and
-- retention by dropping whole days.

CREATE OR REPLACE FUNCTION monitoring.ensure_log_partitions(p_days_ahead integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN monitoring._ensure_daily_partitions(
        'monitoring.log_records', 'time',
        coalesce(p_days_ahead, (monitoring.get_setting('logs.partition_days_ahead'))::integer)
    );
END
$$;

CREATE OR REPLACE FUNCTION monitoring.apply_log_retention()
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_dropped record := monitoring._drop_daily_partitions(
        'monitoring.log_records', 'time',
        now() - make_interval(days => (monitoring.get_setting('logs.retention_days'))::integer)
    );
BEGIN
    RETURN jsonb_build_object(
        'log_partitions_dropped', v_dropped.partitions_dropped,
        'default_logs_deleted', v_dropped.default_rows_deleted
    );
END
$$;
