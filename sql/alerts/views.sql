-- What readers query: channels without their secrets, rules, and the outbox.

CREATE OR REPLACE VIEW monitoring.notification_channels AS
SELECT
    c.id,
    c.name,
    c.kind,
    c.enabled,
    c.services,
    c.environments,
    c.min_level,
    c.config,
    coalesce(
        (SELECT array_agg(k.key ORDER BY k.key) FROM jsonb_object_keys(c.secrets) AS k (key)),
        '{}'
    ) AS secret_fields,
    c.created_at,
    c.created_by,
    c.updated_at
FROM monitoring.alert_channels AS c;

COMMENT ON VIEW monitoring.notification_channels IS
'Alert channels without their secrets (secret_fields names them)';

CREATE OR REPLACE VIEW monitoring.notification_rules AS
SELECT
    r.id,
    r.condition,
    c.name AS channel,
    r.service,
    r.environment,
    r.fingerprint,
    r.threshold,
    r.time_window,
    r.occurrences,
    r.repeat_every,
    r.action_interval,
    r.enabled,
    r.created_at,
    r.created_by
FROM monitoring.alert_rules AS r
LEFT JOIN monitoring.alert_channels AS c ON r.channel_id = c.id;

COMMENT ON VIEW monitoring.notification_rules IS
'Alert rules; channel NULL means every channel';

CREATE OR REPLACE VIEW monitoring.notifications AS
SELECT
    o.id,
    o.status,
    o.condition,
    c.name AS channel,
    c.kind AS channel_kind,
    o.issue_id,
    o.payload ->> 'summary' AS summary,
    o.attempts,
    o.next_attempt_at,
    o.last_error,
    o.created_at,
    o.sent_at,
    o.claimed_at,
    o.claimed_by,
    o.idempotency_key,
    o.rule_id,
    o.payload
FROM monitoring.alert_outbox AS o
INNER JOIN monitoring.alert_channels AS c ON o.channel_id = c.id;

COMMENT ON VIEW monitoring.notifications IS
'The alert outbox: every notification with its delivery state, attempts and last error';

GRANT SELECT ON
monitoring.notification_channels, monitoring.notification_rules, monitoring.notifications
TO monitoring_reader;
