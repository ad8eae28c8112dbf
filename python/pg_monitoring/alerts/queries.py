"""Every statement the alerting client runs: one stored function or one view each."""

from __future__ import annotations

ADD_CHANNEL = """
SELECT monitoring.add_channel(
    %s::text, %s::text, %s::jsonb, %s::jsonb, %s::text[], %s::text[], %s::text,
    %s::boolean, %s::boolean, %s::boolean
)"""
# A notifier's fields in one object (FIELD_env names apart): SQL says which are secrets.
ADD_CHANNEL_FIELDS = """
SELECT monitoring.add_channel(
    %s::text, %s::text, s.config || %s::jsonb, s.secrets, %s::text[], %s::text[], %s::text,
    %s::boolean, %s::boolean, %s::boolean
)
FROM monitoring.channel_split(%s::text, %s::jsonb) AS s"""
REMOVE_CHANNEL = "SELECT monitoring.remove_channel(%s::text)"
TEST_CHANNEL = "SELECT monitoring.test_channel(%s::text)"
LIST_CHANNELS = """
SELECT c.id, c.name, c.kind, c.enabled, c.services, c.environments, c.min_level, c.config,
       c.secret_fields,
       (SELECT count(*) FROM monitoring.notification_rules AS r WHERE r.channel = c.name)
           AS rules
FROM monitoring.notification_channels AS c
ORDER BY c.name"""
SET_OCCURRENCE_ALERTS = """
SELECT monitoring.set_occurrence_alerts(
    %s::text, %s::bigint[], %s::bigint, %s::text, %s::text, %s::text
)"""

CLAIM = """
SELECT * FROM monitoring.claim_notifications(
    %s::integer, %s::double precision, %s::text, %s::bigint[], %s::integer
)"""
CHANNEL_ENVIRONMENT = """
SELECT monitoring.channel_environment(%s::text, %s::jsonb, %s::jsonb, %s::jsonb)"""
COMPLETE = "SELECT monitoring.complete_notification(%s::bigint, %s::uuid)"
FAIL = """
SELECT monitoring.fail_notification(
    %s::bigint, %s::uuid, %s::text, %s::boolean, %s::double precision, %s::integer,
    %s::double precision, %s::double precision
)"""
# Seconds until the next notification falls due (negative: due now); NULL when none waits.
NEXT_DUE = """
SELECT extract(EPOCH FROM monitoring.next_notification_at() - clock_timestamp())::float8"""
STATUS = "SELECT status, last_error FROM monitoring.notifications WHERE id = %s::bigint"
FOLD = "SELECT monitoring.fold_counts()"
MAINTAIN = "SELECT monitoring.run_maintenance()"

NOTIFICATION_STATUSES = "SELECT monitoring.notification_statuses()"
RETRY = "SELECT monitoring.retry_notification(%s::bigint)"
OUTBOX_COUNTS = """
SELECT status, count(*) AS notifications, min(created_at) AS oldest,
       min(next_attempt_at) FILTER (WHERE status IN ('pending', 'failed')) AS next_attempt
FROM monitoring.notifications
GROUP BY status
ORDER BY array_position(ARRAY['pending', 'sending', 'failed', 'dead', 'sent'], status)"""
OUTBOX_LIST = """
SELECT id, status, channel, condition, issue_id, attempts, next_attempt_at, created_at,
       sent_at, summary, last_error
FROM monitoring.notifications
WHERE (%(status)s::text IS NULL AND status <> 'sent') OR status = %(status)s::text
ORDER BY id DESC
LIMIT %(limit)s::integer"""
