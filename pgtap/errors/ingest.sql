-- Storing an event: the per-session fingerprint memo, times a client clock sends wrong, and
-- the user an event counts.
BEGIN;
SELECT plan(18);
-- The per-session fingerprint memo: a repeated trace is grouped from memory, exactly as if
-- computed; a trace that differs in a frame, or grouping that depends on the value, is not.
SELECT set_config('pg_monitoring.fingerprints', '', FALSE);
CREATE TEMPORARY TABLE memo_frames AS
SELECT
    '[{"module": "shop.cart", "function": "add", "context_line": "cart.add(item)",
        "in_app": true, "lineno": 10}]'::jsonb AS a,
    '[{"module": "shop.cart", "function": "remove", "context_line": "cart.add(item)",
        "in_app": true, "lineno": 10}]'::jsonb AS b;
SELECT is(
    (
        SELECT (monitoring.capture_error('KeyError', 'item 1', m.a, p_service => 'memo')).issue_id
        FROM memo_frames AS m
    ),
    (
        SELECT (monitoring.capture_error('KeyError', 'item 2', m.a, p_service => 'memo')).issue_id
        FROM memo_frames AS m
    ),
    'a repeated trace with another value joins the same issue'
);
SELECT is(
    (
        SELECT pg_catalog.length(pg_catalog.current_setting('pg_monitoring.fingerprints'))
    ),
    82,
    'and the session remembers one fingerprint'
);
SELECT is(
    (
        SELECT g.fingerprint FROM monitoring.error_issues AS g
        WHERE g.service = 'memo'
    ),
    (
        SELECT f.fingerprint FROM memo_frames AS m,
            monitoring.default_fingerprint(
                monitoring._stack_trace_chain(m.a, 'KeyError', 'item 3'), 'item 3'
            ) AS f
    ),
    'the remembered fingerprint is the computed one'
);
SELECT isnt(
    (
        SELECT (monitoring.capture_error('KeyError', 'item 1', m.b, p_service => 'memo')).issue_id
        FROM memo_frames AS m
    ),
    (
        SELECT g.id FROM monitoring.error_issues AS g
        WHERE g.service = 'memo'
        ORDER BY g.id LIMIT 1
    ),
    'another function in the trace is another issue'
);
SELECT is(
    pg_catalog.length(pg_catalog.current_setting('pg_monitoring.fingerprints')),
    164,
    'and it is remembered too'
);
-- An SDK sends each frame's variables, and they vary from event to event (locals): they do
-- not decide the fingerprint, and are not in the key.
SELECT is(
    (
        SELECT (monitoring.capture_error(
            'KeyError', 'item 4',
            jsonb_set(m.a, '{0,vars}', '{"item": "4", "cart": [1, 2]}'), p_service => 'memo'
        )).issue_id
        FROM memo_frames AS m
    ),
    (
        SELECT g.id FROM monitoring.error_issues AS g
        WHERE g.service = 'memo'
        ORDER BY g.id LIMIT 1
    ),
    'a repeated trace with other variables joins the same issue'
);
SELECT is(
    pg_catalog.length(pg_catalog.current_setting('pg_monitoring.fingerprints')),
    164,
    'from memory: no entry is added'
);
SELECT monitoring.capture_error('KeyError', 'no frames 1', p_service => 'memo');
SELECT is(
    pg_catalog.length(pg_catalog.current_setting('pg_monitoring.fingerprints')),
    164,
    'grouping by type and value is not remembered (the value decides it)'
);

-- The memo is a setting the caller can write: an entry it forged (a known key mapped to a
-- fingerprint of its choice, with a made-up MAC) is ignored, and so is a memo over 16 entries.
SELECT set_config(
    'pg_monitoring.fingerprints',
    pg_catalog.left(pg_catalog.current_setting('pg_monitoring.fingerprints'), 33)
    || 'ffffffffffffffffffffffffffffffff0123456789abcdef;',
    FALSE
);
CREATE FUNCTION pg_temp.memo_issue_fingerprint(p_value text)
RETURNS text
LANGUAGE sql
AS $$
    SELECT g.fingerprint FROM memo_frames AS m, monitoring.error_issues AS g
    WHERE g.id = (monitoring.capture_error('KeyError', p_value, m.b, p_service => 'memo')).issue_id
$$;
CREATE TEMPORARY TABLE memo_b AS
SELECT f.fingerprint FROM memo_frames AS m,
    monitoring.default_fingerprint(monitoring._stack_trace_chain(m.b, 'KeyError', 'x'), 'x') AS f;
SELECT is(
    pg_temp.memo_issue_fingerprint('item 4'),
    (SELECT b.fingerprint FROM memo_b AS b),
    'a forged memo entry does not move an event into an issue of the caller''s choosing'
);
SELECT ok(
    NOT EXISTS (
        SELECT FROM monitoring.error_issues AS g
        WHERE g.fingerprint = 'ffffffffffffffffffffffffffffffff'
    ),
    'no issue has the forged fingerprint'
);
SELECT set_config('pg_monitoring.fingerprints', pg_catalog.repeat('x', 10000000), FALSE);
SELECT is(
    pg_temp.memo_issue_fingerprint('item 5'),
    (SELECT b.fingerprint FROM memo_b AS b),
    'a memo of 10 MB is not read'
);
SELECT is(
    pg_catalog.length(pg_catalog.current_setting('pg_monitoring.fingerprints')),
    82,
    'and is replaced by the one entry of that capture'
);

-- Frames of 16 values each: the first and third, swapped, are 32 values apart, where
-- jsonb_hash_extended (which rotates each 32-bit half by a bit per value) hashes the same.
CREATE TEMPORARY TABLE memo_order AS
SELECT
    jsonb_build_array(f.f1, f.f2, f.f3) AS forward,
    jsonb_build_array(f.f3, f.f2, f.f1) AS backward
FROM (
    SELECT
        '{"filename": "app/a.py", "module": "app.a", "function": "load", "lineno": 1,
            "context_line": "load()", "in_app": true, "abs_path": "/srv/a.py", "colno": 0}'::jsonb AS f1,
        '{"filename": "app/b.py", "module": "app.b", "function": "save", "lineno": 2,
            "context_line": "save()", "in_app": true, "abs_path": "/srv/b.py", "colno": 0}'::jsonb AS f2,
        '{"filename": "app/c.py", "module": "app.c", "function": "send", "lineno": 3,
            "context_line": "send()", "in_app": true, "abs_path": "/srv/c.py", "colno": 0}'::jsonb AS f3
) AS f;
SELECT monitoring.capture_error('KeyError', 'forward', m.forward, p_service => 'memo-order')
FROM memo_order AS m;
SELECT isnt(
    (
        SELECT (
            monitoring.capture_error('KeyError', 'backward', m.backward, p_service => 'memo-order')
        ).issue_id
        FROM memo_order AS m
    ),
    (
        SELECT g.id FROM monitoring.error_issues AS g
        WHERE g.service = 'memo-order'
    ),
    'the same frames in another order are another issue (the memo key is no jsonb_hash_extended)'
);

-- Times a clock sends wrong: filed at the time received, with what was sent kept.
SELECT monitoring.reset_setting('errors.retention_days');
CREATE TEMPORARY TABLE skewed AS
SELECT
    (monitoring.capture_error('Skewed', 'old', p_occurred_at => now() - interval '200 days'))
    .event_id AS old,
    (monitoring.capture_error('Skewed', 'bogus', p_occurred_at => '-infinity')).event_id AS bogus,
    (monitoring.capture_error('Skewed', 'ahead', p_occurred_at => now() + interval '1 day'))
    .event_id AS ahead,
    (monitoring.capture_error('Skewed', 'recent', p_occurred_at => now() - interval '89 days'))
    .event_id AS recent;
SELECT results_eq(
    $$SELECT e.message, e.occurred_at, e.data -> 'timestamp_adjusted'
      FROM monitoring.error_events AS e, skewed AS s
      WHERE e.event_id IN (s.old, s.bogus, s.ahead, s.recent) ORDER BY e.message$$,
    $$VALUES
        ('ahead', now(), jsonb_build_object('sent', monitoring._json_time(now() + interval '1 day'),
            'reason', 'in the future')),
        ('bogus', now(), jsonb_build_object('sent', '-infinity',
            'reason', 'older than errors.retention_days')),
        ('old', now(), jsonb_build_object('sent', monitoring._json_time(now() - interval '200 days'),
            'reason', 'older than errors.retention_days')),
        ('recent', now() - interval '89 days', NULL::jsonb)$$,
    'a time older than the retention window or ahead by over a minute is filed as now, '
    'and the event keeps the time sent; a time within the window is kept'
);

-- The design document's snippets send the user as context={"user_id": ...}: an event with no
-- user of its own counts that user, and stores it as its user.
CREATE TEMPORARY TABLE context_users AS
SELECT
    v.n,
    c.event_id,
    c.issue_id
FROM (
    VALUES
    (1, '{"user_id": 7}'::jsonb, NULL::jsonb),
    (2, '{"user_id": "7"}', NULL),
    (3, NULL, '{"id": "7"}'),
    (4, '{"user_id": "8"}', NULL),
    (5, '{"user_id": true}', NULL),
    (6, '{"user_id": {"id": 9}}', NULL),
    (7, '{"user_id": ""}', NULL),
    (8, '{"user_id": 10}', '{"username": "ann"}'),
    (9, '{"user_id": 11}', '{"name": "Ann"}')
) AS v (n, context, usr)
CROSS JOIN LATERAL monitoring.capture_error(
    'ContextUserError', 'from the context', p_context => v.context, p_user => v.usr,
    p_service => 'context-users', p_fingerprint => ARRAY['context-users']
) AS c;
SELECT is(
    (
        SELECT i.users_seen::integer FROM monitoring.issues AS i
        WHERE i.id = (SELECT max(u.issue_id) FROM context_users AS u)
    ),
    4,
    'users affected counts context.user_id (7 as number or text is the user id 7), beside '
    'p_user: 7, 8, ann, 11'
);
SELECT results_eq(
    $$SELECT e.user_info FROM monitoring.error_events AS e
      INNER JOIN context_users AS c ON e.event_id = c.event_id ORDER BY c.n$$,
    $$VALUES ('{"id": 7}'::jsonb), ('{"id": "7"}'), ('{"id": "7"}'), ('{"id": "8"}'), (NULL),
        (NULL), (NULL), ('{"username": "ann"}'), ('{"id": 11, "name": "Ann"}')$$,
    'the event stores context.user_id as its user''s id, unless its user has an id, username, '
    'email or IP; a user_id that is no string or number is no user'
);
-- (captured first: a query does not see what a function it calls wrote)
CREATE TEMPORARY TABLE context_users_more AS
SELECT
    (monitoring.capture_error(
        'ContextUserError', 'a long id',
        p_context => jsonb_build_object('user_id', repeat('x', 500)),
        p_service => 'context-users'
    )).issue_id AS long_id,
    (monitoring.capture_event(
        '{"message": "from extra", "extra": {"user_id": "u-1"}, "service": "context-users"}'
    )).issue_id AS sentry;
SELECT is(
    (
        SELECT octet_length(c.user_key) <= 200 AND c.user_key LIKE 'id:xxx%'
        FROM monitoring.error_issue_counts AS c
        WHERE c.issue_id = (SELECT m.long_id FROM context_users_more AS m)
    ),
    TRUE,
    'a long context.user_id is cut to fit the index, as any user key'
);
SELECT is(
    (
        SELECT i.users_seen::integer FROM monitoring.issues AS i
        WHERE i.id = (SELECT m.sentry FROM context_users_more AS m)
    ),
    1,
    'a Sentry event''s extra.user_id (its context) counts as its user'
);

SELECT * FROM finish();
ROLLBACK;
