-- The words of alerting, each defined once: the kinds of channel and the fields each takes,
-- the conditions a rule fires on, and the statuses of a notification. The tables' CHECK
-- constraints call these functions (so this file comes before tables.sql), the functions
-- that check arguments call them, and clients read them rather than spell them again.
-- Replacing one does not check the rows already stored (see sql/pg_monitoring.sql): a word
-- taken away needs an upgrade that deals with the rows using it.

-- What each kind of channel takes, in the order people read it: the field, the type of its
-- value (_channel_value checks and converts each), whether a channel needs it, and whether
-- it is a secret (kept in alert_channels.secrets, never in config). Any field may instead be
-- given as FIELD_env: the name of an environment variable the worker reads it from.
CREATE OR REPLACE FUNCTION monitoring.channel_fields()
RETURNS TABLE (kind text, field text, value_type text, required boolean, secret boolean)
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT f.kind, f.field, f.value_type, f.required, f.secret
    FROM (
        VALUES
        ('email', 'smtp_host', 'text', TRUE, FALSE),
        ('email', 'smtp_port', 'port', FALSE, FALSE),
        ('email', 'from_email', 'email', TRUE, FALSE),
        ('email', 'to_emails', 'emails', TRUE, FALSE),
        ('email', 'smtp_user', 'text', FALSE, FALSE),
        ('email', 'smtp_password', 'text', FALSE, TRUE),
        ('email', 'starttls', 'boolean', FALSE, FALSE),
        ('email', 'ssl', 'boolean', FALSE, FALSE),
        ('slack', 'webhook_url', 'url', TRUE, TRUE),
        ('webhook', 'url', 'url', TRUE, TRUE),
        ('webhook', 'secret', 'text', FALSE, TRUE),
        ('pagerduty', 'routing_key', 'text', TRUE, TRUE),
        ('pagerduty', 'api_url', 'url', FALSE, FALSE)
    ) AS f (kind, field, value_type, required, secret);
$$;

COMMENT ON FUNCTION monitoring.channel_fields() IS
'What each kind of alert channel takes: field, value type (text, port, email, emails, url, '
'boolean), whether it is required, whether it is a secret; any field may be given as '
'FIELD_env instead';

-- The kinds of channel, as channel_fields lists them.
CREATE OR REPLACE FUNCTION monitoring.channel_kinds()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT pg_catalog.array_agg(k.kind ORDER BY k.first)
    FROM (
        SELECT
            f.kind,
            pg_catalog.min(f.n) AS first
        FROM monitoring.channel_fields() WITH ORDINALITY AS f (
            kind, field, value_type, required, secret, n
        )
        GROUP BY f.kind
    ) AS k;
$$;

COMMENT ON FUNCTION monitoring.channel_kinds() IS
'The kinds of alert channel: email, slack, webhook, pagerduty';

CREATE OR REPLACE FUNCTION monitoring.alert_conditions()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT ARRAY[
        'new_issue', 'regression', 'escalating', 'occurrences', 'event_frequency',
        'user_frequency'
    ];
$$;

COMMENT ON FUNCTION monitoring.alert_conditions() IS
'The conditions an alert rule fires on';

-- pending (never tried), sending (claimed until next_attempt_at), sent, failed (retried at
-- next_attempt_at), dead (gave up; retry_notification revives it).
CREATE OR REPLACE FUNCTION monitoring.notification_statuses()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT ARRAY['pending', 'sending', 'sent', 'failed', 'dead'];
$$;

COMMENT ON FUNCTION monitoring.notification_statuses() IS
'The statuses of a notification in the outbox, in the order of its life';

GRANT EXECUTE ON FUNCTION
monitoring.channel_fields(),
monitoring.channel_kinds(),
monitoring.alert_conditions(),
monitoring.notification_statuses()
TO monitoring_reader, monitoring_admin;
