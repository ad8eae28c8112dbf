-- Trace storage: spans (partitioned by day on start time), operations stored once, and three
-- small summaries kept at ingest so that reads never scan raw spans: one row per trace and
-- batch (trace_parts, read as monitoring.traces), per operation and minute (operation_stats)
-- and per caller -> callee operation and minute (service_map).
--
-- No writer updates a shared row: each ingest appends its own summary rows, and the fold
-- (run_maintenance) merges the rows of one key into one, as error counts are folded. Readers
-- add up the few rows of a key, so what they read is exact before the fold too.
--
-- Citus (a later step) distributes spans, trace_parts and trace_orphans by trace_id: every
-- key and index that must be unique starts with it.

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES
(
    'traces.retention_days', '30',
    'Days spans and traces are kept; older span partitions are dropped by run_maintenance',
    1, 3650
),
(
    'traces.partition_days_ahead', '7',
    'Daily span partitions run_maintenance keeps created ahead of today',
    0, 90
),
(
    'traces.max_events', '128',
    'Events (and, separately, links) kept per span: the first ones',
    0, 10000
);

-- A span of a request as record_spans reads it (traces/otlp_spans.sql): where it was in the
-- request (r, s, i), what identifies it, what else is kept of it (as sent: record_spans cuts
-- and scrubs), and why it is refused (NULL: taken). Not the span's JSON: every statement
-- that reads these rows would copy it along.
CREATE TYPE monitoring._otlp_span AS (
    r integer,
    s integer,
    i integer,
    -- the attributes as one object; events and links as sent (NULL when none)
    attributes jsonb,
    status_message text,
    events jsonb,
    links jsonb,
    service text,
    trace_id text,
    span_id text,
    parent_span_id text,
    start_time timestamptz,
    duration_ns bigint,
    kind smallint,
    name text,
    status_code smallint,
    -- OTLP's flags say the parent came from another process (a traceparent header): the
    -- entry span of this service, the trace's root here when its caller exports nowhere
    remote_parent boolean,
    reason text
);

-- What a span does, once: (service, kind, name).
CREATE TABLE monitoring.trace_operations (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service text NOT NULL,
    -- OTLP's SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer
    kind smallint NOT NULL CHECK (kind BETWEEN 0 AND 5),
    name text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT trace_operations_identity UNIQUE (service, kind, name)
);

COMMENT ON TABLE monitoring.trace_operations IS
'Each operation once: the service, kind and name spans share';

-- One row per span. Fixed-width columns first (no alignment padding). Times in microseconds
-- (timestamptz), durations in nanoseconds as OTLP sends them.
CREATE TABLE monitoring.trace_spans (
    start_time timestamptz NOT NULL,
    duration_ns bigint NOT NULL,
    operation_id integer NOT NULL,
    resource_id integer NOT NULL,
    -- OTLP's StatusCode: 0 unset, 1 ok, 2 error
    status_code smallint NOT NULL DEFAULT 0,
    -- lowercase hex, as monitoring.errors.trace_id and every OTLP JSON exporter write them
    trace_id text NOT NULL,
    span_id text NOT NULL,
    parent_span_id text,
    status_message text,
    attributes jsonb NOT NULL DEFAULT '{}',
    -- [{"time", "name", "attributes"}], [{"trace_id", "span_id", "attributes"}]
    events jsonb,
    links jsonb,
    -- an exporter's retry (same ids, same start) is stored once
    PRIMARY KEY (trace_id, span_id, start_time)
) PARTITION BY RANGE (start_time);

COMMENT ON TABLE monitoring.trace_spans IS
'Spans, partitioned by day on start_time; read monitoring.spans';

CREATE TABLE monitoring.trace_spans_default PARTITION OF monitoring.trace_spans DEFAULT;

-- attributes @> '{"http.route": "/pay"}'; jsonb_path_ops: smaller and faster to update than
-- the default operator class, and @> is the query spans need
CREATE INDEX trace_spans_attributes ON monitoring.trace_spans
USING gin (attributes jsonb_path_ops);

-- an operation's spans by time (slow spans of an endpoint, its recent calls)
CREATE INDEX trace_spans_operation ON monitoring.trace_spans (operation_id, start_time);

-- One row per trace and ingest batch that held its spans; the fold merges a trace's rows.
CREATE TABLE monitoring.trace_parts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trace_id text NOT NULL,
    first_start timestamptz NOT NULL,
    last_start timestamptz NOT NULL,
    last_end timestamptz NOT NULL,
    span_count integer NOT NULL,
    error_count integer NOT NULL,
    -- the root span (no parent), when this batch held it; else its entry span (a parent in
    -- another process: root_remote), which stands for the root until one arrives
    root_span_id text,
    root_operation_id integer,
    root_status smallint,
    root_remote boolean,
    folded boolean NOT NULL DEFAULT FALSE
);

COMMENT ON TABLE monitoring.trace_parts IS
'Per trace and batch: when its spans started and ended, how many, errors, the root; '
'read monitoring.traces';

CREATE INDEX trace_parts_trace ON monitoring.trace_parts (trace_id, id);

CREATE INDEX trace_parts_start ON monitoring.trace_parts (first_start);

CREATE INDEX trace_parts_unfolded ON monitoring.trace_parts (trace_id) WHERE NOT folded;

-- Calls, errors and a latency histogram per operation and minute (UTC).
CREATE TABLE monitoring.trace_operation_minutes (
    minute timestamptz NOT NULL,
    operation_id integer NOT NULL,
    calls integer NOT NULL,
    errors integer NOT NULL,
    duration_ns_sum bigint NOT NULL,
    -- {"bucket": count}: bucket b holds durations from 2^(b/4) to 2^((b+1)/4) microseconds
    -- (about 19% wide: percentiles read from it are within 10% of the true value)
    histogram jsonb NOT NULL,
    folded boolean NOT NULL DEFAULT FALSE
);

CREATE INDEX trace_operation_minutes_key ON monitoring.trace_operation_minutes (
    minute, operation_id
);

CREATE INDEX trace_operation_minutes_unfolded ON monitoring.trace_operation_minutes (
    minute, operation_id
) WHERE NOT folded;

-- Prometheus's span counters per operation (metrics/exposition.sql): calls, errors, total
-- duration and a histogram in fixed buckets (monitoring.span_duration_buckets()), added to
-- by fold_traces from each minute row it folds for the first time, never lowered. Retention
-- deletes old minute rows, so the counters can not be summed from them; kept here, one row
-- per operation, a scrape reads as many rows as there are operations whatever the traffic.
CREATE TABLE monitoring.trace_operation_totals (
    operation_id integer PRIMARY KEY,
    calls bigint NOT NULL,
    errors bigint NOT NULL,
    -- numeric: a busy service's nanoseconds would pass bigint's 292 years within months
    duration_ns_sum numeric NOT NULL,
    -- calls per bucket of span_duration_buckets() and over the last, not cumulative
    buckets bigint[] NOT NULL
);

COMMENT ON TABLE monitoring.trace_operation_totals IS
'Calls, errors, total duration and a fixed-bucket histogram per operation since install, as '
'of the last fold (monotonic: retention does not lower them)';

-- Calls from one operation to another (a parent span's operation -> its child's), per minute.
CREATE TABLE monitoring.trace_edge_minutes (
    minute timestamptz NOT NULL,
    parent_operation_id integer NOT NULL,
    child_operation_id integer NOT NULL,
    calls integer NOT NULL,
    errors integer NOT NULL,
    folded boolean NOT NULL DEFAULT FALSE
);

CREATE INDEX trace_edge_minutes_key ON monitoring.trace_edge_minutes (
    minute, parent_operation_id, child_operation_id
);

CREATE INDEX trace_edge_minutes_unfolded ON monitoring.trace_edge_minutes (
    minute, parent_operation_id, child_operation_id
) WHERE NOT folded;

-- Spans whose parent was not in their batch (another service's, or a later export): the
-- fold finds the parent and counts the edge, or drops the row after 10 minutes.
CREATE TABLE monitoring.trace_orphans (
    trace_id text NOT NULL,
    parent_span_id text NOT NULL,
    child_span_id text NOT NULL,
    child_operation_id integer NOT NULL,
    child_start timestamptz NOT NULL,
    child_error boolean NOT NULL,
    received_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE INDEX trace_orphans_received ON monitoring.trace_orphans (received_at);

SELECT monitoring._keep_rows_in_dump(t)
FROM pg_catalog.unnest(ARRAY[
    'monitoring.trace_operations',
    'monitoring.trace_operations_id_seq',
    'monitoring.trace_spans_default',
    'monitoring.trace_parts',
    'monitoring.trace_parts_id_seq',
    'monitoring.trace_operation_minutes',
    'monitoring.trace_operation_totals',
    'monitoring.trace_edge_minutes',
    'monitoring.trace_orphans'
]::regclass[]) AS t;
