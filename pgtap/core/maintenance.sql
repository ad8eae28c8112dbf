-- Maintenance's schedule: pg_cron where it is installed, and where it is not an error that says
-- what to do instead. run_maintenance's steps and its report: errors/maintenance.sql.
BEGIN;
SELECT plan(2);

SELECT throws_ok(
    'SELECT monitoring.schedule_maintenance()',
    '0A000',
    'pg_cron is not installed in this database',
    'schedule_maintenance without pg_cron is feature_not_supported'
);
CREATE FUNCTION pg_temp.hint_of(p_sql text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_hint text;
BEGIN
    EXECUTE p_sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
    RETURN v_hint;
END
$$;
SELECT is(
    pg_temp.hint_of('SELECT monitoring.schedule_maintenance()'),
    'Run `pg-monitoring maintain` (or SELECT monitoring.run_maintenance()) every minute from '
    || 'any scheduler instead.',
    'and its hint says what to do instead'
);

SELECT * FROM finish();
ROLLBACK;
