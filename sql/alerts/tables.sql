-- Alerts' tables and settings: channels (where alerts go), rules (when they fire), per rule
-- and issue state, and the outbox the delivery worker drains (see firing.sql and outbox.sql).
-- Their words (kinds, conditions, statuses) are checked against vocabulary.sql.

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value, fractional
) VALUES
(
    'alerts.max_attempts', '10',
    'Delivery attempts of a notification before it is dead-lettered',
    1, 100, FALSE
),
(
    'alerts.retry_base_seconds', '10',
    'Delay before retrying a failed delivery; doubles with each attempt, with jitter',
    0.01, 86400, TRUE
),
(
    'alerts.retry_max_seconds', '3600',
    'Longest delay between two delivery attempts',
    0.01, 604800, TRUE
),
(
    'alerts.retention_days', '30',
    'Days sent and dead notifications are kept; run_maintenance deletes older ones',
    1, 36500, FALSE
);

-- Where alerts go. Secrets (webhook URLs, SMTP passwords, routing keys) live in their own
-- column of a table only monitoring_admin reads (the worker connects with that role);
-- monitoring.notification_channels shows the rest to readers.
CREATE TABLE monitoring.alert_channels (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind = ANY(monitoring.channel_kinds())),
    -- no secrets here; FIELD_env names an environment variable the worker reads FIELD from
    config jsonb NOT NULL DEFAULT '{}',
    secrets jsonb NOT NULL DEFAULT '{}',
    -- filters: NULL lets every service, environment, level through
    services text[],
    environments text[],
    min_level text CHECK (min_level = ANY(monitoring.levels())),
    enabled boolean NOT NULL DEFAULT TRUE,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by name NOT NULL DEFAULT session_user,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE monitoring.alert_channels IS
'Alert channels with their secrets (monitoring_admin only); readers see '
'monitoring.notification_channels';

-- When alerts fire. A rule with no channel alerts every channel; a rule scoped to a
-- fingerprint replaces the unscoped rules for the issues with that fingerprint (the design
-- document's "only notify on the 1st and every 100th occurrence").
CREATE TABLE monitoring.alert_rules (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    condition text NOT NULL CHECK (condition = ANY(monitoring.alert_conditions())),
    channel_id bigint REFERENCES monitoring.alert_channels (id) ON DELETE CASCADE,
    service text,
    environment text,
    fingerprint text,
    -- event_frequency, user_frequency: more than threshold events (users) in time_window
    threshold bigint CHECK (threshold >= 0),
    time_window interval CHECK (time_window > interval '0'),
    -- occurrences: these counts, then every repeat_every after the last (0: no repeat)
    occurrences bigint[],
    repeat_every bigint CHECK (repeat_every >= 0),
    -- at most one alert per issue in this interval
    action_interval interval NOT NULL DEFAULT '30 minutes'
    CHECK (action_interval >= interval '0'),
    enabled boolean NOT NULL DEFAULT TRUE,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by name NOT NULL DEFAULT session_user,
    -- each condition has its own parameters and no others
    CONSTRAINT alert_rules_parameters CHECK (
        (condition = 'occurrences') = (occurrences IS NOT NULL)
        AND (condition = 'occurrences') = (repeat_every IS NOT NULL)
        AND (condition IN ('event_frequency', 'user_frequency')) = (threshold IS NOT NULL)
        AND (condition IN ('event_frequency', 'user_frequency')) = (time_window IS NOT NULL)
    )
);

COMMENT ON TABLE monitoring.alert_rules IS
'When alerts fire: new issue, regression, escalating, occurrence counts, events or users '
'in a time window; read monitoring.notification_rules';

-- One occurrence rule per scope, so that an application setting its rate limit at every
-- start (set_notification_rate_limit) replaces it instead of adding one more.
CREATE UNIQUE INDEX alert_rules_one_occurrence_rule ON monitoring.alert_rules (
    coalesce(channel_id, 0), coalesce(service, ''), coalesce(environment, ''),
    coalesce(fingerprint, '')
)
WHERE condition = 'occurrences';

-- Per rule and issue: when it last fired (the action interval) and whether a frequency
-- rule's count is above its threshold (it fires when the count crosses, not while it stays).
CREATE TABLE monitoring.alert_rule_state (
    rule_id bigint NOT NULL REFERENCES monitoring.alert_rules (id) ON DELETE CASCADE,
    issue_id bigint NOT NULL REFERENCES monitoring.error_issues (id) ON DELETE CASCADE,
    last_fired_at timestamptz,
    times_fired bigint NOT NULL DEFAULT 0,
    above boolean NOT NULL DEFAULT FALSE,
    PRIMARY KEY (rule_id, issue_id)
);

CREATE INDEX alert_rule_state_issue ON monitoring.alert_rule_state (issue_id);

-- The outbox; a notification's statuses are explained in vocabulary.sql.
CREATE TABLE monitoring.alert_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- sent with every delivery attempt of this row: receivers drop what they have seen
    idempotency_key uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    channel_id bigint NOT NULL REFERENCES monitoring.alert_channels (id) ON DELETE CASCADE,
    rule_id bigint REFERENCES monitoring.alert_rules (id) ON DELETE SET NULL,
    -- no foreign key: a notification outlives the issue retention deletes
    issue_id bigint,
    condition text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending'
    CHECK (status = ANY(monitoring.notification_statuses())),
    attempts integer NOT NULL DEFAULT 0,
    -- pending, failed: when it may be tried; sending: when the claim runs out
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    claim_token uuid,
    claimed_at timestamptz,
    claimed_by text,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    sent_at timestamptz
);

COMMENT ON TABLE monitoring.alert_outbox IS
'Notifications to deliver, written in the transaction that fired them; read '
'monitoring.notifications';

CREATE INDEX alert_outbox_due ON monitoring.alert_outbox (next_attempt_at)
WHERE status IN ('pending', 'sending', 'failed');

CREATE INDEX alert_outbox_created ON monitoring.alert_outbox (created_at);

CREATE INDEX alert_outbox_channel ON monitoring.alert_outbox (channel_id);

SELECT monitoring._keep_rows_in_dump(t)
FROM pg_catalog.unnest(ARRAY[
    'monitoring.alert_channels',
    'monitoring.alert_channels_id_seq',
    'monitoring.alert_rules',
    'monitoring.alert_rules_id_seq',
    'monitoring.alert_rule_state',
    'monitoring.alert_outbox',
    'monitoring.alert_outbox_id_seq'
]::regclass[]) AS t;

GRANT SELECT ON monitoring.alert_channels TO monitoring_admin;
