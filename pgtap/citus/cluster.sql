-- On a Citus cluster after monitoring.distribute() (make test-citus): a capture and an OTLP
-- span request through the coordinator, read back through the design's views, with a trace
-- by id and an issue's events each read from one shard (a router plan).
BEGIN;
SELECT plan(12);

-- The tasks of a query's distributed plan (1: a router plan, one shard). Citus warns that a
-- temporary function stays on the coordinator, which is where it runs.
SET LOCAL client_min_messages = error;
CREATE FUNCTION pg_temp.task_count(p_query text)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_line text;
BEGIN
    FOR v_line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || p_query LOOP
        IF v_line ~ 'Task Count: \d+' THEN
            RETURN substring(v_line FROM 'Task Count: (\d+)')::integer;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
RESET client_min_messages;

SELECT results_eq(
    $$
        SELECT d.logicalrelid::text, d.partmethod::text
        FROM pg_dist_partition AS d
        WHERE d.logicalrelid IN (
            'monitoring.error_events'::regclass, 'monitoring.trace_spans'::regclass,
            'monitoring.error_issues'::regclass
        )
        ORDER BY 1
    $$,
    $$ VALUES ('monitoring.error_events', 'h'), ('monitoring.error_issues', 'n'),
        ('monitoring.trace_spans', 'h') $$,
    'events and spans are distributed (hash), issues a reference table'
);

CREATE TEMPORARY TABLE captured ON COMMIT DROP AS
SELECT
    c.event_id,
    c.issue_id
FROM monitoring.capture_error(
    'ValueError', 'card 4242 declined', p_service => 'shop', p_release => '1.2.0',
    p_trace_id => 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', p_span_id => 'd000000000000002'
) AS c;

INSERT INTO captured
SELECT
    c.event_id,
    c.issue_id
FROM monitoring.capture_error(
    'ValueError', 'card 4242 declined', p_service => 'shop', p_release => '1.2.0'
) AS c;

SELECT is(
    (SELECT count(DISTINCT issue_id)::integer FROM captured), 1,
    'two captures of one error make one issue'
);

SELECT results_eq(
    $$
        SELECT i.title, i.times_seen, i.status, i.first_release
        FROM monitoring.issues AS i
        WHERE i.id = (SELECT max(c.issue_id) FROM captured AS c)
    $$,
    $$ VALUES ('ValueError: card 4242 declined', 2::bigint, 'unresolved', '1.2.0') $$,
    'monitoring.issues counts both events before any fold'
);

SELECT results_eq(
    $$
        SELECT e.message, e.service, e.trace_id
        FROM monitoring.errors AS e
        WHERE e.id = (SELECT c.event_id FROM captured AS c LIMIT 1)
    $$,
    $$ VALUES ('card 4242 declined', 'shop', 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1') $$,
    'monitoring.errors reads the event back'
);

SELECT is(
    monitoring.record_spans(pgtap_helpers.spans_request('shop', jsonb_build_array(
        pgtap_helpers.span(
            'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', 'd000000000000001', NULL, 'POST /pay', 0, 120
        ),
        pgtap_helpers.span(
            'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', 'd000000000000002', 'd000000000000001',
            'SELECT card', 10, 50, 3, 2
        )
    ))) ->> 'stored',
    '2',
    'record_spans stores a request''s spans through the coordinator'
);

SELECT results_eq(
    $$
        SELECT s.span_id, s.parent_span_id, s.operation, s.service
        FROM monitoring.spans AS s
        WHERE s.trace_id = 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
        ORDER BY s.start_time
    $$,
    $$ VALUES ('d000000000000001', NULL, 'POST /pay', 'shop'),
        ('d000000000000002', 'd000000000000001', 'SELECT card', 'shop') $$,
    'a trace''s spans by id'
);

SELECT results_eq(
    $$
        SELECT t.span_count, t.error_count
        FROM monitoring.traces AS t
        WHERE t.trace_id = 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1'
    $$,
    $$ VALUES (2::bigint, 1::bigint) $$,
    'monitoring.traces sums the trace'
);

-- a scrape reads the issues (a reference table) and the coordinator's tables
SELECT matches(
    monitoring.prometheus_metrics(),
    E'# TYPE pg_monitoring_issues gauge\npg_monitoring_issues\\{',
    'prometheus_metrics() answers on the cluster'
);

SELECT is(
    pg_temp.task_count(
        $$ SELECT * FROM monitoring.spans WHERE trace_id = 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1' $$
    ),
    1,
    'a trace by id reads one shard (router plan)'
);

SELECT is(
    pg_temp.task_count(
        $$ SELECT * FROM monitoring.traces WHERE trace_id = 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1' $$
    ),
    1,
    'monitoring.traces by id reads one shard (router plan)'
);

SELECT is(
    pg_temp.task_count(format(
        'SELECT * FROM monitoring.error_events WHERE issue_id = %s ORDER BY occurred_at DESC '
        'LIMIT 10',
        (SELECT max(c.issue_id) FROM captured AS c)
    )),
    1,
    'an issue''s latest events read one shard (router plan)'
);

SELECT is(
    pg_temp.task_count(format(
        'INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at) VALUES (%s, now())',
        (SELECT max(c.issue_id) FROM captured AS c)
    )),
    1,
    'a capture''s count goes to one shard'
);

SELECT * FROM finish();
ROLLBACK;
