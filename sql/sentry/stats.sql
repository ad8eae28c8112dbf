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

-- The exposition's rows (name, kind, help, labels, value) of the Sentry ingest, for
-- prometheus_metrics(): the hours kept plus what retention summed into the totals, so the
-- counter never goes down. Labels as the exposition writes them, keys in order.
CREATE OR REPLACE FUNCTION monitoring._sentry_ingest_metrics()
RETURNS TABLE (name text, kind text, help text, labels text, value numeric)
LANGUAGE sql
STABLE
AS $$
    SELECT
        'pg_monitoring_sentry_items_total', 'counter',
        'Items the Sentry ingest counted per project, outcome (accepted, dropped, '
        || 'client_dropped: the SDK''s own drops, skipped), data category and reason',
        'category="' || monitoring._prometheus_label(o.category)
        || '",outcome="' || monitoring._prometheus_label(o.outcome)
        || '",project="' || monitoring._prometheus_label(p.name)
        || '",reason="' || monitoring._prometheus_label(o.reason) || '"',
        sum(o.quantity)::numeric
    FROM (
        SELECT h.project_id, h.outcome, h.category, h.reason, h.quantity
        FROM monitoring.sentry_outcomes AS h
        UNION ALL
        SELECT t.project_id, t.outcome, t.category, t.reason, t.quantity
        FROM monitoring.sentry_outcome_totals AS t
    ) AS o
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
    WITH gone AS (
        DELETE FROM monitoring.sentry_outcomes AS o
        WHERE o.hour < now() - make_interval(
            days => (monitoring.get_setting('sentry.outcomes_retention_days') #>> '{}')::integer
        )
        RETURNING o.project_id, o.outcome, o.category, o.reason, o.quantity
    ),

    added AS (
        INSERT INTO monitoring.sentry_outcome_totals AS t (
            project_id, outcome, category, reason, quantity
        )
        SELECT g.project_id, g.outcome, g.category, g.reason, sum(g.quantity)
        FROM gone AS g
        GROUP BY g.project_id, g.outcome, g.category, g.reason
        -- rows in one order: two maintenance runs at once never deadlock
        ORDER BY g.project_id, g.outcome, g.category, g.reason
        ON CONFLICT (project_id, outcome, category, reason)
        DO UPDATE SET quantity = least(
            t.quantity::numeric + excluded.quantity, 9223372036854775807
        )::bigint
        RETURNING 1
    )

    SELECT count(*) INTO v_deleted FROM gone;
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
