-- Capture: the four entry points from psql, the design document's queries over what they
-- store, Sentry's event JSON, idempotence, batches, and bad input refused with an SQLSTATE and
-- a message naming the argument.
BEGIN;
SELECT plan(104);
-- Most tests send fixed times from 2024: a window that keeps them. Capture files an event
-- older than errors.retention_days at the time received, tested at the end.
SELECT monitoring.set_setting('errors.retention_days', '36500');

-- The design document's queries ("PostgreSQL Error Tracking" in production-monitoring.md),
-- run verbatim over this data. Times are relative to now(), fixed inside the transaction.
CREATE TEMPORARY TABLE doc_events (
    label text PRIMARY KEY,
    id uuid,
    fingerprint text,
    message text,
    exception_type text,
    stack_trace jsonb,
    context jsonb,
    occurred_at timestamptz
);

CREATE FUNCTION pg_temp.doc_event(
    p_label text, p_fingerprint text, p_type text, p_message text, p_user_id text,
    p_ago interval, p_environment text DEFAULT 'production'
)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_frames jsonb := jsonb_build_array(jsonb_build_object(
        'filename', '/app/shop/' || p_fingerprint || '.py', 'function', 'run', 'lineno', 7
    ));
    v_context jsonb := jsonb_strip_nulls(jsonb_build_object('user_id', p_user_id));
    v_event uuid;
    v_issue bigint;
BEGIN
    SELECT c.event_id, c.issue_id INTO v_event, v_issue
    FROM monitoring.capture_error(
        p_type, p_message, v_frames,
        p_context => v_context,
        p_environment => p_environment,
        p_fingerprint => ARRAY[p_fingerprint],
        p_occurred_at => now() - p_ago
    ) AS c;
    INSERT INTO doc_events
    VALUES (
        p_label, v_event, p_fingerprint, p_message, p_type, v_frames, v_context, now() - p_ago
    );
    RETURN v_issue;
END
$$;

SELECT pg_temp.doc_event(
    'e1', 'payment_timeout_error', 'TimeoutError', 'gateway timed out after 30s', 'u1', '1 hour'
);
SELECT pg_temp.doc_event(
    'e2', 'payment_timeout_error', 'TimeoutError', 'gateway timed out after 30s', 'u1', '2 hours'
);
SELECT pg_temp.doc_event(
    'e3', 'payment_timeout_error', 'TimeoutError', 'gateway timed out after 30s', 'u2', '3 hours'
);
SELECT pg_temp.doc_event(
    'e4', 'payment_timeout_error', 'TimeoutError', 'gateway timed out after 30s', NULL, '30 hours'
);
SELECT pg_temp.doc_event(
    'e5', 'database_connection_error', 'OperationalError', 'could not connect to server', 'u2',
    '1 hour'
);
SELECT pg_temp.doc_event(
    'e6', 'database_connection_error', 'OperationalError', 'could not connect to server', NULL,
    '5 hours'
);
SELECT monitoring.resolve_issue(pg_temp.doc_event(
    'e7', 'known_external_api_issue', 'ApiError', 'upstream returned 503', 'u1',
    '150 minutes'
));
SELECT pg_temp.doc_event(
    'e8', 'payment_timeout_error', 'TimeoutError', 'gateway timed out after 30s', 'u1',
    '90 minutes', 'staging'
);
SELECT pg_temp.doc_event(
    'e9', 'payment_timeout_error', 'TimeoutError', 'gateway timed out after 30s', 'u5', '10 days'
);
SELECT pg_temp.doc_event(
    'e10', 'database_connection_error', 'OperationalError', 'could not connect to server', 'u2',
    '20 hours'
);

SELECT results_eq(
    $$SELECT
    fingerprint,
    COUNT(*) as occurrences,
    MAX(occurred_at) as last_seen,
    MIN(occurred_at) as first_seen
FROM monitoring.errors
WHERE environment = 'production'
  AND resolved_at IS NULL
GROUP BY fingerprint
ORDER BY occurrences DESC;$$,
    $$VALUES
        ('payment_timeout_error', 5::bigint, now() - interval '1 hour', now() - interval '10 days'),
        ('database_connection_error', 3, now() - interval '1 hour', now() - interval '20 hours')$$,
    'design document: errors grouped by fingerprint, production, unresolved'
);

SELECT results_eq(
    $$SELECT
    id,
    fingerprint,
    message,
    exception_type,
    stack_trace,
    context,
    occurred_at
FROM monitoring.errors
WHERE fingerprint = 'payment_timeout_error'
ORDER BY occurred_at DESC
LIMIT 10;$$,
    $$SELECT id, fingerprint, message, exception_type, stack_trace, context, occurred_at
      FROM doc_events WHERE fingerprint = 'payment_timeout_error' ORDER BY occurred_at DESC$$,
    'design document: full stack trace of the payment_timeout_error events, newest first'
);

SELECT skip(
    'design document: the OpenTelemetry correlation query joins monitoring.traces, '
    || 'which does not exist yet',
    1
);

SELECT results_eq(
    $$SELECT
    fingerprint,
    exception_type,
    message,
    COUNT(*) as count,
    MAX(occurred_at) as last_seen
FROM monitoring.errors
WHERE occurred_at > NOW() - INTERVAL '24 hours'
  AND resolved_at IS NULL
GROUP BY fingerprint, exception_type, message
ORDER BY count DESC
LIMIT 10;$$,
    $$VALUES
        ('payment_timeout_error', 'TimeoutError', 'gateway timed out after 30s', 4::bigint,
         now() - interval '1 hour'),
        ('database_connection_error', 'OperationalError', 'could not connect to server', 3,
         now() - interval '1 hour')$$,
    'design document: top errors of the last 24 hours, unresolved'
);

SELECT results_eq(
    $$SELECT
    context->>'user_id' as user_id,
    COUNT(*) as error_count,
    array_agg(DISTINCT exception_type) as error_types
FROM monitoring.errors
WHERE occurred_at > NOW() - INTERVAL '7 days'
GROUP BY context->>'user_id'
ORDER BY error_count DESC
LIMIT 20;$$,
    $$VALUES
        ('u1', 4::bigint, ARRAY['ApiError', 'TimeoutError']),
        ('u2', 3, ARRAY['OperationalError', 'TimeoutError']),
        (NULL, 2, ARRAY['OperationalError', 'TimeoutError'])$$,
    'design document: errors by user (context->>''user_id'') over 7 days'
);

SELECT results_eq(
    $$SELECT
    date_trunc('hour', occurred_at) as hour,
    COUNT(*) as error_count
FROM monitoring.errors
WHERE occurred_at > NOW() - INTERVAL '24 hours'
GROUP BY hour
ORDER BY hour;$$,
    $$SELECT date_trunc('hour', now() - ago), count(*)
      FROM (VALUES (interval '1 hour'), ('2 hours'), ('3 hours'), ('1 hour'), ('5 hours'),
          ('150 minutes'), ('90 minutes'), ('20 hours')) AS v (ago)
      GROUP BY 1 ORDER BY 1$$,
    'design document: hourly error rate over 24 hours'
);

SELECT is(
    monitoring.issue_id('payment_timeout_error', 'production'),
    (
        SELECT i.id FROM monitoring.issues AS i
        WHERE i.fingerprint = 'payment_timeout_error' AND i.environment = 'production'
    ),
    'design document: resolve_error(fingerprint=...) finds its issue with issue_id'
);

-- capture_error with structured frames.
CREATE TEMPORARY TABLE captured (label text PRIMARY KEY, event_id uuid, issue_id bigint);
-- what was stored for each capture, by label
CREATE TEMPORARY VIEW stored AS
SELECT
    c.label,
    e.*
FROM captured AS c INNER JOIN monitoring.errors AS e ON c.event_id = e.id;
CREATE TEMPORARY VIEW stored_issue AS
SELECT
    c.label,
    i.*
FROM captured AS c INNER JOIN monitoring.issues AS i ON c.issue_id = i.id;

INSERT INTO captured
SELECT
    'frames' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_error(
    'ValueError', 'quantity must be positive, got -3',
    '[{"filename": "/app/cart.py", "function": "add", "lineno": 20,
       "context_line": "raise ValueError(msg)"}]'::jsonb,
    p_context => '{"cart_id": 7}',
    p_release => 'shop@2.0.0',
    p_tags => '{"region": "eu"}',
    p_user => '{"id": "42"}',
    p_trace_id => '4bf92f3577b34da6a3ce929d0e0e4736',
    p_span_id => '00f067aa0ba902b7',
    p_occurred_at => '2024-03-01 12:00:00+00'
) AS c;

SELECT results_eq(
    $$SELECT e.exception_type, e.message, e.level, e.environment, e.service, e.release,
          e.context, e.tags, e.user_info, e.trace_id, e.span_id, e.occurred_at
      FROM stored AS e
      WHERE e.label = 'frames'$$,
    $$VALUES ('ValueError', 'quantity must be positive, got -3', 'error', 'production',
          'default', 'shop@2.0.0', '{"cart_id": 7}'::jsonb, '{"region": "eu"}'::jsonb,
          '{"id": "42"}'::jsonb, '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7',
          '2024-03-01 12:00:00+00'::timestamptz)$$,
    'capture_error stores the event with the defaults for environment, service and level'
);
SELECT is(
    (
        SELECT e.stack_trace
        FROM stored AS e
        WHERE e.label = 'frames'
    ),
    '[{"filename": "/app/cart.py", "function": "add", "lineno": 20,
       "context_line": "raise ValueError(msg)"}]'::jsonb,
    'capture_error stores the frames it was given'
);
SELECT results_eq(
    $$SELECT i.title, i.culprit, i.exception_type, i.level, i.first_release, i.status,
          i.fingerprint_source
      FROM stored_issue AS i
      WHERE i.label = 'frames'$$,
    $$VALUES ('ValueError: quantity must be positive, got -3', 'cart.py in add', 'ValueError',
          'error', 'shop@2.0.0', 'unresolved', 'stacktrace')$$,
    'the new issue has a title, a culprit, the first release and status unresolved'
);
SELECT results_eq(
    $$SELECT h.action, h.actor, h.data ->> 'event_id'
      FROM monitoring.issue_history AS h INNER JOIN captured AS c ON h.issue_id = c.issue_id
      WHERE c.label = 'frames'$$,
    $$SELECT 'first_seen', NULL::text, event_id::text FROM captured WHERE label = 'frames'$$,
    'a new issue records its first_seen, by no actor'
);

-- capture_error with a Python traceback as text, and with JSON as text.
INSERT INTO captured
SELECT
    'traceback' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_error(
    NULL, NULL,
    $tb$Traceback (most recent call last):
  File "/app/shop/cart.py", line 12, in total
    return sum(prices[i] for i in items)
  File "/app/shop/cart.py", line 12, in <genexpr>
    return sum(prices[i] for i in items)
KeyError: 'sku-991'
$tb$
) AS c;

SELECT results_eq(
    $$SELECT e.exception_type, e.message,
          jsonb_path_query_array(e.stack_trace, '$[*].function')
      FROM stored AS e
      WHERE e.label = 'traceback'$$,
    $$VALUES ('KeyError', '''sku-991''', '["total", "<genexpr>"]'::jsonb)$$,
    'capture_error(text) parses a Python traceback: type, value and frames'
);
INSERT INTO captured
SELECT
    'typed traceback' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_error(
    'PriceError', 'no price for sku-991',
    E'Traceback (most recent call last):\n  File "/app/p.py", line 1, in f\n'
    || E'    g()\nKeyError: ''sku-991''\n'
) AS c;
SELECT is(
    (
        SELECT e.exception_type || ': ' || e.message
        FROM stored AS e
        WHERE e.label = 'typed traceback'
    ),
    'PriceError: no price for sku-991',
    'p_exception_type and p_message override what the traceback says'
);
INSERT INTO captured
SELECT
    'json text' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_error(
    'JsonError', 'frames as text',
    E'\n  [{"filename": "/app/j.py", "function": "load"}]\n'::text
) AS c;
SELECT is(
    (
        SELECT e.stack_trace
        FROM stored AS e
        WHERE e.label = 'json text'
    ),
    '[{"filename": "/app/j.py", "function": "load"}]'::jsonb,
    'capture_error(text) takes JSON text as JSON'
);
INSERT INTO captured
SELECT
    'values' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_error(
    NULL, NULL,
    '{"values": [{"type": "OSError", "value": "disk full",
        "stacktrace": {"frames": [{"filename": "/app/io.py", "function": "write"}]}},
      {"type": "SaveError", "value": "could not save",
        "stacktrace": {"frames": [{"filename": "/app/save.py", "function": "save"}]}}]}'::jsonb
) AS c;
SELECT results_eq(
    $$SELECT e.exception_type, e.message, jsonb_path_query_array(e.exceptions, '$[*].type')
      FROM stored AS e
      WHERE e.label = 'values'$$,
    $$VALUES ('SaveError', 'could not save', '["OSError", "SaveError"]'::jsonb)$$,
    'capture_error takes a chain as {"values": [...]}, root cause first'
);

-- capture_message.
INSERT INTO captured
SELECT
    'message' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_message('Nightly export finished late', p_service => 'exporter') AS c;
SELECT results_eq(
    $$SELECT e.message, e.level, e.exception_type, e.exceptions, e.stack_trace, e.service
      FROM stored AS e
      WHERE e.label = 'message'$$,
    $$VALUES ('Nightly export finished late', 'info', NULL::text, NULL::jsonb, NULL::jsonb,
          'exporter')$$,
    'capture_message stores a message at level info, without exceptions'
);
SELECT is(
    (
        SELECT i.title || ' / ' || i.fingerprint_source
        FROM stored_issue AS i
        WHERE i.label = 'message'
    ),
    'Nightly export finished late / message',
    'a message issue is titled by its message'
);
INSERT INTO captured
SELECT
    'warn' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_message('disk 91% full', p_level => ' WARN ') AS c;
INSERT INTO captured
SELECT
    'critical' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_message('disk 100% full', p_level => 'Critical') AS c;
SELECT results_eq(
    $$SELECT e.level FROM stored AS e
      WHERE e.label IN ('warn', 'critical') ORDER BY e.label DESC$$,
    $$VALUES ('warning'), ('fatal')$$,
    'levels are read in any case, and warn and critical are Python names for warning and fatal'
);

-- Defaults from the settings; client clocks ahead.
SELECT monitoring.set_setting('errors.default_environment', '"development"');
SELECT monitoring.set_setting('errors.default_service', '"shop"');
INSERT INTO captured
SELECT
    'defaults' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_message('from the future', p_occurred_at => now() + interval '1 day') AS c;
SELECT results_eq(
    $$SELECT e.environment, e.service, e.occurred_at
      FROM stored AS e
      WHERE e.label = 'defaults'$$,
    $$VALUES ('development', 'shop', now())$$,
    'environment and service default to the settings; a time in the future is taken as now'
);
SELECT monitoring.reset_setting('errors.default_environment');
SELECT monitoring.reset_setting('errors.default_service');

-- capture_event: the JSON Sentry SDKs send.
CREATE TEMPORARY TABLE sentry (doc jsonb);
INSERT INTO sentry VALUES ($json${
  "event_id": "fc6d8c0c43fc4630ad850ee518f1b9d0",
  "timestamp": "2024-03-01T12:30:45.123456Z",
  "level": "warning",
  "platform": "python",
  "release": "shop@1.4.2",
  "environment": "staging",
  "server_name": "web-3",
  "transaction": "/checkout",
  "tags": {"region": "eu-west-1", "service": "checkout-api"},
  "user": {"id": "42", "email": "ann@example.com", "ip_address": "10.0.0.7"},
  "extra": {"order_id": 1001, "user_id": "42"},
  "contexts": {
    "trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
              "op": "http.server"},
    "os": {"name": "Linux"}
  },
  "breadcrumbs": {"values": [
    {"timestamp": "2024-03-01T12:30:44Z", "type": "http", "category": "httplib",
     "message": "POST /charge", "level": "info", "data": {"status_code": 504}}
  ]},
  "logentry": {"message": "Payment for order %s failed", "params": ["1001"],
               "formatted": "Payment for order 1001 failed"},
  "exception": {"values": [
    {"type": "ReadTimeout", "value": "HTTPSConnectionPool: Read timed out.",
     "module": "requests.exceptions", "mechanism": {"type": "chained", "handled": true},
     "stacktrace": {"frames": [
       {"filename": "requests/adapters.py", "module": "requests.adapters", "function": "send",
        "abs_path": "/srv/venv/lib/python3.11/site-packages/requests/adapters.py",
        "lineno": 532, "context_line": "raise ReadTimeout(e, request=request)",
        "in_app": false}]}},
    {"type": "PaymentTimeout", "value": "payment gateway timed out", "module": "shop.errors",
     "mechanism": {"type": "django", "handled": false},
     "stacktrace": {"frames": [
       {"filename": "shop/views.py", "abs_path": "/app/shop/views.py", "module": "shop.views",
        "function": "checkout", "lineno": 10, "context_line": "    charge(order)",
        "pre_context": ["def checkout(request):"], "post_context": [],
        "vars": {"order": "<Order 1001>"}, "in_app": true},
       {"filename": "shop/payments.py", "abs_path": "/app/shop/payments.py",
        "module": "shop.payments", "function": "charge", "lineno": 42,
        "context_line": "raise PaymentTimeout(...) from exc", "in_app": true}]}}
  ]},
  "sdk": {"name": "sentry.python", "version": "2.19.0"},
  "request": {"url": "https://shop.example.com/checkout", "method": "POST"}
}$json$);

INSERT INTO captured
SELECT
    'sentry' AS label,
    c.event_id,
    c.issue_id
FROM sentry AS s CROSS JOIN LATERAL monitoring.capture_event(s.doc) AS c;

SELECT is(
    (
        SELECT event_id FROM captured
        WHERE label = 'sentry'
    ),
    'fc6d8c0c-43fc-4630-ad85-0ee518f1b9d0'::uuid,
    'capture_event keeps the SDK''s event_id'
);
SELECT results_eq(
    $$SELECT e.occurred_at, e.level, e.platform, e.release, e.environment, e.service,
          e.server_name, e.transaction_name, e.trace_id, e.span_id
      FROM stored AS e
      WHERE e.label = 'sentry'$$,
    $$VALUES ('2024-03-01 12:30:45.123456+00'::timestamptz, 'warning', 'python', 'shop@1.4.2',
          'staging', 'checkout-api', 'web-3', '/checkout', '4bf92f3577b34da6a3ce929d0e0e4736',
          '00f067aa0ba902b7')$$,
    'capture_event reads time, level, platform, release, environment, service (a tag), '
    || 'server, transaction and contexts.trace'
);
SELECT results_eq(
    $$SELECT e.tags, e.user_info, e.context, e.breadcrumbs
      FROM stored AS e
      WHERE e.label = 'sentry'$$,
    $$SELECT s.doc -> 'tags', s.doc -> 'user', s.doc -> 'extra', s.doc -> 'breadcrumbs' -> 'values'
      FROM sentry AS s$$,
    'capture_event stores tags, user, extra (as the context) and breadcrumbs.values'
);
SELECT is(
    (
        SELECT e.context ->> 'user_id'
        FROM stored AS e
        WHERE e.label = 'sentry'
    ),
    '42',
    'the design document''s context->>''user_id'' reads extra.user_id of a Sentry event'
);
SELECT results_eq(
    $$SELECT e.exception_type, e.message, jsonb_path_query_array(e.exceptions, '$[*].type'),
          e.exceptions -> 1 -> 'mechanism', e.exceptions -> 0 ->> 'module'
      FROM stored AS e
      WHERE e.label = 'sentry'$$,
    $$VALUES ('PaymentTimeout', 'payment gateway timed out',
          '["ReadTimeout", "PaymentTimeout"]'::jsonb,
          '{"type": "django", "handled": false}'::jsonb, 'requests.exceptions')$$,
    'capture_event stores the chain root cause first; the raised exception names the event'
);
SELECT is(
    (
        SELECT e.stack_trace
        FROM stored AS e
        WHERE e.label = 'sentry'
    ),
    (SELECT s.doc #> '{exception,values,1,stacktrace,frames}' FROM sentry AS s),
    'stack_trace holds the raised exception''s frames as sent, local variables included'
);
SELECT ok(
    (
        SELECT
            e.data ?& ARRAY['sdk', 'request', 'contexts']
            AND NOT e.data ?| ARRAY[
                'event_id', 'timestamp', 'exception', 'logentry', 'tags', 'user', 'extra',
                'breadcrumbs'
            ]
        FROM stored AS e
        WHERE e.label = 'sentry'
    ),
    'the rest of the event (sdk, request, contexts) is kept in data, nothing twice'
);
SELECT results_eq(
    $$SELECT i.title, i.culprit, i.platform, i.level
      FROM stored_issue AS i
      WHERE i.label = 'sentry'$$,
    $$VALUES ('PaymentTimeout: payment gateway timed out', '/checkout', 'python', 'warning')$$,
    'a Sentry event''s issue is titled by its exception and placed by its transaction'
);

INSERT INTO captured
SELECT
    'logentry' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_event('{
    "event_id": "0b1c7a3e-2f4d-4c55-9a8e-1f2e3d4c5b6a",
    "timestamp": 1709296245.5,
    "logentry": {"message": "Cache %s is cold", "params": ["users"]},
    "tags": [["cache", "users"], ["region", "eu"], "junk"],
    "breadcrumbs": [{"message": "warm-up started"}]
}'::jsonb) AS c;
SELECT results_eq(
    $$SELECT e.occurred_at, e.message, e.level, e.exception_type, e.tags, e.breadcrumbs,
          e.environment, e.service
      FROM stored AS e
      WHERE e.label = 'logentry'$$,
    $$VALUES ('2024-03-01 12:30:45.5+00'::timestamptz, 'Cache %s is cold', 'error', NULL::text,
          '{"cache": "users", "region": "eu"}'::jsonb, '[{"message": "warm-up started"}]'::jsonb,
          'production', 'default')$$,
    'a logentry event: numeric timestamp, tags as pairs, breadcrumbs as a plain array'
);

CREATE TEMPORARY TABLE messages AS
SELECT
    (SELECT c.event_id FROM monitoring.capture_event('{"message": "plain text"}'::jsonb) AS c)
        AS plain,
    (
        SELECT c.event_id
        FROM monitoring.capture_event('{"message": {"formatted": "formatted text"}}'::jsonb) AS c
    ) AS formatted;
SELECT results_eq(
    $$SELECT e.message FROM monitoring.errors AS e INNER JOIN messages AS m
          ON e.id IN (m.plain, m.formatted)
      ORDER BY e.id = m.formatted$$,
    $$VALUES ('plain text'), ('formatted text')$$,
    'a message may also come as a string or as {"formatted": ...}'
);

-- Timestamps, with and without a zone, read in another session time zone.
SET LOCAL timezone = 'America/New_York';
CREATE TEMPORARY TABLE stamps (sent jsonb, event_id uuid);
INSERT INTO stamps
SELECT
    v.sent,
    (
        SELECT c.event_id
        FROM monitoring.capture_event(jsonb_build_object('timestamp', v.sent, 'message', 'stamp'))
            AS c
    ) AS event_id
FROM (
    VALUES
    ('"2024-03-01T12:30:45Z"'::jsonb),
    ('"2024-03-01T12:30:45"'),
    ('"2024-03-01 12:30:45.250"'),
    ('"2024-03-01T14:30:45+02:00"'),
    ('"2024-03-01T07:30:45-0500"'),
    ('"2024-03-01"'),
    ('1709296245')
) AS v (sent);
SELECT set_eq(
    $$SELECT s.sent, e.occurred_at FROM stamps AS s
      INNER JOIN monitoring.errors AS e ON s.event_id = e.id$$,
    $$VALUES
        ('"2024-03-01"'::jsonb, '2024-03-01 00:00:00+00'::timestamptz),
        ('1709296245', '2024-03-01 12:30:45+00'),
        ('"2024-03-01T07:30:45-0500"', '2024-03-01 12:30:45+00'),
        ('"2024-03-01T12:30:45"', '2024-03-01 12:30:45+00'),
        ('"2024-03-01T12:30:45Z"', '2024-03-01 12:30:45+00'),
        ('"2024-03-01T14:30:45+02:00"', '2024-03-01 12:30:45+00'),
        ('"2024-03-01 12:30:45.250"', '2024-03-01 12:30:45.25+00')$$,
    'string timestamps with a zone keep it, without one they are UTC; numbers are Unix time'
);
RESET timezone;

-- Idempotence: an event sent again (same event_id and timestamp) is stored and counted once.
CREATE TEMPORARY TABLE resent (event_id uuid, issue_id bigint);
INSERT INTO resent
SELECT
    c.event_id,
    c.issue_id
FROM sentry AS s CROSS JOIN LATERAL monitoring.capture_event(
    s.doc || '{"event_id": "aaaaaaaa-0000-4000-8000-000000000001", "environment": "resend"}'
) AS c;
INSERT INTO resent
SELECT
    c.event_id,
    c.issue_id
FROM sentry AS s CROSS JOIN LATERAL monitoring.capture_event(
    s.doc || '{"event_id": "aaaaaaaa-0000-4000-8000-000000000001", "environment": "resend"}'
) AS c;
SELECT is(
    (SELECT count(DISTINCT r.event_id::text || '/' || r.issue_id)::integer FROM resent AS r),
    1,
    'an event sent twice returns the same event id and issue both times'
);
SELECT results_eq(
    $$SELECT count(*)::integer, min(i.times_seen)::integer
      FROM monitoring.errors AS e INNER JOIN monitoring.issues AS i ON e.issue_id = i.id
      WHERE e.environment = 'resend'$$,
    $$VALUES (1, 1)$$,
    'an event sent twice is stored once and counted once'
);
INSERT INTO resent
SELECT
    c.event_id,
    c.issue_id
FROM sentry AS s CROSS JOIN LATERAL monitoring.capture_event(
    s.doc || '{"event_id": "aaaaaaaa-0000-4000-8000-000000000001", "environment": "resend-2",
        "exception": null, "logentry": {"formatted": "grouped differently now"}}'
) AS c;
SELECT is(
    (SELECT count(DISTINCT r.event_id::text || '/' || r.issue_id)::integer FROM resent AS r),
    1,
    'an event sent again that would now group elsewhere still names the issue it is stored in'
);
SELECT is_empty(
    $$SELECT FROM monitoring.issues WHERE environment = 'resend-2'$$,
    'an event sent again creates no issue'
);
SELECT results_eq(
    $$SELECT count(*)::integer FROM (
          SELECT monitoring.capture_error(
              'E', 'retry', p_event_id => 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6',
              p_occurred_at => '2024-03-02 08:00:00+00'
          )
          FROM generate_series(1, 3)
      ) AS three_times$$,
    $$VALUES (3)$$,
    'capture_error sent three times with one p_event_id and p_occurred_at ...'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors AS e
        WHERE e.id = 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'
    ),
    1,
    '... is stored once'
);

-- capture_events: a batch.
CREATE TEMPORARY TABLE batch AS
SELECT
    c.*,
    row_number() OVER () AS n
FROM monitoring.capture_events('[
    {"event_id": "11111111-1111-1111-1111-111111111111", "message": "batch one",
     "timestamp": "2024-03-03T10:00:00Z"},
    {"event_id": "22222222-2222-2222-2222-222222222222", "message": "batch two",
     "timestamp": "2024-03-03T10:00:01Z"},
    {"event_id": "33333333-3333-3333-3333-333333333333", "message": "batch one",
     "timestamp": "2024-03-03T10:00:02Z"},
    {"event_id": "11111111-1111-1111-1111-111111111111", "message": "batch one",
     "timestamp": "2024-03-03T10:00:00Z"}
]'::jsonb) AS c;
SELECT results_eq(
    'SELECT event_id FROM batch ORDER BY n',
    $$VALUES ('11111111-1111-1111-1111-111111111111'::uuid),
        ('22222222-2222-2222-2222-222222222222'), ('33333333-3333-3333-3333-333333333333'),
        ('11111111-1111-1111-1111-111111111111')$$,
    'capture_events returns one row per event, in order'
);
SELECT ok(
    (
        SELECT b1.issue_id = b3.issue_id AND b1.issue_id <> b2.issue_id
        FROM batch AS b1, batch AS b2, batch AS b3
        WHERE b1.n = 1 AND b2.n = 2 AND b3.n = 3
    ),
    'each row of a batch names the issue of its event'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.errors AS e
        WHERE e.message LIKE 'batch %'
    ),
    3,
    'an event repeated within a batch is stored once'
);
SELECT throws_ok(
    $$SELECT * FROM monitoring.capture_events('[
        {"event_id": "44444444-4444-4444-4444-444444444444", "message": "fine"},
        {"message": "bad", "level": "loud"}]'::jsonb)$$,
    '22023',
    'event 1 of the batch: p_events[1].level must be one of fatal, error, warning, info, '
    || 'debug; not ''loud''',
    'a bad event fails the batch with an error naming its index'
);
SELECT is_empty(
    $$SELECT FROM monitoring.errors WHERE id = '44444444-4444-4444-4444-444444444444'$$,
    'a failed batch stores none of its events'
);
SELECT throws_ok(
    $$SELECT * FROM monitoring.capture_events('[{"message": "fine"}, [1]]'::text)$$,
    '22023',
    'event 1 of the batch: p_events[1] must be a JSON object, not array',
    'capture_events(text) names the failing index too'
);
SELECT is_empty(
    $$SELECT * FROM monitoring.capture_events('[]'::jsonb)$$,
    'an empty batch returns no rows'
);
SELECT throws_ok(
    $$SELECT * FROM monitoring.capture_events('{"message": "x"}'::jsonb)$$,
    '22023',
    'p_events must be a JSON array, not object',
    'a batch that is no array is refused'
);

-- JSON text that jsonb refuses: \u0000 and unpaired surrogates become U+FFFD.
SELECT is(
    monitoring.parse_json('{"m": "a\u0000b \ud800c \udc00d \ud83d\ude00"}'),
    jsonb_build_object(
        'm', 'a' || chr(65533) || 'b ' || chr(65533) || 'c ' || chr(65533)
        || 'd ' || chr(128512)
    ),
    'parse_json makes NUL and lone surrogates U+FFFD and keeps a surrogate pair'
);
INSERT INTO captured
SELECT
    'nul' AS label,
    c.event_id,
    c.issue_id
FROM monitoring.capture_event(
    '{"message": "nul \u0000 here", "extra": {"k\u0000": "\udfff"}}'::text
) AS c;
SELECT results_eq(
    $$SELECT e.message, e.context
      FROM stored AS e
      WHERE e.label = 'nul'$$,
    $$VALUES ('nul ' || chr(65533) || ' here',
          jsonb_build_object('k' || chr(65533), chr(65533)))$$,
    'capture_event(text) stores an event with NUL and lone surrogates, sanitised'
);
SELECT is(
    (
        SELECT count(*)::integer
        FROM monitoring.capture_events('[{"message": "nul \u0000 in a batch"}]'::text)
    ),
    1,
    'capture_events(text) sanitises too'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_event('{"message": "nul \u0000"}'::jsonb)$$,
    '22P05',
    NULL,
    'as jsonb the same text is refused by PostgreSQL itself, before capture_event runs'
);

-- Bad input: invalid_parameter_value and a message naming the argument.
SELECT throws_ok(t.sql, '22023', t.message, t.what)
FROM (
    VALUES
    (
        $$SELECT monitoring.capture_error('E', 'm', p_context => '[1]')$$,
        'p_context must be a JSON object, not array',
        'capture_error: p_context must be an object'
    ),
    (
        $$SELECT monitoring.capture_error('E', 'm', p_tags => '"prod"')$$,
        'p_tags must be a JSON object, not string',
        'capture_error: p_tags must be an object'
    ),
    (
        $$SELECT monitoring.capture_error('E', 'm', p_user => '42')$$,
        'p_user must be a JSON object, not number',
        'capture_error: p_user must be an object'
    ),
    (
        $$SELECT monitoring.capture_error('E', 'm', p_breadcrumbs => '{"values": []}')$$,
        'p_breadcrumbs must be a JSON array, not object',
        'capture_error: p_breadcrumbs must be an array'
    ),
    (
        $$SELECT monitoring.capture_error('E', 'm', p_level => 'loud')$$,
        'p_level must be one of fatal, error, warning, info, debug; not ''loud''',
        'capture_error: p_level must be a known level'
    ),
    (
        $$SELECT monitoring.capture_error('E', 'm', '42'::jsonb)$$,
        'p_stack_trace must be frames, {"frames": [...]}, {"values": [...]} or traceback text, '
        || 'not a JSON number',
        'capture_error: p_stack_trace of the wrong type'
    ),
    (
        $$SELECT monitoring.capture_error('E', 'm', '{"values": "x"}'::jsonb)$$,
        'p_stack_trace.values must be a JSON array, not string',
        'capture_error: p_stack_trace.values must be an array'
    ),
    (
        $$SELECT monitoring.capture_error('E', 'm', '{"frames": "x"}'::jsonb)$$,
        'p_stack_trace must hold objects, each with frames as an array',
        'capture_error: frames must be an array'
    ),
    (
        $$SELECT monitoring.capture_message('m', p_context => 'true')$$,
        'p_context must be a JSON object, not boolean',
        'capture_message: p_context must be an object'
    ),
    (
        $$SELECT monitoring.capture_event('[]'::jsonb)$$,
        'p_event must be a JSON object, not array',
        'capture_event: the event must be an object'
    ),
    (
        $$SELECT monitoring.capture_event('{"level": "verbose"}'::jsonb)$$,
        'p_event.level must be one of fatal, error, warning, info, debug; not ''verbose''',
        'capture_event: p_event.level must be a known level'
    ),
    (
        $$SELECT monitoring.capture_event('{"tags": "a,b"}'::jsonb)$$,
        'p_event.tags must be a JSON object, not string',
        'capture_event: p_event.tags must be an object or pairs'
    ),
    (
        $$SELECT monitoring.capture_event('{"user": ["u1"]}'::jsonb)$$,
        'p_event.user must be a JSON object, not array',
        'capture_event: p_event.user must be an object'
    ),
    (
        $$SELECT monitoring.capture_event('{"extra": 1}'::jsonb)$$,
        'p_event.extra must be a JSON object, not number',
        'capture_event: p_event.extra must be an object'
    ),
    (
        $$SELECT monitoring.capture_event('{"context": [], "extra": {}}'::jsonb)$$,
        'p_event.context must be a JSON object, not array',
        'capture_event: p_event.context, which wins over extra, is named when it is wrong'
    ),
    (
        $$SELECT monitoring.capture_event('{"breadcrumbs": "b"}'::jsonb)$$,
        'p_event.breadcrumbs must be a JSON array, not string',
        'capture_event: p_event.breadcrumbs must be an array or {"values": [...]}'
    ),
    (
        $$SELECT monitoring.capture_event('{"exception": {"values": {"type": "E"}}}'::jsonb)$$,
        'p_event.exception.values must be a JSON array, not object',
        'capture_event: p_event.exception.values must be an array'
    ),
    (
        $$SELECT monitoring.capture_event('{"exception": {"values": ["E"]}}'::jsonb)$$,
        'p_event.exception.values must hold objects, each with frames as an array',
        'capture_event: p_event.exception.values must hold objects'
    ),
    (
        $$SELECT monitoring.capture_event('{"fingerprint": "fp"}'::jsonb)$$,
        'p_event.fingerprint must be a JSON array, not string',
        'capture_event: p_event.fingerprint must be an array'
    ),
    (
        $$SELECT monitoring.capture_event('{"event_id": 42}'::jsonb)$$,
        'p_event.event_id must be a UUID string (32 hex digits), not 42',
        'capture_event: p_event.event_id must be a string'
    ),
    (
        $$SELECT monitoring.capture_event('{"event_id": "not-a-uuid"}'::jsonb)$$,
        'p_event.event_id must be a UUID string (32 hex digits), not "not-a-uuid"',
        'capture_event: p_event.event_id must be a UUID'
    ),
    (
        $$SELECT monitoring.capture_event('{"timestamp": true}'::jsonb)$$,
        'p_event.timestamp must be a JSON string or number, not boolean',
        'capture_event: p_event.timestamp must be a string or a number'
    )
) AS t (sql, message, what);

-- Nothing to capture.
SELECT throws_ok(
    $$SELECT monitoring.capture_event(NULL::jsonb)$$,
    '22004', 'p_event must not be null',
    'capture_event: NULL is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_error(NULL, NULL)$$,
    '22004', 'capture_error needs p_exception_type, p_message or p_stack_trace',
    'capture_error with neither type, message nor stack is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_error(NULL, ' ')$$,
    '22004', 'capture_error needs p_exception_type, p_message or p_stack_trace',
    'capture_error with a blank message and nothing else is refused'
);
SELECT lives_ok(
    $$SELECT monitoring.capture_error('ShutdownRequested', NULL)$$,
    'capture_error with a type alone is enough'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_message(NULL)$$,
    '22004', 'p_message must not be empty',
    'capture_message(NULL) is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_message('')$$,
    '22004', 'p_message must not be empty',
    'capture_message('''') is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_message(E' \n ')$$,
    '22004', 'p_message must not be empty',
    'capture_message of whitespace is refused'
);

-- Odd but harmless input is stored, not refused.
SELECT lives_ok(
    $$SELECT monitoring.capture_error('E', 'm', '[{"filename": "a.py", "in_app": "maybe"},
        {"filename": "b.py", "in_app": {}}, 7, null]'::jsonb)$$,
    'frames with an in_app that is no boolean, or that are no objects, do not fail a capture'
);
SELECT lives_ok(
    $$SELECT monitoring.capture_event('{"message": "m", "contexts": "none", "release": 1.5,
        "exception": {"values": null}, "tags": [["only-key"]], "event_id": ""}'::jsonb)$$,
    'contexts of the wrong type, a numeric release, null values and an empty event_id pass'
);


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
        SELECT g.fingerprint FROM monitoring.error_groups AS g
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
        SELECT g.id FROM monitoring.error_groups AS g
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
    SELECT g.fingerprint FROM memo_frames AS m, monitoring.error_groups AS g
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
        SELECT FROM monitoring.error_groups AS g
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
        SELECT g.id FROM monitoring.error_groups AS g
        WHERE g.service = 'memo-order'
    ),
    'the same frames in another order are another issue (the memo key is no jsonb_hash_extended)'
);

CREATE TEMPORARY TABLE null_values AS
SELECT c.event_id FROM monitoring.capture_error('NullValues', 'm', '{"values": null}'::jsonb) AS c;
SELECT is(
    (
        SELECT e.exception_type || ': ' || e.message
        FROM monitoring.errors AS e INNER JOIN null_values AS n ON e.id = n.event_id
    ),
    'NullValues: m',
    'a stack trace of {"values": null} lists no exception: the type and message are captured'
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
SELECT throws_ok(
    $$SELECT monitoring.capture_event('{"message": "m", "timestamp": "-infinity"}')$$,
    '22023',
    'p_event.timestamp must be an RFC 3339 date and time, like 2024-01-15T10:30:00Z, '
    'not ''-infinity''',
    'a timestamp string PostgreSQL reads but no SDK sends ("-infinity") is refused by name'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_event('{"message": "m", "timestamp": "2024-02-30T10:00:00Z"}')$$,
    '22023',
    'p_event.timestamp is no valid date and time: ''2024-02-30T10:00:00Z''',
    'an impossible date is refused by name, not with a bare cast error'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_event('{"message": "m", "timestamp": 1e20}')$$,
    '22023',
    'p_event.timestamp must be seconds since 1970-01-01 UTC, not 100000000000000000000',
    'a number that is no Unix time is refused by name'
);

-- Event fields that must be text: a scalar is read as text, as Sentry does; an object or
-- array is refused by name, not stored as its JSON.
SELECT throws_ok(
    $$SELECT monitoring.capture_event('{"message": "m", "environment": {}}')$$,
    '22023', 'p_event.environment must be a JSON string, not object',
    'an environment that is an object is refused by name'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_event(
        '{"message": "m", "contexts": {"trace": {"trace_id": ["x"]}}}'
    )$$,
    '22023', 'p_event.contexts.trace.trace_id must be a JSON string, not array',
    'a trace id that is an array is refused by its path'
);
SELECT throws_ok(
    $$SELECT * FROM monitoring.capture_events(
        '[{"message": "a"}, {"message": "b", "server_name": {"host": "web-1"}}]'::jsonb
    )$$,
    '22023', 'event 1 of the batch: p_events[1].server_name must be a JSON string, not object',
    'in a batch the error names the event and its field'
);

-- Stack trace text that is no Python traceback is kept to read; it does not group.
CREATE TEMPORARY TABLE java_trace AS
SELECT
    (monitoring.capture_error(
        'IllegalStateException', 'boom',
        E'java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add(Cart.java:42)\n'
        '\tat com.shop.Api.post(Api.java:7)\nAuthorization: Bearer abc.def.ghi'
    )).issue_id AS first,
    (monitoring.capture_error(
        'IllegalStateException', 'boom',
        E'java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add(Cart.java:43)'
    )).issue_id AS second;
SELECT is(
    (
        SELECT e.exceptions
        FROM monitoring.error_events AS e INNER JOIN java_trace AS j ON e.group_id = j.first
        ORDER BY length(e.exceptions::text) DESC LIMIT 1
    ),
    jsonb_build_array(jsonb_build_object(
        'type', 'IllegalStateException', 'value', 'boom',
        'raw_stacktrace', E'java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add('
        'Cart.java:42)\n\tat com.shop.Api.post(Api.java:7)\nAuthorization: Bearer [Filtered]'
    )),
    'a stack trace that is no Python traceback is kept as raw_stacktrace, scrubbed'
);
SELECT is(
    (SELECT first = second FROM java_trace),
    TRUE,
    'two such traces of one type and message are one issue: the text does not group'
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
        FROM monitoring.error_group_counts AS c
        WHERE c.group_id = (SELECT m.long_id FROM context_users_more AS m)
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
