-- Error storage: issues (groups of events with one fingerprint) and their events. Both are
-- logged tables: errors must survive a crash and reach standbys.
--
-- The capture hot path never updates an issue row per event (see facts.md: a counter update
-- on one hot row serialises every writer of an error storm). Each event appends one row to
-- error_issue_counts instead; run_maintenance folds those rows into error_issues, and the
-- issues view adds the rows not folded yet, so counts read exact at any moment.
--
-- With the errors settings: where events go, how long they stay, how much of them is kept
-- (the limits, core/limits.sql) and what is scrubbed (core/scrubbing.sql, for spans and logs
-- too).

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES
(
    'errors.default_environment', '"production"',
    'Environment of events captured without one',
    1, 200
),
(
    'errors.default_service', '"default"',
    'Service of events captured without one',
    1, 200
),
(
    'errors.retention_days', '90',
    'Days events are kept; older partitions are dropped by run_maintenance',
    1, 36500
),
(
    'errors.partition_days_ahead', '7',
    'Daily event partitions run_maintenance keeps created ahead of today',
    0, 90
);

-- How much of an event is kept (core/limits.sql and capture_limits.sql cut to these).
INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES
(
    'errors.max_message_length', '8192',
    'Characters kept of a message or exception value; the rest is cut with a marker',
    256, 1000000
),
(
    'errors.max_frames', '100',
    'Frames kept per exception: the outermost and innermost halves, with a marker between',
    1, 1000
),
(
    'errors.max_context_bytes', '65536',
    'Bytes kept of the context, tags, user and other event data, each',
    1024, 16777216
),
(
    'errors.max_breadcrumbs', '100',
    'Breadcrumbs kept per event, the newest',
    0, 1000
),
(
    'errors.max_exceptions', '10',
    'Exceptions kept of a chain: the root cause side and the raised side, with a marker between',
    1, 100
),
(
    'errors.max_stack_bytes', '262144',
    'Bytes kept of an exception chain; over it, frames lose variables and source context, '
    'then middle frames',
    16384, 67108864
);

-- What is scrubbed (core/scrubbing.sql), in errors, spans and logs alike.
INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES
(
    'scrub.enabled', 'true',
    'Replace secrets in captured events by [Filtered] before they are stored',
    NULL, NULL
),
(
    'scrub.extra_keys', '[]',
    'More key fragments to filter (matched case-insensitively anywhere in a key)',
    0, 100
),
(
    'scrub.safe_keys', '[]',
    'Keys never filtered even though they contain a sensitive fragment (exact, any case)',
    0, 100
);

CREATE TABLE monitoring.error_issues (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service text NOT NULL,
    environment text NOT NULL,
    fingerprint text NOT NULL,
    fingerprint_source text NOT NULL,
    title text NOT NULL,
    culprit text,
    exception_type text,
    level text NOT NULL,
    platform text,
    status text NOT NULL DEFAULT 'unresolved'
    CHECK (status = ANY(monitoring.issue_statuses())),
    -- regressed or escalating, since substatus_at; new and ongoing are derived from first_seen
    substatus text CHECK (substatus IN ('regressed', 'escalating')),
    substatus_at timestamptz,
    first_seen timestamptz NOT NULL,
    -- as of the last fold; monitoring.issues adds the events not folded yet
    last_seen timestamptz NOT NULL,
    times_seen bigint NOT NULL DEFAULT 0,
    users_seen bigint NOT NULL DEFAULT 0,
    first_release text,
    resolved_at timestamptz,
    resolved_by text,
    resolution text CHECK (resolution IN ('now', 'in_release', 'in_next_release')),
    -- in_release: this release and later ones regress; in_next_release: releases after it
    resolved_in_release text,
    ignored_at timestamptz,
    ignored_by text,
    ignore_until timestamptz,
    ignore_until_times_seen bigint,
    ignore_until_users_seen bigint,
    assignee text,
    assigned_at timestamptz,
    -- Storm protection (storm.sql): events counted but not stored, as of the last fold; the
    -- end of the latest window in which the issue's events are sampled, and since when its
    -- sampling has gone on (windows in a row)
    events_sampled_out bigint NOT NULL DEFAULT 0,
    sampling_until timestamptz,
    sampling_since timestamptz,
    CONSTRAINT error_issues_identity UNIQUE (service, environment, fingerprint)
);

COMMENT ON TABLE monitoring.error_issues IS
'Issues: events grouped by (service, environment, fingerprint), with their triage state; '
'read monitoring.issues for exact counts';

CREATE INDEX error_issues_last_seen ON monitoring.error_issues (last_seen DESC);

-- Events, partitioned by day on occurred_at. The DEFAULT partition takes any event no daily
-- partition covers, so an insert never fails when maintenance has not run.
CREATE TABLE monitoring.error_events (
    event_id uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- no foreign key: its check would share-lock the hot issue row on every insert
    issue_id bigint NOT NULL,
    level text NOT NULL,
    exception_type text,
    message text,
    -- the exception chain, root cause first: [{type, value, module, mechanism, frames}]
    exceptions jsonb,
    context jsonb NOT NULL DEFAULT '{}',
    tags jsonb NOT NULL DEFAULT '{}',
    user_info jsonb,
    breadcrumbs jsonb,
    release text,
    trace_id text,
    span_id text,
    platform text,
    server_name text,
    transaction_name text,
    -- everything else the SDK sent (contexts, request, sdk...)
    data jsonb,
    -- a resent event (same id and time) is stored once
    PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);

COMMENT ON TABLE monitoring.error_events IS
'Captured error events, partitioned by day; read monitoring.errors';

-- Stack traces are the bulk of an event and exceed the 2 kB at which PostgreSQL compresses:
-- lz4 compresses several times faster than the default pglz. Servers built without lz4
-- keep pglz.
DO $$
BEGIN
    IF 'lz4' = ANY(
        SELECT unnest(enumvals) FROM pg_catalog.pg_settings
        WHERE name = 'default_toast_compression'
    ) THEN
        ALTER TABLE monitoring.error_events
        ALTER COLUMN exceptions SET COMPRESSION lz4,
        ALTER COLUMN context SET COMPRESSION lz4,
        ALTER COLUMN breadcrumbs SET COMPRESSION lz4,
        ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
END
$$;

CREATE TABLE monitoring.error_events_default PARTITION OF monitoring.error_events DEFAULT;

CREATE INDEX error_events_issue ON monitoring.error_events (issue_id, occurred_at DESC);

CREATE INDEX error_events_trace ON monitoring.error_events (trace_id)
WHERE trace_id IS NOT NULL;

-- One row per event not yet folded into error_issues; run_maintenance deletes what it folds.
CREATE TABLE monitoring.error_issue_counts (
    issue_id bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    user_key text,
    -- the event's own (its issue's level is its first event's); NULL: the issue's
    level text,
    -- counted only: storm protection kept no event row of it (storm.sql)
    sampled boolean NOT NULL DEFAULT FALSE
);

CREATE INDEX error_issue_counts_issue ON monitoring.error_issue_counts (issue_id);

COMMENT ON TABLE monitoring.error_issue_counts IS
'Events counted but not yet folded into error_issues (append-only, so writers never '
'contend on an issue row)';

-- Regressions not yet folded into error_totals: one row each, appended by the capture that
-- reopened a resolved issue (rare: one per resolve), so no writer updates a shared row.
CREATE TABLE monitoring.error_issue_regressions (
    issue_id bigint NOT NULL
);

-- Prometheus's counters of events, new issues and regressions (metrics/exposition.sql),
-- added to by each fold and never lowered: retention dropping partitions, deleting issues
-- and their activity leaves them as they are, so rate() over them stays right.
CREATE TABLE monitoring.error_totals (
    service text NOT NULL,
    environment text NOT NULL,
    level text NOT NULL,
    events bigint NOT NULL DEFAULT 0,
    -- of those, counted but not stored by storm protection (storm.sql)
    events_sampled_out bigint NOT NULL DEFAULT 0,
    -- issues by their own level
    new_issues bigint NOT NULL DEFAULT 0,
    regressed_issues bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (service, environment, level)
);

COMMENT ON TABLE monitoring.error_totals IS
'Events, new issues and regressions counted since install by service, environment and level, '
'as of the last fold (monotonic: retention does not lower them)';

-- Distinct users per issue (user id, else username, else email, else IP), as folded.
CREATE TABLE monitoring.error_issue_users (
    issue_id bigint NOT NULL,
    user_key text NOT NULL,
    first_seen timestamptz NOT NULL,
    -- as of the last fold: "more than N users in M minutes" alert rules count these
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (issue_id, user_key)
);

CREATE INDEX error_issue_users_recent ON monitoring.error_issue_users (issue_id, last_seen);

-- First sighting of each release per service: "in next release" and "in release X"
-- resolutions compare releases by it.
CREATE TABLE monitoring.releases (
    service text NOT NULL,
    version text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (service, version)
);

-- Every change of an issue, and the facts an alerting layer reads: first_seen, regression,
-- escalating, resolved, ignored, unresolved, assigned, unassigned.
CREATE TABLE monitoring.issue_activity (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issue_id bigint NOT NULL REFERENCES monitoring.error_issues (id) ON DELETE CASCADE,
    occurred_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    actor text,
    action text NOT NULL CHECK (action IN (
        'first_seen', 'regression', 'escalating', 'resolved', 'ignored', 'unresolved',
        'assigned', 'unassigned'
    )),
    data jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX issue_activity_issue ON monitoring.issue_activity (issue_id, id);

SELECT monitoring._keep_rows_in_dump(t)
FROM pg_catalog.unnest(ARRAY[
    'monitoring.error_issues',
    'monitoring.error_issues_id_seq',
    'monitoring.error_events_default',
    'monitoring.error_issue_counts',
    'monitoring.error_issue_regressions',
    'monitoring.error_totals',
    'monitoring.error_issue_users',
    'monitoring.releases',
    'monitoring.issue_activity',
    'monitoring.issue_activity_id_seq'
]::regclass[]) AS t;
