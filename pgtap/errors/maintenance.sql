-- Maintenance: daily partitions created ahead (rows of their day moved out of DEFAULT), counts
-- exact before and after run_maintenance folds them, retention, and one idempotent entry point
-- with a report, whose steps fail one at a time (pg_cron: core/maintenance.sql).
BEGIN;
SELECT plan(44);

CREATE FUNCTION pg_temp.event(p_name text, p_user jsonb, p_at timestamptz)
RETURNS uuid
LANGUAGE sql
AS $$
    SELECT c.event_id
    FROM monitoring.capture_message(
        'maintenance event', p_service => 'maintenance', p_user => p_user,
        p_fingerprint => ARRAY[p_name], p_occurred_at => p_at
    ) AS c;
$$;

CREATE FUNCTION pg_temp.counts(p_name text)
RETURNS TABLE (
    times_seen integer, users_seen integer, first_seen timestamptz, last_seen timestamptz
)
LANGUAGE sql
AS $$
    SELECT i.times_seen::integer, i.users_seen::integer, i.first_seen, i.last_seen
    FROM monitoring.issues AS i
    WHERE i.service = 'maintenance' AND i.fingerprint = p_name;
$$;

CREATE FUNCTION pg_temp.partition_of(p_event_id uuid)
RETURNS text
LANGUAGE sql
AS $$
    SELECT e.tableoid::regclass::text
    FROM monitoring.error_events AS e
    WHERE e.event_id = p_event_id;
$$;

CREATE FUNCTION pg_temp.partitions()
RETURNS SETOF text
LANGUAGE sql
AS $$
    SELECT c.relname::text
    FROM pg_catalog.pg_inherits AS i
    INNER JOIN pg_catalog.pg_class AS c ON i.inhrelid = c.oid
    WHERE i.inhparent = 'monitoring.error_events'::regclass
    ORDER BY c.relname;
$$;

CREATE TEMPORARY TABLE days AS
SELECT (now() AT TIME ZONE 'UTC')::date AS today;

-- Partitions. A fresh install has only DEFAULT, and capture works without maintenance.
CREATE TEMPORARY TABLE placed AS
SELECT
    pg_temp.event('placed', NULL, now()) AS today_event,
    pg_temp.event('placed', NULL, now() - interval '3 days') AS old_event;

SELECT results_eq(
    'SELECT * FROM pg_temp.partitions()',
    $$VALUES ('error_events_default')$$,
    'before maintenance there is only the DEFAULT partition'
);
SELECT is(
    (SELECT pg_temp.partition_of(today_event) FROM placed),
    'monitoring.error_events_default',
    'an event captured before maintenance lands in DEFAULT'
);
SELECT is(monitoring.ensure_error_partitions(2), 3, 'ensure_error_partitions(2) creates 3 days');
SELECT results_eq(
    'SELECT * FROM pg_temp.partitions()',
    $$SELECT 'error_events_default'
      UNION ALL
      SELECT 'error_events_p' || to_char(d.today + i, 'YYYYMMDD')
      FROM days AS d CROSS JOIN generate_series(0, 2) AS i$$,
    'the daily partitions are today (UTC) and the 2 days after'
);
SELECT is(
    (SELECT pg_temp.partition_of(today_event) FROM placed),
    (SELECT 'monitoring.error_events_p' || to_char(d.today, 'YYYYMMDD') FROM days AS d),
    'the event of today moved out of DEFAULT into today''s partition'
);
SELECT is(
    (SELECT pg_temp.partition_of(old_event) FROM placed),
    'monitoring.error_events_default',
    'an event of a day without a partition stays in DEFAULT'
);
SELECT is(
    pg_temp.partition_of(pg_temp.event('placed', NULL, now())),
    (SELECT 'monitoring.error_events_p' || to_char(d.today, 'YYYYMMDD') FROM days AS d),
    'new events of today go to today''s partition'
);
SELECT is(
    (
        SELECT times_seen FROM pg_temp.counts('placed')
    ),
    3,
    'moving events between partitions loses and adds none'
);
SELECT is(monitoring.ensure_error_partitions(2), 0, 'ensure_error_partitions again creates none');

-- The report's keys of the errors, notifications and cache steps (traces, logs, metrics and
-- the Sentry ingest report theirs too: pgtap/traces/maintenance.sql,
-- pgtap/metrics/maintenance.sql, pgtap/sentry; the statements snapshot: pgtap/database).
CREATE FUNCTION pg_temp.errors_and_cache(p_report jsonb)
RETURNS jsonb
LANGUAGE sql
AS $$
    SELECT p_report - ARRAY(
        SELECT k.key
        FROM jsonb_object_keys(p_report) AS k (key)
        WHERE k.key IN (
            'milliseconds', 'traces_folded', 'edges_resolved', 'orphans_expired',
            'statements_snapshot'
        )
            OR k.key ~ '(span|trace|log|edge|operation|spans|logs|metric|sentry)_'
    );
$$;

CREATE TEMPORARY TABLE first_run AS
SELECT monitoring.run_maintenance() AS report;
SELECT is(
    (SELECT pg_temp.errors_and_cache(report) FROM first_run),
    '{"events_folded": 3, "ignores_expired": 0, "partitions_created": 5,
      "partitions_dropped": 0, "default_rows_deleted": 0, "issues_deleted": 0,
      "cache_expired_removed": 0, "cache_evicted": 0, "notifications_deleted": 0}'::jsonb,
    'run_maintenance reports what it did: folded 3 events, created days 3 to 7 ahead'
);
SELECT ok(
    (SELECT (report ->> 'milliseconds')::numeric >= 0 FROM first_run),
    'and how long it took'
);
SELECT is(
    (SELECT count(*)::integer FROM pg_temp.partitions()),
    9,
    'with errors.partition_days_ahead at 7: DEFAULT, today and 7 days ahead'
);

-- Counts: exact before and after the fold. Users are told apart by id, else username, else
-- email, else IP address.
SELECT pg_temp.event('counted', v.u::jsonb, now() - v.ago)
FROM (
    VALUES
    ('{"id": "1"}', interval '5 hours'),
    ('{"id": "1", "username": "ann"}', '4 hours'),
    ('{"username": "ann"}', '3 hours'),
    ('{"username": "ann", "email": "ann@example.com"}', '3 hours'),
    ('{"email": "bob@example.com", "ip_address": "10.0.0.1"}', '2 hours'),
    ('{"ip_address": "10.0.0.1"}', '2 hours'),
    ('{"id": 2}', '90 minutes'),
    ('{"username": "1"}', '1 hour'),
    ('{}', '1 hour'),
    (NULL, '30 minutes')
) AS v (u, ago);

SELECT results_eq(
    $$SELECT * FROM pg_temp.counts('counted')$$,
    $$VALUES (10, 6, now() - interval '5 hours', now() - interval '30 minutes')$$,
    'before a fold: times_seen, users_seen, first and last seen are exact '
    || '(users: id 1, ann, bob@, 10.0.0.1, id 2, username 1)'
);
SELECT results_eq(
    $$SELECT g.times_seen::integer, g.users_seen::integer FROM monitoring.error_issues AS g
      WHERE g.service = 'maintenance' AND g.fingerprint = 'counted'$$,
    $$VALUES (0, 0)$$,
    'capture never updated the issue row: the counts wait in error_issue_counts'
);
SELECT is(
    (SELECT (monitoring.run_maintenance() ->> 'events_folded')::integer),
    10,
    'run_maintenance folds them'
);
SELECT results_eq(
    $$SELECT * FROM pg_temp.counts('counted')$$,
    $$VALUES (10, 6, now() - interval '5 hours', now() - interval '30 minutes')$$,
    'after the fold the counts are the same'
);
SELECT results_eq(
    $$SELECT g.times_seen::integer, g.users_seen::integer, g.first_seen, g.last_seen
      FROM monitoring.error_issues AS g
      WHERE g.service = 'maintenance' AND g.fingerprint = 'counted'$$,
    $$VALUES (10, 6, now() - interval '5 hours', now() - interval '30 minutes')$$,
    'the fold wrote them into the issue row'
);
SELECT is_empty('SELECT FROM monitoring.error_issue_counts', 'the fold emptied error_issue_counts');

SELECT pg_temp.event('counted', '{"id": "1"}', now() - interval '6 hours');
SELECT pg_temp.event('counted', '{"id": "3"}', now() - interval '10 minutes');
SELECT pg_temp.event('counted', '{"id": "3"}', now() - interval '10 minutes');
SELECT results_eq(
    $$SELECT * FROM pg_temp.counts('counted')$$,
    $$VALUES (13, 7, now() - interval '6 hours', now() - interval '10 minutes')$$,
    'folded and pending counts add up: a known user is not counted again, a late event '
    || 'moves first_seen back'
);
SELECT is(
    monitoring.fold_error_counts(), 3::bigint, 'fold_error_counts returns how many it folded'
);
SELECT results_eq(
    $$SELECT * FROM pg_temp.counts('counted')$$,
    $$VALUES (13, 7, now() - interval '6 hours', now() - interval '10 minutes')$$,
    'a second fold keeps them exact'
);

SELECT is(
    (SELECT pg_temp.errors_and_cache(monitoring.run_maintenance())),
    '{"events_folded": 0, "ignores_expired": 0, "partitions_created": 0,
      "partitions_dropped": 0, "default_rows_deleted": 0, "issues_deleted": 0,
      "cache_expired_removed": 0, "cache_evicted": 0, "notifications_deleted": 0}'::jsonb,
    'run_maintenance run again has nothing to do'
);
SELECT results_eq(
    $$SELECT * FROM pg_temp.counts('counted')$$,
    $$VALUES (13, 7, now() - interval '6 hours', now() - interval '10 minutes')$$,
    'and changes no count'
);

-- Retention: errors.retention_days (90). Capture files an event older than that at the time
-- it is received (ingest.sql tests it); these are captured under a longer window, as if
-- the setting had been lowered since.
SELECT monitoring.set_setting('errors.retention_days', '365');
CREATE TEMPORARY TABLE aged AS
SELECT
    pg_temp.event('aged-100', '{"id": "old"}', now() - interval '100 days') AS in_default,
    pg_temp.event('aged-120', '{"id": "old"}', now() - interval '120 days') AS in_partition,
    pg_temp.event('aged-mixed', '{"id": "old"}', now() - interval '95 days') AS mixed_old,
    pg_temp.event('aged-mixed', '{"id": "new"}', now() - interval '10 days') AS mixed_new,
    pg_temp.event('aged-10', '{"id": "new"}', now() - interval '10 days') AS recent;
SELECT monitoring.reset_setting('errors.retention_days');
-- a daily partition 120 days back, as if maintenance had made it then
SELECT monitoring._create_event_partition(d.today - 120) FROM days AS d;
SELECT is(
    (SELECT pg_temp.partition_of(in_partition) FROM aged),
    (SELECT 'monitoring.error_events_p' || to_char(d.today - 120, 'YYYYMMDD') FROM days AS d),
    'an old event sits in its own day''s partition'
);

SELECT is(
    (SELECT pg_temp.errors_and_cache(monitoring.run_maintenance())),
    '{"events_folded": 5, "ignores_expired": 0, "partitions_created": 0,
      "partitions_dropped": 1, "default_rows_deleted": 2, "issues_deleted": 2,
      "cache_expired_removed": 0, "cache_evicted": 0, "notifications_deleted": 0}'::jsonb,
    'run_maintenance drops the old partition, deletes old DEFAULT rows and old issues'
);
SELECT is(
    to_regclass(
        (SELECT 'monitoring.error_events_p' || to_char(d.today - 120, 'YYYYMMDD') FROM days AS d)
    ),
    NULL,
    'the partition older than the retention window is dropped'
);
SELECT results_eq(
    $$SELECT e.id FROM monitoring.errors AS e, aged AS a
      WHERE e.id IN (a.in_default, a.in_partition, a.mixed_old, a.mixed_new, a.recent)
      ORDER BY e.id = a.recent, e.id$$,
    $$SELECT mixed_new FROM aged UNION ALL SELECT recent FROM aged$$,
    'events older than the window are gone, in DEFAULT or in a partition; newer ones stay'
);
SELECT set_eq(
    $$SELECT fingerprint FROM monitoring.issues WHERE service = 'maintenance'
      AND fingerprint LIKE 'aged-%'$$,
    $$VALUES ('aged-mixed'), ('aged-10')$$,
    'issues not seen within the window are deleted; an issue with a newer event stays'
);
SELECT is_empty(
    $$SELECT FROM monitoring.issue_activity AS a
      WHERE NOT EXISTS (SELECT FROM monitoring.error_issues AS g WHERE g.id = a.issue_id)$$,
    'the history of deleted issues goes with them'
);
SELECT is_empty(
    $$SELECT FROM monitoring.error_issue_users AS u
      WHERE NOT EXISTS (SELECT FROM monitoring.error_issues AS g WHERE g.id = u.issue_id)$$,
    'the users counted for deleted issues go with them'
);
SELECT results_eq(
    $$SELECT * FROM pg_temp.counts('aged-mixed')$$,
    $$VALUES (2, 2, now() - interval '95 days', now() - interval '10 days')$$,
    'retention does not rewrite the counts of an issue that stays'
);

SELECT monitoring.set_setting('errors.retention_days', '5');
SELECT is(
    (SELECT (monitoring.apply_error_retention() ->> 'issues_deleted')::integer),
    2,
    'a shorter errors.retention_days deletes more'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors AS e
        WHERE e.fingerprint LIKE 'aged-%'
    ),
    0,
    'no aged event is left'
);
SELECT pg_temp.event('pending', NULL, now() - interval '3 days');
SELECT monitoring.set_setting('errors.retention_days', '1');
SELECT is(
    (SELECT (monitoring.apply_error_retention() ->> 'issues_deleted')::integer),
    0,
    'an issue with counts not folded yet is not deleted before run_maintenance folds them'
);
SELECT monitoring.reset_setting('errors.retention_days');

-- An ignore threshold met by events that each counted just short of it (concurrent captures
-- see only committed events) is caught by the next run. The buffer rows stand for them.
CREATE TEMPORARY TABLE short_of AS
SELECT c.issue_id FROM monitoring.capture_message('threshold', p_service => 'short') AS c;
SELECT monitoring.ignore_issue(s.issue_id, p_until_events => 2) FROM short_of AS s;
INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at)
SELECT
    s.issue_id,
    now() AS occurred_at
FROM short_of AS s CROSS JOIN generate_series(1, 2);
SELECT is(
    (SELECT (monitoring.run_maintenance() ->> 'ignores_expired')::int),
    1,
    'run_maintenance wakes an ignored issue whose event threshold was crossed'
);
SELECT is(
    (
        SELECT i.status || '/' || i.substatus FROM monitoring.issues AS i
        WHERE i.id = (SELECT s.issue_id FROM short_of AS s)
    ),
    'unresolved/escalating',
    'and it is escalating'
);
SELECT is(
    (
        SELECT h.data ->> 'reason' FROM monitoring.issue_history AS h
        WHERE h.issue_id = (SELECT s.issue_id FROM short_of AS s) AND h.action = 'escalating'
    ),
    'event count reached',
    'with the reason in its history'
);

-- What a writer sends into an indexed column is cut to fit the index, with the md5 of the
-- whole: a 4 kB user id once made every later fold fail on error_issue_users' primary key.
CREATE TEMPORARY TABLE long_values AS
SELECT
    (monitoring.capture_error(
        'LongUser', 'one', p_user => jsonb_build_object('id', repeat('u', 4160) || 'a'),
        p_service => 'long-values'
    )).issue_id AS first_user,
    (monitoring.capture_error(
        'LongUser', 'one', p_user => jsonb_build_object('id', repeat('u', 4160) || 'b'),
        p_service => 'long-values'
    )).issue_id AS second_user,
    (monitoring.capture_error(
        'LongIds', 'three', p_trace_id => repeat('t', 3000), p_release => repeat('r', 3000),
        p_environment => repeat('e', 3000), p_service => repeat('s', 3000)
    )).issue_id AS long_ids;
SELECT ok(
    NOT (monitoring.run_maintenance() ? 'failed'),
    'maintenance folds a 4 kB user id and 3 kB trace id, release, environment and service'
);
SELECT is(
    (
        SELECT
            array_agg(
                length(u.user_key) <= 200 AND u.user_key ~ E'\\.\\.\\. \\[cut; md5 [0-9a-f]{32}\\]$'
            )
        FROM monitoring.error_issue_users AS u, long_values AS l
        WHERE u.issue_id = l.first_user
    ),
    ARRAY[TRUE, TRUE],
    'two long user ids that share their start are two users, each cut with its md5'
);
SELECT is(
    (
        SELECT ARRAY[length(g.service), length(g.environment), length(g.first_release)]
        FROM monitoring.error_issues AS g, long_values AS l
        WHERE g.id = l.long_ids
    ),
    ARRAY[200, 200, 200],
    'service, environment and release are cut to 200 characters'
);
SELECT is(
    (
        SELECT length(e.trace_id) FROM monitoring.error_events AS e, long_values AS l
        WHERE e.issue_id = l.long_ids
    ),
    128,
    'and a trace id to 128'
);

-- One failing step does not stop the others: a count row no fold can store (as 0.2.0 could
-- write: 4,800 characters that do not compress) fails the fold, which keeps its rows for the
-- next run, while partitions, retention and the cache are still maintained.
INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at, user_key)
SELECT
    l.first_user AS issue_id,
    now() AS occurred_at,
    (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 150) AS i) AS user_key
FROM long_values AS l;
INSERT INTO monitoring.cache_entries (key, value, expires_at)
VALUES ('maintenance:expired', '1', now() - interval '1 minute');
-- its WARNING is expected here
SET LOCAL client_min_messages = error;
CREATE TEMPORARY TABLE failing_run AS SELECT monitoring.run_maintenance() AS report;
RESET client_min_messages;
SELECT ok(
    (SELECT r.report -> 'failed' ->> 'fold' LIKE '54000: index row size%' FROM failing_run AS r),
    'a failing fold is reported under failed, with its SQLSTATE and message'
);
SELECT is(
    (SELECT count(*) FROM monitoring.error_issue_counts),
    1::bigint,
    'and its rows stay buffered for the next run'
);
SELECT is(
    (
        SELECT
            ARRAY[
                r.report ? 'partitions_created', r.report ? 'issues_deleted',
                (r.report ->> 'cache_expired_removed')::int = 1
            ]
        FROM failing_run AS r
    ),
    ARRAY[TRUE, TRUE, TRUE],
    'while the other steps still ran'
);
DELETE FROM monitoring.error_issue_counts;

SELECT * FROM finish();
ROLLBACK;
