-- On a Citus cluster after monitoring.distribute(): an issue's life where Citus refused the
-- single-server statements (triage's UPDATEs, ignores ending, retention), an alert fired from
-- a capture, and every ingest in one transaction.
BEGIN;
SELECT plan(13);

-- Several ingest calls in one transaction, as a client passing its own connection makes them
-- (nothing else before them: an EXPLAIN earlier in the transaction, after writes to
-- reference tables, makes Citus refuse the next write to one; docs/citus-notes.md).
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.capture_error(
            'ValueError', 'card 4242 declined', p_service => 'shop', p_release => '2.0',
            p_occurred_at => now() - interval '1 hour',
            p_trace_id => 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', p_span_id => 'b000000000000002'
        )
    ),
    1,
    'a capture with a release and a trace'
);
SELECT is(
    monitoring.record_spans(pgtap_helpers.spans_request('shop', jsonb_build_array(
        pgtap_helpers.span(
            'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 'b000000000000001', NULL, 'POST /pay', 0, 120
        ),
        pgtap_helpers.span(
            'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 'b000000000000002', 'b000000000000001',
            'SELECT card', 10, 50, 3, 2
        )
    ))) ->> 'stored',
    '2',
    'then spans'
);
SELECT is(
    monitoring.record_logs(pgtap_helpers.logs_request('worker', jsonb_build_array(
        jsonb_build_object(
            'timeUnixNano', pgtap_helpers.nanos(pgtap_helpers.base()),
            'severityNumber', 17,
            'body', jsonb_build_object('stringValue', 'payment failed'),
            'traceId', 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1'
        )
    ))) ->> 'stored',
    '1',
    'then logs of a new resource (a write to a reference table)'
);
SELECT is(
    monitoring.record_metrics(pgtap_helpers.metrics_request('worker', jsonb_build_array(
        pgtap_helpers.metric('queue_depth', 'gauge', jsonb_build_array(
            pgtap_helpers.point(0, '{"asInt": "3"}')
        ))
    ))) ->> 'stored',
    '1',
    'then a metric, all in one transaction'
);

SELECT results_eq(
    $$
        SELECT t.depth, t.span_id, t.operation, jsonb_array_length(t.errors)
        FROM monitoring.trace_tree('a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1') AS t
    $$,
    $$ VALUES (0, 'b000000000000001', 'POST /pay', NULL::integer),
        (1, 'b000000000000002', 'SELECT card', 1) $$,
    'trace_tree: the spans in tree order, the error in its span'
);

-- Triage, resolved in the next release: the newest release seen (subqueries, not a join of
-- issues, releases and events) and _transition's UPDATE of a reference table.
SELECT 1 FROM monitoring.capture_error(
    'ValueError', 'card 4242 declined', p_service => 'shop', p_release => '2.1'
);
SELECT results_eq(
    $$
        SELECT r.status, r.resolution, r.resolved_in_release
        FROM monitoring.resolve_issue(
            monitoring.issue_id(
                (SELECT i.fingerprint FROM monitoring.issues AS i WHERE i.service = 'shop')
            ),
            p_in_next_release => TRUE
        ) AS r
    $$,
    $$ VALUES ('resolved', 'in_next_release', '2.1') $$,
    'resolve_issue in the next release'
);

-- An alert from a capture: the fact rule fires from issue_activity on the coordinator.
SELECT monitoring.add_channel('hook', 'webhook', p_secrets => '{"url": "https://h.example/a"}');
SELECT 1 FROM monitoring.capture_message(
    'disk full', 'fatal', p_service => 'alerts', p_fingerprint => ARRAY['disk']
);
SELECT results_eq(
    $$ SELECT n.channel, n.condition FROM monitoring.notifications AS n $$,
    $$ VALUES ('hook', 'new_issue') $$,
    'a new issue queues its alert'
);

-- An ignore until more events, met by counts not folded yet: expire_ignores ends it, and
-- the escalation alerts (a rule that records its state per issue).
SELECT monitoring.add_alert_rule('escalating', p_channel => 'hook');
SELECT monitoring.ignore_issue(monitoring.issue_id('disk'), p_until_events => 3);
INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at)
SELECT
    monitoring.issue_id('disk') AS issue_id,
    now() AS occurred_at
FROM generate_series(1, 3);
SELECT is(
    monitoring.expire_ignores(), 1::bigint, 'expire_ignores ends an ignore whose count is met'
);
SELECT is(
    (
        SELECT i.status || '/' || i.substatus FROM monitoring.issues AS i
        WHERE i.fingerprint = 'disk'
    ),
    'unresolved/escalating',
    'and the issue escalates'
);
SELECT results_eq(
    $$ SELECT n.condition FROM monitoring.notifications AS n ORDER BY n.id $$,
    $$ VALUES ('new_issue'), ('escalating') $$,
    'which alerts'
);

-- Retention of an issue last seen long ago whose events are gone: its activity and alert
-- state go with it, as the foreign keys distribute() dropped cascaded.
SELECT monitoring.issue_id('disk') AS disk \gset
SELECT monitoring.fold_error_counts();
SELECT is(
    ARRAY[
        (
            SELECT count(*) FROM monitoring.issue_activity AS a
            WHERE a.issue_id = :disk
        ) > 0,
        (
            SELECT count(*) FROM monitoring.alert_rule_state AS s
            WHERE s.issue_id = :disk
        ) > 0
    ],
    ARRAY[TRUE, TRUE],
    'the issue has activity and alert state'
);
DELETE FROM monitoring.error_events
WHERE issue_id = :disk;
UPDATE monitoring.error_issues SET last_seen = now() - interval '1 year'
WHERE id = :disk;
SELECT is(
    monitoring.apply_error_retention() -> 'issues_deleted',
    '1'::jsonb,
    'retention deletes the old issue'
);
SELECT is(
    ARRAY[
        (
            SELECT count(*) FROM monitoring.issue_activity AS a
            WHERE a.issue_id = :disk
        ),
        (
            SELECT count(*) FROM monitoring.alert_rule_state AS s
            WHERE s.issue_id = :disk
        )
    ],
    ARRAY[0, 0]::bigint[],
    'and its activity and alert state'
);

SELECT * FROM finish();
ROLLBACK;
