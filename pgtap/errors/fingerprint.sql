-- Grouping: which events are one issue. Sentry's default algorithm (in-app frames by module or
-- file name, function and source line; else type and value; else message), explicit
-- fingerprints, and the identity (service, environment, fingerprint). Written to hold with any
-- sane message normaliser: only integers ever differ between messages that must group.
BEGIN;
SELECT plan(37);

-- The issue an error with these frames (oldest call first) files into.
CREATE FUNCTION pg_temp.issue(
    p_type text, p_value text, p_frames jsonb,
    p_fingerprint text[] DEFAULT NULL,
    p_environment text DEFAULT 'production',
    p_service text DEFAULT 'grouping'
)
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT c.issue_id
    FROM monitoring.capture_error(
        p_type, p_value, p_frames,
        p_fingerprint => p_fingerprint, p_environment => p_environment, p_service => p_service
    ) AS c;
$$;

-- A checkout failing in the application, through a library: frame 0 the view, 1 the library,
-- 2 where it raised. p_changes, by frame index, holds keys to change in that frame, or an
-- array of frames to put in its place.
CREATE FUNCTION pg_temp.checkout(p_changes jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql
AS $$
    SELECT jsonb_agg(r.frame ORDER BY f.ord, r.ord)
    FROM jsonb_array_elements(
        '[{"filename": "/app/shop/views.py", "function": "checkout", "lineno": 10,
           "context_line": "charge(order)"},
          {"filename": "/srv/venv/lib/python3.11/site-packages/stripe/api.py",
           "function": "request", "lineno": 300, "context_line": "return self._post(url)"},
          {"filename": "/app/shop/payments.py", "function": "charge", "lineno": 42,
           "context_line": "raise PaymentError(msg)"}]'
    ) WITH ORDINALITY AS f (frame, ord)
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE jsonb_typeof(p_changes -> (f.ord - 1)::text)
            WHEN 'array' THEN p_changes -> (f.ord - 1)::text
            ELSE jsonb_build_array(f.frame || coalesce(p_changes -> (f.ord - 1)::text, '{}'))
        END
    ) WITH ORDINALITY AS r (frame, ord);
$$;

CREATE TEMPORARY TABLE base AS
SELECT pg_temp.issue('PaymentError', 'order 1001 declined', pg_temp.checkout()) AS issue_id;

-- The same bug, written differently: one issue.
SELECT is(
    pg_temp.issue(
        'PaymentError', 'order 1001 declined',
        pg_temp.checkout('{"0": {"lineno": 12}, "1": {"lineno": 301}, "2": {"lineno": 57}}')
    ),
    (SELECT issue_id FROM base),
    'other line numbers: the same issue'
);
SELECT is(
    pg_temp.issue(
        'PaymentError', 'order 1001 declined',
        pg_temp.checkout('{
            "0": {"filename": "/home/deploy/releases/42/shop/views.py"},
            "1": {"filename": "/usr/local/lib/python3.11/site-packages/stripe/api.py"},
            "2": {"filename": "C:\\build\\shop\\payments.py"}}')
    ),
    (SELECT issue_id FROM base),
    'other absolute paths (another machine, container or release directory): the same issue'
);
SELECT is(
    pg_temp.issue('PaymentError', 'order 2002 declined after 3 retries', pg_temp.checkout()),
    (SELECT issue_id FROM base),
    'other ids and words in the message: the same issue, since the frames decide'
);
SELECT is(
    pg_temp.issue(
        'PaymentError', 'order 1001 declined',
        pg_temp.checkout('{"1": [
            {"filename": "/srv/venv/lib/python3.11/site-packages/stripe/http.py",
             "function": "send", "context_line": "return conn.send(req)"},
            {"filename": "/srv/venv/lib/python3.11/site-packages/stripe/api.py",
             "function": "_post", "context_line": "return self.http.send()"}]}')
    ),
    (SELECT issue_id FROM base),
    'other library frames (an upgraded package): the same issue, only in-app frames count'
);
SELECT is(
    pg_temp.issue(
        'PaymentError', 'order 1001 declined',
        pg_temp.checkout('{"0": {"context_line": "  charge(order)  "},
            "2": {"context_line": "raise \t  PaymentError(msg)"}}')
    ),
    (SELECT issue_id FROM base),
    'other whitespace in the source lines: the same issue'
);

-- Source lines with only single spaces skip the whitespace regex: every other kind of
-- whitespace still gets it, so a line groups as its collapsed form does.
SELECT is_empty(
    $$
    SELECT l.line FROM (VALUES
        (E'a\tb'), (E'a\nb'), (E'a\r\nb'), ('a' || chr(11) || 'b'), ('a' || chr(12) || 'b'),
        ('a  b'), ('  a b  '), (E'a\u2003b'), (E'a\u3000 b'), ('plain line'), ('')
    ) AS l (line)
    WHERE monitoring.default_fingerprint(
        jsonb_build_array(jsonb_build_object('type', 'E', 'frames', jsonb_build_array(
            jsonb_build_object('module', 'm', 'function', 'f', 'context_line', l.line)
        ))), NULL
    ) IS DISTINCT FROM monitoring.default_fingerprint(
        jsonb_build_array(jsonb_build_object('type', 'E', 'frames', jsonb_build_array(
            jsonb_build_object('module', 'm', 'function', 'f',
                'context_line', regexp_replace(btrim(l.line), '\s+', ' ', 'g'))
        ))), NULL
    )
    $$,
    'tabs, newlines, carriage returns, vertical tabs, form feeds, double and Unicode spaces: '
    'a source line groups as its collapsed form'
);

-- Another bug: another issue.
SELECT isnt(
    pg_temp.issue(
        'PaymentError', 'order 1001 declined', pg_temp.checkout('{"2": {"function": "refund"}}')
    ),
    (SELECT issue_id FROM base),
    'another function: another issue'
);
SELECT isnt(
    pg_temp.issue('RefundError', 'order 1001 declined', pg_temp.checkout()),
    (SELECT issue_id FROM base),
    'another exception type: another issue'
);
SELECT isnt(
    pg_temp.issue(
        'PaymentError', 'order 1001 declined',
        pg_temp.checkout('{"2": {"context_line": "raise PaymentError(other_msg)"}}')
    ),
    (SELECT issue_id FROM base),
    'another source line: another issue'
);
SELECT isnt(
    pg_temp.issue(
        'PaymentError', 'order 1001 declined',
        pg_temp.checkout('{"2": {"module": "billing.payments"}}')
    ),
    (SELECT issue_id FROM base),
    'another module: another issue'
);

-- Module over file name, case, and explicit in_app flags.
SELECT is(
    pg_temp.issue(
        'ModuleError', 'x',
        '[{"module": "Shop.Tasks", "filename": "/app/a/tasks.py", "function": "run"}]'
    ),
    pg_temp.issue(
        'ModuleError', 'x',
        '[{"module": "shop.tasks", "filename": "/opt/b/tasks_v2.py", "function": "run"}]'
    ),
    'a frame with a module is known by its module (lower-cased), not its file'
);
SELECT is(
    pg_temp.issue(
        'FlagError', 'x',
        '[{"filename": "/app/main.py", "function": "main", "in_app": true},
          {"filename": "/app/vendored/lib.py", "function": "helper_v1", "in_app": false}]'
    ),
    pg_temp.issue(
        'FlagError', 'x',
        '[{"filename": "/app/main.py", "function": "main", "in_app": true},
          {"filename": "/app/vendored/lib.py", "function": "helper_v2", "in_app": false}]'
    ),
    'an explicit "in_app": false is honoured even for a file under the application'
);

-- No in-app frame: every frame counts.
SELECT is(
    pg_temp.issue(
        'LibError', 'x',
        '[{"filename": "/usr/lib/python3.11/json/decoder.py", "function": "decode"},
          {"filename": "/usr/lib/python3.11/json/scanner.py", "function": "scan", "lineno": 5}]'
    ),
    pg_temp.issue(
        'LibError', 'x',
        '[{"filename": "/usr/lib/python3.11/json/decoder.py", "function": "decode"},
          {"filename": "/usr/lib/python3.11/json/scanner.py", "function": "scan", "lineno": 9}]'
    ),
    'without in-app frames, library frames group like in-app ones (line numbers ignored)'
);
SELECT isnt(
    pg_temp.issue(
        'LibError', 'x',
        '[{"filename": "/usr/lib/python3.11/json/decoder.py", "function": "decode"},
          {"filename": "/usr/lib/python3.11/json/scanner.py", "function": "scan"}]'
    ),
    pg_temp.issue(
        'LibError', 'x',
        '[{"filename": "/usr/lib/python3.11/json/decoder.py", "function": "decode"},
          {"filename": "/usr/lib/python3.11/json/scanner.py", "function": "scan_once"}]'
    ),
    'without in-app frames, library frames decide'
);

-- Recursion: main, then walk p_depth times, then leaf when given.
CREATE FUNCTION pg_temp.walk(p_depth integer, p_leaf text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql
AS $$
    SELECT
        '[{"filename": "/app/tree.py", "function": "main"}]'::jsonb
        || jsonb_agg(jsonb_build_object('filename', '/app/tree.py', 'function', 'walk'))
        || coalesce(
            jsonb_build_array(jsonb_build_object('filename', '/app/tree.py', 'function', p_leaf)),
            '[]'
        )
    FROM generate_series(1, p_depth);
$$;

SELECT is(
    pg_temp.issue('RecursionError', 'maximum recursion depth exceeded', pg_temp.walk(40)),
    pg_temp.issue('RecursionError', 'maximum recursion depth exceeded', pg_temp.walk(1)),
    'direct recursion counts once, however deep'
);
SELECT is(
    pg_temp.issue('RecursionError', 'deep', pg_temp.walk(300, 'leaf')),
    pg_temp.issue('RecursionError', 'deep', pg_temp.walk(120, 'leaf')),
    'recursion deeper than errors.max_frames groups the same at any depth'
);

-- Source lines.
SELECT is(
    pg_temp.issue(
        'MinifiedError', 'x',
        jsonb_build_array(jsonb_build_object(
            'filename', 'bundle.js', 'function', 'n', 'context_line', repeat('a;', 61)
        ))
    ),
    pg_temp.issue(
        'MinifiedError', 'x',
        jsonb_build_array(jsonb_build_object(
            'filename', 'bundle.js', 'function', 'n', 'context_line', repeat('b;', 70)
        ))
    ),
    'a source line over 120 characters (minified, generated) is ignored'
);
SELECT isnt(
    pg_temp.issue(
        'MinifiedError', 'x',
        jsonb_build_array(jsonb_build_object(
            'filename', 'bundle.js', 'function', 'n', 'context_line', repeat('a', 120)
        ))
    ),
    pg_temp.issue(
        'MinifiedError', 'x',
        jsonb_build_array(jsonb_build_object(
            'filename', 'bundle.js', 'function', 'n', 'context_line', repeat('b', 120)
        ))
    ),
    'a source line of 120 characters still counts'
);

-- Chained exceptions: each one contributes.
CREATE FUNCTION pg_temp.chain(p_cause_type text)
RETURNS jsonb
LANGUAGE sql
AS $$
    SELECT jsonb_build_object('values', jsonb_build_array(
        jsonb_build_object(
            'type', p_cause_type, 'value', 'refused',
            'stacktrace', '{"frames": [{"filename": "/app/db.py", "function": "connect"}]}'::jsonb
        ),
        '{"type": "ServiceError", "value": "failed",
          "stacktrace": {"frames": [{"filename": "/app/svc.py", "function": "call"}]}}'::jsonb
    ));
$$;

SELECT isnt(
    pg_temp.issue(NULL, NULL, pg_temp.chain('ConnectionError')),
    pg_temp.issue(NULL, NULL, pg_temp.chain('TimeoutError')),
    'chained exceptions: another root cause is another issue'
);
SELECT isnt(
    pg_temp.issue(NULL, NULL, pg_temp.chain('ConnectionError')),
    pg_temp.issue('ServiceError', 'failed', '[{"filename": "/app/svc.py", "function": "call"}]'),
    'chained exceptions: the cause counts next to the exception raised last'
);

-- No frames: type and value; no exception: the message.
CREATE FUNCTION pg_temp.message_issue(p_message text)
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT c.issue_id FROM monitoring.capture_message(p_message, p_service => 'grouping') AS c;
$$;

SELECT is(
    pg_temp.issue('QuotaError', 'tenant 17 used 5001 of 5000 requests', NULL),
    pg_temp.issue('QuotaError', 'tenant 42 used 9001 of 9000 requests', NULL),
    'without frames, type and value decide, values differing only in numbers group'
);
SELECT isnt(
    pg_temp.issue('QuotaError', 'tenant 17 used 5001 of 5000 requests', NULL),
    pg_temp.issue('QuotaError', 'tenant 17 is suspended', NULL),
    'without frames, another value is another issue'
);
SELECT isnt(
    pg_temp.issue('QuotaError', 'tenant 17 is suspended', NULL),
    pg_temp.issue('BillingError', 'tenant 17 is suspended', NULL),
    'without frames, another type is another issue'
);
SELECT is(
    pg_temp.message_issue('Order 123 failed to ship'),
    pg_temp.message_issue('Order 456 failed to ship'),
    'messages differing only in numbers are one issue'
);
SELECT isnt(
    pg_temp.message_issue('Order 123 failed to ship'),
    pg_temp.message_issue('Order 123 shipped late'),
    'other messages are other issues'
);
SELECT results_eq(
    $$SELECT fingerprint_source, count(*)::integer FROM monitoring.issues
      WHERE service = 'grouping' GROUP BY fingerprint_source ORDER BY fingerprint_source$$,
    $$VALUES ('exception', 3), ('message', 2), ('stacktrace', 17)$$,
    'each issue records what its fingerprint came from'
);

-- Explicit fingerprints.
SELECT is(
    pg_temp.issue(
        'TimeoutError', 'gateway 7 timed out',
        '[{"filename": "/app/pay.py", "function": "charge"}]',
        ARRAY['payment_timeout_error']
    ),
    pg_temp.issue(
        'ReadTimeout', 'other text',
        '[{"filename": "/app/refund.py", "function": "refund"}]',
        ARRAY['payment_timeout_error']
    ),
    'an explicit fingerprint replaces the algorithm: other stacks, one issue'
);
CREATE TEMPORARY TABLE readable AS
SELECT
    pg_temp.issue('E', 'm', NULL, ARRAY['payment_timeout_error']) AS one_part,
    pg_temp.issue('E', 'm', NULL, ARRAY['payment', '', 'timeout']) AS parts;
SELECT is(
    (
        SELECT i.fingerprint || ' (' || i.fingerprint_source || ')'
        FROM monitoring.issues AS i INNER JOIN readable AS r ON i.id = r.one_part
    ),
    'payment_timeout_error (explicit)',
    'an explicit fingerprint is stored readable'
);
SELECT is(
    (
        SELECT i.fingerprint
        FROM monitoring.issues AS i INNER JOIN readable AS r ON i.id = r.parts
    ),
    'payment | timeout',
    'a fingerprint of several parts is stored joined, empty parts left out'
);
SELECT is(
    (monitoring.compute_fingerprint(NULL, 'm', ARRAY[repeat('k', 300)])).fingerprint,
    md5(to_jsonb(ARRAY[repeat('k', 300)])::text),
    'an explicit fingerprint too long for the index is stored as its md5'
);
SELECT is(
    pg_temp.issue('E', 'm', NULL, ARRAY['', NULL]),
    pg_temp.issue('E', 'm', NULL),
    'an explicit fingerprint of empty parts is no fingerprint: the default applies'
);

CREATE TEMPORARY TABLE split AS
SELECT
    pg_temp.issue('SyncError', 'x', '[{"filename": "/app/sync.py", "function": "run"}]') AS plain,
    pg_temp.issue(
        'SyncError', 'x', '[{"filename": "/app/sync.py", "function": "run", "lineno": 1}]',
        ARRAY['{{ default }}', 'tenant-a']
    ) AS tenant_a,
    pg_temp.issue(
        'SyncError', 'x', '[{"filename": "/app/sync.py", "function": "run", "lineno": 2}]',
        ARRAY['{{default}}', 'tenant-a']
    ) AS tenant_a_again,
    pg_temp.issue(
        'SyncError', 'x', '[{"filename": "/app/sync.py", "function": "run"}]',
        ARRAY['{{ default }}', 'tenant-b']
    ) AS tenant_b;

SELECT ok(
    (SELECT plain <> tenant_a AND plain <> tenant_b AND tenant_a <> tenant_b FROM split),
    '{{ default }} plus a value splits a group: each value its own issue'
);
SELECT is(
    (SELECT tenant_a_again FROM split),
    (SELECT tenant_a FROM split),
    '{{ default }} still groups by the default algorithm within one value'
);

SELECT is(
    pg_temp.issue(
        'SyncError', 'x', '[{"filename": "/app/sync.py", "function": "run", "lineno": 3}]',
        ARRAY[' {{default}} ']
    ),
    (SELECT plain FROM split),
    '{{ default }} alone is the default grouping: the event joins the issue sent without it'
);
SELECT isnt(
    pg_temp.issue('E', 'm', NULL, ARRAY['payment', 'timeout']),
    pg_temp.issue('E', 'm', NULL, ARRAY['payment | timeout']),
    'parts are not merely joined: ["payment", "timeout"] and ["payment | timeout"] are two issues'
);

-- Identity: (service, environment, fingerprint).
SELECT isnt(
    pg_temp.issue('E', 'm', NULL, ARRAY['shared_fp'], 'production'),
    pg_temp.issue('E', 'm', NULL, ARRAY['shared_fp'], 'staging'),
    'one fingerprint in two environments is two issues'
);
SELECT isnt(
    pg_temp.issue('E', 'm', NULL, ARRAY['shared_fp'], p_service => 'api'),
    pg_temp.issue('E', 'm', NULL, ARRAY['shared_fp'], p_service => 'worker'),
    'one fingerprint in two services is two issues'
);

SELECT * FROM finish();
ROLLBACK;
