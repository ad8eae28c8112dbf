-- Capture from psql: capture_error and capture_message, the design document's queries over
-- what they store, and bad input refused with an SQLSTATE and a message naming the argument.
BEGIN;
SELECT plan(53);
-- Most tests send fixed times from 2024: a window that keeps them. Capture files an event
-- older than errors.retention_days at the time received (ingest.sql tests it).
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
        FROM monitoring.error_events AS e INNER JOIN java_trace AS j ON e.issue_id = j.first
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

SELECT * FROM finish();
ROLLBACK;
