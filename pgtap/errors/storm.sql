-- Storm protection: an issue's first events of a window are stored whole, the rest counted
-- exactly and stored one in K (by event id); the issue shows the sampling; a new window
-- starts over; settings are range-checked.
BEGIN;
SELECT plan(27);

SELECT monitoring.set_setting('errors.storm_full_events', '5');
SELECT monitoring.set_setting('errors.storm_keep_one_in', '4');
-- every capture checks the threshold, so that the test knows each event's fate
SELECT monitoring.set_setting('errors.storm_check_one_in', '1');

-- n event ids whose hash keeps them whole (p_kept) or not, so that the test knows each fate
CREATE FUNCTION pg_temp.ids(p_n integer, p_kept boolean)
RETURNS uuid[]
LANGUAGE sql
AS $$
    SELECT array_agg(i.id) FROM (
        SELECT g.id FROM (
            SELECT gen_random_uuid() AS id FROM generate_series(1, p_n * 20)
        ) AS g
        WHERE (hashtext(g.id::text) % 4 = 0) = p_kept
        LIMIT p_n
    ) AS i;
$$;

-- a storm of capture_error on one stack trace (the session remembers its fingerprint)
CREATE FUNCTION pg_temp.storm(
    p_ids uuid[], p_at timestamptz DEFAULT NULL, p_service text DEFAULT 'storm'
)
RETURNS TABLE (event_id uuid, issue_id bigint)
LANGUAGE sql
AS $$
    SELECT c.event_id, c.issue_id
    FROM unnest(p_ids) WITH ORDINALITY AS i (id, n),
        LATERAL monitoring.capture_error(
            'StormError', 'storm event ' || i.n,
            '[{"filename": "app/storm.py", "function": "flood", "in_app": true}]'::jsonb,
            jsonb_build_object('user_id', 'u' || i.n % 3),
            p_service => p_service, p_event_id => i.id, p_occurred_at => p_at
        ) AS c;
$$;

CREATE TEMP TABLE kept_ids AS SELECT pg_temp.ids(10, TRUE) AS ids;
CREATE TEMP TABLE dropped_ids AS SELECT pg_temp.ids(10, FALSE) AS ids;

-- Settings
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.storm_full_events', '0')$$, '22023', NULL,
    'storm_full_events must be at least 1'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.storm_window_minutes', '1441')$$, '22023', NULL,
    'storm_window_minutes is at most a day'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.storm_keep_one_in', '0')$$, '22023', NULL,
    'storm_keep_one_in must be at least 1'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.storm_check_one_in', '1001')$$, '22023', NULL,
    'storm_check_one_in is at most 1000'
);

-- Under the threshold: every event stored
SELECT * FROM pg_temp.storm((SELECT d.ids[1:5] FROM dropped_ids AS d));
CREATE TEMP TABLE storm_issue AS
SELECT i.id FROM monitoring.issues AS i
WHERE i.service = 'storm';
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors
        WHERE service = 'storm'
    ), 5,
    'the first storm_full_events events are stored whole'
);
SELECT is(
    (
        SELECT i.sampling_until FROM monitoring.issues AS i
        WHERE i.service = 'storm'
    ), NULL,
    'no sampling under the threshold'
);

-- Over it: counted, one in four stored (here: the ids chosen to be kept)
CREATE TEMP TABLE sampled_out AS
SELECT * FROM pg_temp.storm((SELECT d.ids[6:10] FROM dropped_ids AS d));
SELECT * FROM pg_temp.storm((SELECT k.ids[1:3] FROM kept_ids AS k));
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors
        WHERE service = 'storm'
    ), 8,
    'over the threshold only the sampled events are stored'
);
SELECT ok(
    (SELECT bool_and(s.issue_id = t.id) FROM sampled_out AS s, storm_issue AS t),
    'a sampled-out capture returns its issue'
);
SELECT ok(
    (
        SELECT bool_and(s.event_id = d) FROM sampled_out AS s
        INNER JOIN unnest((SELECT d.ids[6:10] FROM dropped_ids AS d)) AS d ON s.event_id = d
    ),
    'and the event id it was counted under'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors AS e
        INNER JOIN sampled_out AS s ON e.id = s.event_id
    ),
    0, 'which no stored event has'
);
SELECT results_eq(
    $$SELECT times_seen::integer, users_seen::integer, events_sampled_out::integer
    FROM monitoring.issues WHERE service = 'storm'$$,
    $$VALUES (13, 3, 5)$$,
    'the issues view counts every event, its users and those not stored'
);
SELECT is(
    (
        SELECT i.sampling_until FROM monitoring.issues AS i
        WHERE i.service = 'storm'
    ),
    date_bin(interval '1 hour', now(), timestamptz '2000-01-01 00:00:00+00') + interval '1 hour',
    'the issue is sampled until the end of the window'
);
SELECT is(
    (
        SELECT i.sampling_since FROM monitoring.issues AS i
        WHERE i.service = 'storm'
    ), now(),
    'since the threshold was reached'
);
SELECT ok(monitoring.fold_error_counts() > 0, 'fold');
SELECT results_eq(
    $$SELECT times_seen::integer, users_seen::integer, events_sampled_out::integer
    FROM monitoring.issues WHERE service = 'storm'$$,
    $$VALUES (13, 3, 5)$$,
    'the counts stay exact after the fold'
);
SELECT results_eq(
    $$SELECT times_seen::integer, events_sampled_out::integer
    FROM monitoring.error_issues WHERE service = 'storm'$$,
    $$VALUES (13, 5)$$,
    'the fold adds them to the issue row'
);
SELECT is(
    (
        SELECT sum(s.events)::integer FROM monitoring.error_issue_sampled AS s
        INNER JOIN storm_issue AS t ON s.issue_id = t.id
    ),
    5, 'and the events not stored by minute, for frequency alert rules'
);

-- A sampled-out event of a resolved issue still reopens it
SELECT monitoring.resolve_issue((SELECT t.id FROM storm_issue AS t));
SELECT * FROM pg_temp.storm(ARRAY[gen_random_uuid()]);
SELECT is(
    (
        SELECT i.status FROM monitoring.issues AS i
        WHERE i.service = 'storm'
    ), 'unresolved',
    'a storm event regresses a resolved issue'
);

-- An earlier window counts its own stored events: five whole again, then sampling; the mark
-- does not move back
SELECT * FROM pg_temp.storm(pg_temp.ids(7, FALSE), now() - interval '2 hours');
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors
        WHERE service = 'storm' AND occurred_at < now() - interval '1 hour'
    ),
    5, 'another window stores its first events whole'
);
SELECT is(
    (
        SELECT i.sampling_until FROM monitoring.issues AS i
        WHERE i.service = 'storm'
    ),
    date_bin(interval '1 hour', now(), timestamptz '2000-01-01 00:00:00+00') + interval '1 hour',
    'a late window does not move the sampling back'
);

-- Without a memo (a message with a fingerprint of its own): the same rule
SELECT
    monitoring.capture_message(
        'flood', p_service => 'storm-messages', p_fingerprint => ARRAY['flood'], p_event_id => i
    )
FROM unnest(pg_temp.ids(8, FALSE)) AS i;
SELECT results_eq(
    $$SELECT times_seen::integer, events_sampled_out::integer,
        (SELECT count(*)::integer FROM monitoring.errors AS e WHERE e.issue_id = i.id)
    FROM monitoring.issues AS i WHERE service = 'storm-messages'$$,
    $$VALUES (8, 3, 5)$$,
    'messages are sampled as well, after their grouping'
);

-- A user whose id scrubbing filters is counted as the stored event would count it
SELECT
    monitoring.capture_error(
        'UserError', 'x', '[{"filename": "app/u.py", "function": "f", "in_app": true}]'::jsonb,
        p_user => '{"id": "4111 1111 1111 1111", "password": "hunter2"}',
        p_service => 'storm-users',
        p_event_id => i
    )
FROM unnest(pg_temp.ids(7, FALSE)) AS i;
SELECT results_eq(
    $$SELECT DISTINCT c.user_key, c.sampled FROM monitoring.error_issue_counts AS c
    INNER JOIN monitoring.error_issues AS g ON c.issue_id = g.id
    WHERE g.service = 'storm-users' ORDER BY c.sampled$$,
    $$VALUES ('id:[Filtered]', FALSE), ('id:[Filtered]', TRUE)$$,
    'a sampled-out event counts its user scrubbed, as a stored one'
);

-- A new window starts over; the sampling goes on from the same start
SELECT monitoring.set_setting('errors.storm_window_minutes', '1');
CREATE TEMP TABLE earlier AS
SELECT
    date_bin(interval '1 minute', now(), timestamptz '2000-01-01 00:00:00+00')
    - interval '1 minute' AS w;
SELECT * FROM pg_temp.storm(
    pg_temp.ids(6, FALSE), (SELECT e.w FROM earlier AS e), 'storm-windows'
);
UPDATE monitoring.error_issues SET sampling_since = now() - interval '5 minutes'
WHERE service = 'storm-windows';
SELECT is(
    (
        SELECT i.sampling_until FROM monitoring.issues AS i
        WHERE i.service = 'storm-windows'
    ),
    (SELECT e.w + interval '1 minute' FROM earlier AS e),
    'one-minute windows: the window before is sampled'
);
CREATE TEMP TABLE stored_before AS
SELECT count(*) AS n FROM monitoring.errors
WHERE service = 'storm-windows';
SELECT * FROM pg_temp.storm(pg_temp.ids(5, FALSE), NULL, 'storm-windows');
SELECT is(
    (
        SELECT count(*) FROM monitoring.errors
        WHERE service = 'storm-windows'
    )
    - (SELECT s.n FROM stored_before AS s),
    5::bigint, 'the next window stores its first events whole again'
);
SELECT * FROM pg_temp.storm(pg_temp.ids(3, FALSE), NULL, 'storm-windows');
SELECT is(
    (
        SELECT count(*) FROM monitoring.errors
        WHERE service = 'storm-windows'
    )
    - (SELECT s.n FROM stored_before AS s),
    5::bigint, 'then samples'
);
SELECT is(
    (
        SELECT i.sampling_until FROM monitoring.issues AS i
        WHERE i.service = 'storm-windows'
    ),
    (SELECT e.w + interval '2 minutes' FROM earlier AS e),
    'the sampling moves on to the new window'
);
SELECT is(
    (
        SELECT i.sampling_since FROM monitoring.issues AS i
        WHERE i.service = 'storm-windows'
    ),
    now() - interval '5 minutes',
    'and keeps its start, the windows following one another'
);

SELECT * FROM finish();
ROLLBACK;
