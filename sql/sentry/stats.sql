-- What the Sentry ingest did, per project: `pg-monitoring stats` and GET /metrics read it.

CREATE OR REPLACE FUNCTION monitoring.sentry_ingest_stats()
RETURNS TABLE (
    project_id bigint,
    project text,
    outcome text,
    category text,
    reason text,
    this_hour bigint,
    last_24_hours bigint
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        p.id, p.name, o.outcome, o.category, o.reason,
        coalesce(sum(o.quantity) FILTER (
            WHERE o.hour = date_trunc('hour', now())
        ), 0)::bigint,
        sum(o.quantity)::bigint
    FROM monitoring.sentry_projects AS p
    INNER JOIN monitoring.sentry_outcomes AS o ON p.id = o.project_id
    -- the current hour and the 23 before it
    WHERE o.hour > date_trunc('hour', now()) - interval '1 day'
    GROUP BY p.id, p.name, o.outcome, o.category, o.reason
    ORDER BY p.name, p.id, o.outcome, o.category, o.reason;
$$;

COMMENT ON FUNCTION monitoring.sentry_ingest_stats() IS
'Per Sentry project, outcome (accepted, dropped, client_dropped, skipped), data category and '
'reason: the items counted this hour and in the last 24 hours (this one included)';

-- The exposition's rows (name, kind, help, labels, value) of the Sentry ingest: counters
-- over the hours kept (sentry.outcomes_retention_days).
-- TODO(lead): UNION ALL this into monitoring.prometheus_metrics() (metrics/exposition.sql).
CREATE OR REPLACE FUNCTION monitoring._sentry_ingest_metrics()
RETURNS TABLE (name text, kind text, help text, labels jsonb, value numeric)
LANGUAGE sql
STABLE
AS $$
    SELECT
        'pg_monitoring_sentry_items_total', 'counter',
        'Items the Sentry ingest counted per project, outcome (accepted, dropped, '
        || 'client_dropped: the SDK''s own drops, skipped), data category and reason',
        jsonb_build_object(
            'project', p.name, 'outcome', o.outcome, 'category', o.category,
            'reason', o.reason
        ),
        sum(o.quantity)::numeric
    FROM monitoring.sentry_outcomes AS o
    INNER JOIN monitoring.sentry_projects AS p ON o.project_id = p.id
    GROUP BY p.name, o.outcome, o.category, o.reason;
$$;

-- Maintenance: per-hour counts older than sentry.outcomes_retention_days go.
CREATE OR REPLACE FUNCTION monitoring.apply_sentry_outcomes_retention()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM monitoring.sentry_outcomes AS o
    WHERE o.hour < now() - make_interval(
        days => (monitoring.get_setting('sentry.outcomes_retention_days') #>> '{}')::integer
    );
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring.apply_sentry_outcomes_retention() IS
'Deletes the per-hour Sentry ingest counts older than sentry.outcomes_retention_days; '
'returns how many rows';

GRANT EXECUTE ON FUNCTION monitoring.sentry_ingest_stats() TO monitoring_reader, monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring._sentry_ingest_metrics() TO monitoring_reader,
monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.apply_sentry_outcomes_retention() TO monitoring_admin;
