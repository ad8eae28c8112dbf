-- Maintenance: one idempotent entry point, monitoring.run_maintenance(), to run every minute
-- or so, from pg_cron where installed (monitoring.schedule_maintenance) or from any client
-- (`pg-monitoring maintain`). Capture never depends on it having run: counts read exact
-- before folding, and events without a daily partition land in the DEFAULT one.
--
-- Each domain has its own steps (errors/maintenance.sql, alerts/outbox.sql,
-- cache/maintenance.sql); run_maintenance runs them, each in a subtransaction of its own.

CREATE OR REPLACE FUNCTION monitoring.run_maintenance()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_report jsonb := '{}';
    v_failed jsonb := '{}';
    v_step text;
    v_message text;
    v_state text;
BEGIN
    -- One run at a time; a second caller returns at once rather than queueing.
    IF NOT pg_try_advisory_xact_lock(7378802412486251) THEN
        RETURN jsonb_build_object('skipped', 'another run_maintenance is running');
    END IF;
    -- Each step in a subtransaction of its own: one that fails is rolled back alone, reported
    -- (in the result and as a WARNING, for pg_cron's log) and tried again at the next run,
    -- while the others still fold, partition, apply retention and clean the cache.
    FOREACH v_step IN ARRAY ARRAY[
        'fold', 'ignores', 'partitions', 'notifications', 'retention', 'cache',
        'traces_fold', 'traces_partitions', 'traces_retention', 'logs_partitions',
        'logs_retention', 'metrics_partitions', 'metrics_retention', 'sentry_retention',
        'database_statements'
    ] LOOP
        BEGIN
            v_report := v_report || CASE v_step
                WHEN 'fold' THEN jsonb_build_object(
                    'events_folded', monitoring.fold_error_counts()
                )
                WHEN 'ignores' THEN jsonb_build_object(
                    'ignores_expired', monitoring.expire_ignores()
                )
                WHEN 'partitions' THEN jsonb_build_object(
                    'partitions_created', monitoring.ensure_error_partitions()
                )
                WHEN 'notifications' THEN jsonb_build_object(
                    'notifications_deleted', monitoring.apply_alert_retention()
                )
                WHEN 'retention' THEN monitoring.apply_error_retention()
                WHEN 'traces_fold' THEN monitoring.fold_traces()
                WHEN 'traces_partitions' THEN jsonb_build_object(
                    'span_partitions_created', monitoring.ensure_trace_partitions()
                )
                WHEN 'traces_retention' THEN monitoring.apply_trace_retention()
                WHEN 'logs_partitions' THEN jsonb_build_object(
                    'log_partitions_created', monitoring.ensure_log_partitions()
                )
                WHEN 'logs_retention' THEN monitoring.apply_log_retention()
                WHEN 'metrics_partitions' THEN jsonb_build_object(
                    'metric_partitions_created', monitoring.ensure_metric_partitions()
                )
                WHEN 'metrics_retention' THEN monitoring.apply_metric_retention()
                WHEN 'sentry_retention' THEN jsonb_build_object(
                    'sentry_outcomes_deleted', monitoring.apply_sentry_outcomes_retention()
                )
                -- NULL without pg_stat_statements
                WHEN 'database_statements' THEN jsonb_build_object(
                    'statements_snapshot', monitoring.snapshot_statements()
                )
                WHEN 'cache' THEN (
                    SELECT jsonb_build_object(
                        'cache_expired_removed', c.expired_removed, 'cache_evicted', c.evicted
                    )
                    FROM monitoring.run_cache_maintenance() AS c
                )
            END;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
            v_failed := v_failed || jsonb_build_object(v_step, v_state || ': ' || v_message);
            RAISE WARNING 'pg_monitoring: maintenance step % failed: %', v_step, v_message
                USING ERRCODE = v_state;
        END;
    END LOOP;
    IF v_failed <> '{}' THEN
        v_report := v_report || jsonb_build_object('failed', v_failed);
    END IF;
    v_report := v_report || jsonb_build_object(
        'milliseconds',
        round((extract(EPOCH FROM clock_timestamp() - v_started) * 1000)::numeric, 1)
    );
    INSERT INTO monitoring.maintenance_runs AS m (finished_at, milliseconds, failed_steps)
    VALUES (
        clock_timestamp(),
        (v_report ->> 'milliseconds')::numeric,
        ARRAY(SELECT jsonb_object_keys(v_failed) ORDER BY 1)
    )
    ON CONFLICT (only_row) DO UPDATE
    SET finished_at = excluded.finished_at, milliseconds = excluded.milliseconds,
        failed_steps = excluded.failed_steps;
    RETURN v_report;
END
$$;

COMMENT ON FUNCTION monitoring.run_maintenance() IS
'Folds counts (firing threshold alerts) and trace summaries, ends expired ignores, creates '
'partitions ahead, applies retention to events, spans, logs, metric points and delivered '
'notifications, cleans the cache and takes the pg_stat_statements snapshot '
'database_statements subtracts; '
'returns what it did, and under "failed" the steps that failed (the others still ran). '
'Safe to run at any time and from several places';

-- For the worker, every few seconds: the fold of run_maintenance alone, under its lock, so
-- threshold rules fire soon without running partitioning, retention and cache cleanup
-- that often.
CREATE OR REPLACE FUNCTION monitoring.fold_counts()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- run_maintenance's lock (above): one fold at a time
    IF NOT pg_try_advisory_xact_lock(7378802412486251) THEN
        RETURN jsonb_build_object('skipped', 'another fold or run_maintenance is running');
    END IF;
    RETURN jsonb_build_object('events_folded', monitoring.fold_error_counts());
END
$$;

COMMENT ON FUNCTION monitoring.fold_counts() IS
'Folds buffered event counts into issues now, which fires threshold alert rules; '
'run_maintenance does it too, with everything else';

-- pg_cron, where the server has it: the job runs run_maintenance in this database.
CREATE OR REPLACE FUNCTION monitoring.schedule_maintenance(p_schedule text DEFAULT '* * * * *')
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_job bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                HINT = 'Run `pg-monitoring maintain` (or SELECT monitoring.run_maintenance()) '
                || 'every minute from any scheduler instead.';
    END IF;
    EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)'
    INTO v_job
    USING
        'pg_monitoring maintenance ' || current_database(), p_schedule,
        'SELECT monitoring.run_maintenance()', current_database();
    RETURN v_job;
END
$$;

COMMENT ON FUNCTION monitoring.schedule_maintenance(text) IS
'Schedules monitoring.run_maintenance() with pg_cron (every minute by default); returns '
'the cron job id';

GRANT EXECUTE ON FUNCTION monitoring.run_maintenance() TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.fold_counts() TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.schedule_maintenance(text) TO monitoring_admin;
