-- What readers query: issues with exact counts, events (the design document's
-- monitoring.errors), and every change of every issue.

-- Issues with exact counts: folded totals plus the events not folded yet.
CREATE OR REPLACE VIEW monitoring.issues AS
SELECT
    g.id,
    g.service,
    g.environment,
    g.fingerprint,
    g.fingerprint_source,
    g.title,
    g.culprit,
    g.exception_type,
    g.level,
    g.platform,
    g.status,
    -- Sentry's sub-states: new for 7 days after the first event, regressed or escalating for
    -- 7 days after it happened, ongoing otherwise. The first event among those not folded
    -- too, as first_seen below: a late event sent with an old time moves both at once.
    CASE
        WHEN g.status <> 'unresolved' THEN NULL
        WHEN g.substatus IS NOT NULL AND g.substatus_at > pg_catalog.now() - interval '7 days'
            THEN g.substatus
        WHEN least(g.first_seen, p.first_seen) > pg_catalog.now() - interval '7 days'
            THEN 'new'
        ELSE 'ongoing'
    END AS substatus,
    least(g.first_seen, p.first_seen) AS first_seen,
    greatest(g.last_seen, p.last_seen) AS last_seen,
    g.times_seen + coalesce(p.events, 0) AS times_seen,
    g.users_seen + coalesce(p.new_users, 0) AS users_seen,
    g.first_release,
    g.assignee,
    g.assigned_at,
    g.resolved_at,
    g.resolved_by,
    g.resolution,
    g.resolved_in_release,
    g.ignored_at,
    g.ignored_by,
    g.ignore_until,
    g.ignore_until_times_seen,
    g.ignore_until_users_seen,
    -- storm protection (storm.sql): events counted but not stored, and the sampling of the
    -- latest storm (sampling_until in the future: the issue is being sampled now)
    g.events_sampled_out + coalesce(p.sampled, 0) AS events_sampled_out,
    g.sampling_since,
    g.sampling_until
FROM monitoring.error_issues AS g
LEFT JOIN LATERAL (
    SELECT
        pg_catalog.count(*) AS events,
        pg_catalog.min(c.occurred_at) AS first_seen,
        pg_catalog.max(c.occurred_at) AS last_seen,
        pg_catalog.count(*) FILTER (WHERE c.sampled) AS sampled,
        pg_catalog.count(DISTINCT c.user_key) FILTER (
            WHERE NOT EXISTS (
                SELECT FROM monitoring.error_issue_users AS u
                WHERE u.issue_id = c.issue_id AND u.user_key = c.user_key
            )
        ) AS new_users
    FROM monitoring.error_issue_counts AS c
    WHERE c.issue_id = g.id
) AS p ON TRUE;

COMMENT ON VIEW monitoring.issues IS
'Issues with exact times_seen, users_seen, first and last seen, status and sub-status';

-- One row per event, with the columns the design document's queries use.
CREATE OR REPLACE VIEW monitoring.errors AS
SELECT
    e.event_id AS id,
    g.fingerprint,
    e.message,
    e.exception_type,
    -- frames of the exception that was raised last (the one the application saw)
    e.exceptions -> -1 -> 'frames' AS stack_trace,
    e.context,
    e.occurred_at,
    g.environment,
    CASE WHEN g.status = 'resolved' THEN g.resolved_at END AS resolved_at,
    e.trace_id,
    e.span_id,
    g.service,
    e.issue_id,
    g.status AS issue_status,
    e.level,
    e.release,
    e.tags,
    e.user_info,
    e.breadcrumbs,
    e.exceptions,
    e.platform,
    e.server_name,
    e.transaction_name,
    e.data,
    e.received_at
FROM monitoring.error_events AS e
INNER JOIN monitoring.error_issues AS g ON e.issue_id = g.id;

COMMENT ON VIEW monitoring.errors IS
'Captured error events, one row per event, with their issue''s fingerprint and status';

CREATE OR REPLACE VIEW monitoring.issue_history AS
SELECT
    a.id,
    a.issue_id,
    a.occurred_at,
    a.actor,
    a.action,
    a.data
FROM monitoring.issue_activity AS a;

COMMENT ON VIEW monitoring.issue_history IS 'Every change of every issue: who, when, what';

GRANT SELECT ON monitoring.issues, monitoring.errors, monitoring.issue_history
TO monitoring_reader;
