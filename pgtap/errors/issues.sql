-- The issue lifecycle as Sentry users know it: resolve (now, in a release, in the next release)
-- and regress; ignore (forever, until a time, N more events or N more users) and escalate;
-- assign, unassign, reopen; every change in monitoring.issue_history with its actor.
BEGIN;
SELECT plan(62);

-- An event of the issue with explicit fingerprint p_name in service lifecycle.
CREATE FUNCTION pg_temp.event(
    p_name text,
    p_release text DEFAULT NULL,
    p_user text DEFAULT NULL,
    p_at timestamptz DEFAULT now(),
    p_environment text DEFAULT 'production'
)
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT c.issue_id
    FROM monitoring.capture_message(
        'lifecycle event', 'error',
        p_service => 'lifecycle',
        p_environment => p_environment,
        p_release => p_release,
        p_user => jsonb_strip_nulls(jsonb_build_object('id', p_user)),
        p_fingerprint => ARRAY[p_name],
        p_occurred_at => p_at
    ) AS c;
$$;

CREATE FUNCTION pg_temp.state(p_name text)
RETURNS text
LANGUAGE sql
AS $$
    SELECT i.status || coalesce('/' || i.substatus, '')
    FROM monitoring.issues AS i
    WHERE i.service = 'lifecycle' AND i.environment = 'production' AND i.fingerprint = p_name;
$$;

-- issue_id: fingerprint to issue.
SELECT pg_temp.event('lc-now', p_at => now() - interval '10 days');
SELECT pg_temp.event('lc-twice', p_environment => 'production');
SELECT pg_temp.event('lc-twice', p_environment => 'staging');

SELECT is(
    monitoring.issue_id('lc-now'),
    (
        SELECT i.id FROM monitoring.issues AS i
        WHERE i.fingerprint = 'lc-now'
    ),
    'issue_id finds the issue of a fingerprint'
);
SELECT throws_ok(
    $$SELECT monitoring.issue_id('lc-none')$$,
    'P0002',
    'no issue with fingerprint ''lc-none''',
    'issue_id of an unknown fingerprint is no_data_found'
);
SELECT throws_ok(
    $$SELECT monitoring.issue_id('lc-now', 'staging', 'lifecycle')$$,
    'P0002',
    'no issue with fingerprint ''lc-now'' in environment ''staging'' of service ''lifecycle''',
    'issue_id says where it looked'
);
SELECT throws_ok(
    $$SELECT monitoring.issue_id('lc-twice')$$,
    '22023',
    NULL,
    'a fingerprint in two environments is ambiguous: invalid_parameter_value'
);
SELECT throws_like(
    $$SELECT monitoring.issue_id('lc-twice')$$,
    'fingerprint ''lc-twice'' names 2 issues (service/environment: %lifecycle/staging%)',
    'the ambiguity error lists where the issues are'
);
SELECT is(
    monitoring.issue_id('lc-twice', 'staging'),
    (
        SELECT i.id FROM monitoring.issues AS i
        WHERE i.fingerprint = 'lc-twice' AND i.environment = 'staging'
    ),
    'issue_id narrowed by environment picks one'
);

-- Status and sub-status.
SELECT is(
    pg_temp.state('lc-now'), 'unresolved/ongoing', 'an issue first seen 10 days ago is ongoing'
);
SELECT is(pg_temp.state('lc-twice'), 'unresolved/new', 'an issue first seen today is new');

-- Resolve now: the next event regresses it.
SELECT results_eq(
    $$SELECT status, resolution, resolved_by, resolved_at, substatus
      FROM monitoring.resolve_issue(monitoring.issue_id('lc-now', 'production'),
          p_actor => 'ann@example.com')$$,
    $$VALUES ('resolved', 'now', 'ann@example.com', now(), NULL::text)$$,
    'resolve_issue returns the issue resolved now, by its actor'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors AS e
        WHERE e.fingerprint = 'lc-now' AND e.resolved_at = now()
    ),
    1,
    'the events of a resolved issue show when it was resolved'
);
SELECT pg_temp.event('lc-now');
SELECT is(pg_temp.state('lc-now'), 'unresolved/regressed', 'an event after resolving regresses');
SELECT results_eq(
    $$SELECT resolved_at, resolved_by, resolution FROM monitoring.issues
      WHERE fingerprint = 'lc-now'$$,
    $$VALUES (NULL::timestamptz, NULL::text, NULL::text)$$,
    'a regression clears the resolution'
);
SELECT pg_temp.event('lc-now');
SELECT results_eq(
    $$SELECT h.action, h.actor FROM monitoring.issue_history AS h
      WHERE h.issue_id = monitoring.issue_id('lc-now') ORDER BY h.id$$,
    $$VALUES ('first_seen', NULL::text), ('resolved', 'ann@example.com'), ('regression', NULL)$$,
    'first_seen, resolved by its actor, one regression by no actor (the later event adds none)'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors AS e
        WHERE e.fingerprint = 'lc-now' AND e.resolved_at IS NULL
    ),
    3,
    'once regressed its events show no resolution'
);
SELECT is(
    (
        SELECT h.data ->> 'event_id' FROM monitoring.issue_history AS h
        WHERE h.issue_id = monitoring.issue_id('lc-now') AND h.action = 'regression'
    ),
    (
        SELECT e.id::text FROM monitoring.errors AS e
        WHERE e.fingerprint = 'lc-now'
        ORDER BY e.occurred_at, e.received_at LIMIT 1 OFFSET 1
    ),
    'the regression names the event that caused it'
);
SELECT is(
    (
        SELECT resolved_by FROM monitoring.resolve_issue(monitoring.issue_id('lc-now'))
    ),
    session_user::text,
    'without p_actor the resolution is by the session user'
);

-- Resolve in release X: older releases do not regress it, X and newer ones do.
SELECT pg_temp.event('lc-release', '1.0', p_at => now() - interval '3 days');
SELECT pg_temp.event('lc-release', '1.1', p_at => now() - interval '2 days');
SELECT results_eq(
    $$SELECT status, resolution, resolved_in_release
      FROM monitoring.resolve_issue(monitoring.issue_id('lc-release'), p_in_release => '1.2')$$,
    $$VALUES ('resolved', 'in_release', '1.2')$$,
    'resolve_issue in a release not seen yet'
);
SELECT pg_temp.event('lc-release', '1.1', p_at => now() - interval '1 hour');
SELECT pg_temp.event('lc-release', '1.0', p_at => now() - interval '1 hour');
SELECT is(pg_temp.state('lc-release'), 'resolved', 'events of older releases do not regress it');
SELECT pg_temp.event('lc-release', '1.2', p_at => now() - interval '30 minutes');
SELECT is(pg_temp.state('lc-release'), 'unresolved/regressed', 'an event of that release does');
SELECT monitoring.resolve_issue(monitoring.issue_id('lc-release'), p_in_release => '1.2');
SELECT pg_temp.event('lc-release', '1.1');
SELECT is(
    pg_temp.state('lc-release'), 'resolved', 'once the release is seen, older ones still do not'
);
SELECT pg_temp.event('lc-release', '1.3');
SELECT is(pg_temp.state('lc-release'), 'unresolved/regressed', 'a newer release regresses it');
SELECT monitoring.resolve_issue(monitoring.issue_id('lc-release'), p_in_release => '1.3');
SELECT pg_temp.event('lc-release');
SELECT is(
    pg_temp.state('lc-release'),
    'unresolved/regressed',
    'an event that names no release can not be shown to be older: it regresses'
);

-- A resolving release never seen (the one being deployed, or a typo) hides no regression:
-- it counts as first seen when the issue was resolved.
SELECT pg_temp.event('lc-unseen', '4.0', p_at => now() - interval '2 days');
SELECT monitoring.resolve_issue(monitoring.issue_id('lc-unseen'), p_in_release => '4.2');
SELECT pg_temp.event('lc-unseen', '4.0');
SELECT is(
    pg_temp.state('lc-unseen'),
    'resolved',
    'a release seen before the resolution does not regress it'
);
SELECT pg_temp.event('lc-unseen', '4.1');
SELECT is(
    pg_temp.state('lc-unseen'),
    'unresolved/regressed',
    'a release first seen since, while the resolving one never was, regresses it'
);

-- Resolve in the next release: the one after the newest release the issue has seen.
SELECT pg_temp.event('lc-next', '2.0', p_at => now() - interval '3 days');
SELECT pg_temp.event('lc-next', '2.1', p_at => now() - interval '2 days');
-- a server still running the older release reports last
SELECT pg_temp.event('lc-next', '2.0', p_at => now() - interval '1 day');
SELECT results_eq(
    $$SELECT status, resolution, resolved_in_release
      FROM monitoring.resolve_issue(monitoring.issue_id('lc-next'), p_in_next_release => TRUE)$$,
    $$VALUES ('resolved', 'in_next_release', '2.1')$$,
    'resolve_issue in the next release remembers the newest release seen, not the last reporter'
);
SELECT pg_temp.event('lc-next', '2.1', p_at => now() - interval '1 hour');
SELECT pg_temp.event('lc-next', '2.0', p_at => now() - interval '1 hour');
SELECT is(
    pg_temp.state('lc-next'),
    'resolved',
    'events of the release it was resolved in, or older, do not regress it'
);
SELECT pg_temp.event('lc-next', '2.2', p_at => now() - interval '30 minutes');
SELECT is(pg_temp.state('lc-next'), 'unresolved/regressed', 'an event of the next release does');
SELECT results_eq(
    $$SELECT h.data FROM monitoring.issue_history AS h
      WHERE h.issue_id = monitoring.issue_id('lc-next') AND h.action IN ('resolved', 'regression')
      ORDER BY h.id$$,
    $$VALUES ('{"resolution": "in_next_release", "release": "2.1"}'::jsonb),
        (jsonb_build_object('release', '2.2', 'event_id', (
            SELECT e.id FROM monitoring.errors AS e WHERE e.release = '2.2'
        )))$$,
    'the history says how it was resolved and which release regressed it'
);
SELECT throws_ok(
    $$SELECT monitoring.resolve_issue(monitoring.issue_id('lc-twice', 'production'),
        p_in_next_release => TRUE)$$,
    '22023',
    NULL,
    'in the next release needs an event with a release'
);
SELECT throws_ok(
    $$SELECT monitoring.resolve_issue(monitoring.issue_id('lc-next'), '3.0', TRUE)$$,
    '22023',
    'pass p_in_release or p_in_next_release, not both',
    'a release and the next release at once is refused'
);

-- Ignore forever.
SELECT pg_temp.event('lc-forever');
SELECT results_eq(
    $$SELECT status, ignored_by, ignored_at, ignore_until, ignore_until_times_seen
      FROM monitoring.ignore_issue(monitoring.issue_id('lc-forever'), p_actor => 'bob')$$,
    $$VALUES ('ignored', 'bob', now(), NULL::timestamptz, NULL::bigint)$$,
    'ignore_issue without a condition ignores forever'
);
SELECT pg_temp.event('lc-forever', p_user => 'u' || i) FROM generate_series(1, 20) AS i;
SELECT results_eq(
    $$SELECT status, times_seen::integer FROM monitoring.issues WHERE fingerprint = 'lc-forever'$$,
    $$VALUES ('ignored', 21)$$,
    'an issue ignored forever stays ignored, and its events are still counted'
);

-- Ignore until N more events: wakes as escalating exactly at the threshold.
SELECT pg_temp.event('lc-events') FROM generate_series(1, 2);
SELECT is(
    (
        SELECT ignore_until_times_seen::integer
        FROM monitoring.ignore_issue(monitoring.issue_id('lc-events'), p_until_events => 3)
    ),
    5,
    'ignore until 3 more events, after 2, waits for the 5th'
);
SELECT pg_temp.event('lc-events');
SELECT monitoring.fold_error_counts();
SELECT pg_temp.event('lc-events');
SELECT is(pg_temp.state('lc-events'), 'ignored', 'the 4th event, folded or not, leaves it ignored');
SELECT pg_temp.event('lc-events');
SELECT is(
    pg_temp.state('lc-events'), 'unresolved/escalating', 'the 5th event wakes it: escalating'
);
SELECT results_eq(
    $$SELECT h.action, h.actor, h.data ->> 'reason' FROM monitoring.issue_history AS h
      WHERE h.issue_id = monitoring.issue_id('lc-events') AND h.action <> 'first_seen'
      ORDER BY h.id$$,
    $$VALUES ('ignored', session_user::text COLLATE "default", NULL::text),
        ('escalating', NULL, 'event count reached')$$,
    'the history shows the ignore and the escalation with its reason'
);
SELECT is(
    (
        SELECT ignore_until_times_seen FROM monitoring.issues
        WHERE fingerprint = 'lc-events'
    ),
    NULL,
    'waking clears the ignore condition'
);

-- Ignore until N more users.
SELECT pg_temp.event('lc-users', p_user => 'ann');
SELECT pg_temp.event('lc-users', p_user => 'bob');
SELECT is(
    (
        SELECT ignore_until_users_seen::integer
        FROM monitoring.ignore_issue(monitoring.issue_id('lc-users'), p_until_users => 2)
    ),
    4,
    'ignore until 2 more users, after 2, waits for the 4th user'
);
SELECT pg_temp.event('lc-users', p_user => 'ann');
SELECT pg_temp.event('lc-users', p_user => 'bob');
SELECT pg_temp.event('lc-users');
SELECT pg_temp.event('lc-users', p_user => 'cid');
SELECT pg_temp.event('lc-users', p_user => 'cid');
SELECT is(
    pg_temp.state('lc-users'),
    'ignored',
    'known users, events without a user and a 3rd user leave it ignored'
);
SELECT pg_temp.event('lc-users', p_user => 'dan');
SELECT is(
    pg_temp.state('lc-users'),
    'unresolved/escalating',
    'the 4th distinct user wakes it: escalating'
);
SELECT is(
    (
        SELECT h.data ->> 'reason' FROM monitoring.issue_history AS h
        WHERE h.issue_id = monitoring.issue_id('lc-users') AND h.action = 'escalating'
    ),
    'user count reached',
    'the escalation says the user count was reached'
);

-- Ignore until a time.
SELECT pg_temp.event('lc-time');
SELECT pg_temp.event('lc-time-quiet');
SELECT is(
    (
        SELECT ignore_until
        FROM monitoring.ignore_issue(
            monitoring.issue_id('lc-time'), p_until => now() + interval '1 hour'
        )
    ),
    now() + interval '1 hour',
    'ignore until a time'
);
SELECT monitoring.ignore_issue(
    monitoring.issue_id('lc-time-quiet'), p_until => now() + interval '1 hour'
);
SELECT pg_temp.event('lc-time');
SELECT is(pg_temp.state('lc-time'), 'ignored', 'an event before the time leaves it ignored');
-- now() is fixed inside the transaction: move the deadline instead of the clock
UPDATE monitoring.error_issues SET ignore_until = now() - interval '1 second'
WHERE fingerprint IN ('lc-time', 'lc-time-quiet');
SELECT pg_temp.event('lc-time');
SELECT is(
    pg_temp.state('lc-time'),
    'unresolved/escalating',
    'an event after the time wakes it'
);
SELECT is(monitoring.expire_ignores(), 1::bigint, 'expire_ignores ends the ignore that ran out');
SELECT is(
    pg_temp.state('lc-time-quiet'),
    'unresolved/new',
    'an ignore that ran out without events leaves the issue unresolved'
);
SELECT results_eq(
    $$SELECT h.action, h.actor, h.data FROM monitoring.issue_history AS h
      WHERE h.issue_id = monitoring.issue_id('lc-time-quiet') AND h.action = 'unresolved'$$,
    $$VALUES ('unresolved', NULL::text, '{"reason": "ignore period ended"}'::jsonb)$$,
    'expire_ignores records why, by no actor'
);
SELECT throws_ok(
    $$SELECT monitoring.ignore_issue(monitoring.issue_id('lc-time'), p_until => now())$$,
    '22023',
    NULL,
    'ignore until a time that is not in the future is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.ignore_issue(monitoring.issue_id('lc-time'), p_until_events => 0)$$,
    '22023',
    'p_until_events and p_until_users must be positive',
    'ignore until 0 more events is refused'
);

-- Assign, unassign, reopen.
SELECT pg_temp.event('lc-triage');
SELECT results_eq(
    $$SELECT assignee, assigned_at
      FROM monitoring.assign_issue(monitoring.issue_id('lc-triage'), 'dev@example.com',
          p_actor => 'lead@example.com')$$,
    $$VALUES ('dev@example.com', now())$$,
    'assign_issue sets the assignee'
);
SELECT throws_ok(
    $$SELECT monitoring.assign_issue(monitoring.issue_id('lc-triage'), ' ')$$,
    '22023',
    'p_assignee must not be empty; use monitoring.unassign_issue',
    'assigning to nobody is refused'
);
SELECT is(
    (SELECT assignee FROM monitoring.unassign_issue(monitoring.issue_id('lc-triage'), 'lead')),
    NULL,
    'unassign_issue removes the assignee'
);
SELECT monitoring.unassign_issue(monitoring.issue_id('lc-triage'));
SELECT monitoring.resolve_issue(monitoring.issue_id('lc-triage'), p_actor => 'lead');
SELECT results_eq(
    $$SELECT status, resolved_at, resolution
      FROM monitoring.reopen_issue(monitoring.issue_id('lc-triage'), 'lead')$$,
    $$VALUES ('unresolved', NULL::timestamptz, NULL::text)$$,
    'reopen_issue sets a resolved issue back to unresolved'
);
SELECT monitoring.reopen_issue(monitoring.issue_id('lc-triage'));
SELECT monitoring.ignore_issue(monitoring.issue_id('lc-triage'), p_actor => 'lead');
SELECT is(
    (SELECT status FROM monitoring.reopen_issue(monitoring.issue_id('lc-triage'), 'lead')),
    'unresolved',
    'reopen_issue sets an ignored issue back to unresolved'
);
SELECT results_eq(
    $$SELECT h.action, h.actor, h.data, h.occurred_at FROM monitoring.issue_history AS h
      WHERE h.issue_id = monitoring.issue_id('lc-triage') ORDER BY h.id$$,
    $$VALUES
        ('first_seen', NULL::text,
         (SELECT jsonb_build_object('event_id', e.id, 'level', 'error')
          FROM monitoring.errors AS e WHERE e.fingerprint = 'lc-triage'), now()),
        ('assigned', 'lead@example.com', '{"assignee": "dev@example.com"}', now()),
        ('unassigned', 'lead', '{"assignee": "dev@example.com"}', now()),
        ('resolved', 'lead', '{"resolution": "now"}', now()),
        ('unresolved', 'lead', '{"from": "resolved"}', now()),
        ('ignored', 'lead', '{}', now()),
        ('unresolved', 'lead', '{"from": "ignored"}', now())$$,
    'every change is in issue_history with its actor; changes that change nothing are not'
);

-- Unknown issues.
SELECT
    throws_ok(
        'SELECT monitoring.' || f || '(-1)',
        'P0002',
        'no issue with id -1',
        f || ' of an unknown issue is no_data_found'
    )
FROM unnest(ARRAY['resolve_issue', 'ignore_issue', 'reopen_issue', 'unassign_issue']) AS f;
SELECT throws_ok(
    $$SELECT monitoring.assign_issue(-1, 'dev@example.com')$$,
    'P0002',
    'no issue with id -1',
    'assign_issue of an unknown issue is no_data_found'
);

-- "new" is for 7 days after the first event, the events not folded yet included: a late
-- event sent with an old time makes the issue ongoing before the fold as after it.
SELECT monitoring.capture_message('late arrival', p_service => 'substatus');
SELECT monitoring.capture_message(
    'late arrival', p_service => 'substatus', p_occurred_at => now() - interval '10 days'
);
SELECT is(
    (
        SELECT i.substatus FROM monitoring.issues AS i
        WHERE i.service = 'substatus'
    ),
    'ongoing',
    'an issue whose first event, not yet folded, is 10 days old is ongoing'
);
SELECT monitoring.fold_error_counts();
SELECT is(
    (
        SELECT i.substatus FROM monitoring.issues AS i
        WHERE i.service = 'substatus'
    ),
    'ongoing',
    'and still after the fold'
);

SELECT * FROM finish();
ROLLBACK;
