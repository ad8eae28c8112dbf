-- Trace maintenance: span partitions created ahead (spans of their day moved out of DEFAULT),
-- retention dropping old partitions and the summaries of the same age, orphan edges waited
-- for ten minutes at most.
BEGIN;
SELECT plan(11);

-- a span before any partition exists lands in DEFAULT
SELECT monitoring.record_spans(pgtap_helpers.spans_request('m', jsonb_build_array(
    pgtap_helpers.span('e' || repeat('0', 31), 'e' || repeat('0', 15), NULL, 'early', 0, 1)
)));
SELECT is(
    (
        SELECT tableoid::regclass::text FROM monitoring.trace_spans
        WHERE span_id = 'e' || repeat('0', 15)
    ),
    'monitoring.trace_spans_default', 'a span of a day without a partition lands in DEFAULT'
);

SELECT is(
    monitoring.ensure_trace_partitions(2), 3, 'partitions from today to two days ahead'
);
SELECT ok(
    (
        SELECT tableoid::regclass::text FROM monitoring.trace_spans
        WHERE span_id = 'e' || repeat('0', 15)
    )
    ~ '^monitoring\.trace_spans_p\d{8}$',
    'the span moved into its day''s partition'
);
SELECT is(monitoring.ensure_trace_partitions(2), 0, 'a second run creates nothing');

-- 40 days ago: a partition of that day with a span, and its summaries (written as ingest
-- would have, before the retention window moved past them)
SELECT monitoring._create_daily_partition(
    'monitoring.trace_spans', 'start_time', ((now() - interval '40 days') AT TIME ZONE 'UTC')::date
);
INSERT INTO monitoring.trace_spans (
    start_time, duration_ns, operation_id, resource_id, trace_id, span_id
)
SELECT
    now() - interval '40 days' AS start_time,
    1000 AS duration_ns,
    s.operation_id,
    s.resource_id,
    'f' || repeat('0', 31) AS trace_id,
    'f' || repeat('0', 15) AS span_id
FROM monitoring.trace_spans AS s
ORDER BY s.span_id
LIMIT 1;
INSERT INTO monitoring.trace_parts (
    trace_id, first_start, last_start, last_end, span_count, error_count
)
VALUES (
    'f' || repeat('0', 31),
    now() - interval '40 days',
    now() - interval '40 days',
    now() - interval '40 days',
    1,
    0
);
INSERT INTO monitoring.trace_operation_minutes (
    minute, operation_id, calls, errors, duration_ns_sum, histogram
)
SELECT
    date_trunc('minute', now() - interval '40 days') AS minute,
    min(o.id) AS operation_id,
    1 AS calls,
    0 AS errors,
    1000 AS duration_ns_sum,
    '{"0": 1}'::jsonb AS histogram
FROM monitoring.trace_operations AS o;

SELECT is(
    monitoring.apply_trace_retention() - 'default_spans_deleted',
    jsonb_build_object(
        'span_partitions_dropped', 1, 'trace_rows_deleted', 1, 'operation_minutes_deleted', 1
    ),
    'retention drops the old partition and the summaries of its age'
);
SELECT ok(
    NOT EXISTS (
        SELECT FROM pgtap_helpers.partitions('monitoring.trace_spans') AS p
        WHERE
            p
            = 'trace_spans_p'
            || to_char((now() - interval '40 days') AT TIME ZONE 'UTC', 'YYYYMMDD')
    ),
    'the partition is gone'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.traces
        WHERE trace_id = 'e' || repeat('0', 31)
    ), 1,
    'recent traces stay'
);

-- an orphan whose parent never comes is dropped after ten minutes
INSERT INTO monitoring.trace_orphans (
    trace_id, parent_span_id, child_span_id, child_operation_id, child_start, child_error,
    received_at
)
SELECT
    'e' || repeat('0', 31) AS trace_id,
    'dddddddddddddddd' AS parent_span_id,
    'eeeeeeeeeeeeeeee' AS child_span_id,
    min(o.id) AS child_operation_id,
    now() AS child_start,
    FALSE AS child_error,
    now() - interval '11 minutes' AS received_at
FROM monitoring.trace_operations AS o;
SELECT
    is(
        (monitoring.fold_traces() ->> 'orphans_expired')::integer,
        1,
        'an orphan is not waited for longer than ten minutes'
    );

-- a span whose parent is never sent, from a sender that does not mark remote parents: once
-- its orphan expires, it stands for the trace's root
SELECT monitoring.record_spans(pgtap_helpers.spans_request('worker', jsonb_build_array(
    pgtap_helpers.span(
        'a1' || repeat('0', 30), 'a2' || repeat('0', 14), 'a3' || repeat('0', 14),
        'process job', 0, 7, 5, 2
    )
)));
SELECT is(
    (
        SELECT root_service FROM monitoring.traces
        WHERE trace_id = 'a1' || repeat('0', 30)
    ),
    NULL, 'a span whose parent is not stored is not the root at once'
);
UPDATE monitoring.trace_orphans SET received_at = now() - interval '11 minutes'
WHERE trace_id = 'a1' || repeat('0', 30);
SELECT monitoring.fold_traces();
SELECT is(
    (
        SELECT (root_service, root_operation, status_code, root_remote, span_count)
        FROM monitoring.traces
        WHERE trace_id = 'a1' || repeat('0', 30)
    ),
    ('worker'::text, 'process job'::text, 'error'::text, TRUE, 1::bigint),
    'when its parent never comes, it stands for the root'
);

SELECT ok(
    monitoring.run_maintenance()
    ?& ARRAY[
        'span_partitions_created',
        'span_partitions_dropped',
        'traces_folded',
        'log_partitions_created'
    ],
    'run_maintenance runs the trace and log steps'
);

SELECT * FROM finish();
ROLLBACK;
