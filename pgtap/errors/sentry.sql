-- Sentry's event JSON: capture_event as SDKs send it, timestamps, an SDK's retries stored
-- once, capture_events batches, JSON text jsonb refuses, and fields of the wrong shape.
BEGIN;
SELECT plan(36);
-- Most tests send fixed times from 2024: a window that keeps them. Capture files an event
-- older than errors.retention_days at the time received (ingest.sql tests it).
SELECT monitoring.set_setting('errors.retention_days', '36500');

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
-- What SDKs send is cast directly, the rest after a look at each field (sentry.sql): both
-- ways give the same time. Day 29 and later, and hour 24, take the second way.
SELECT is(
    (
        SELECT array_agg(monitoring._sent_timestamp(t.sent, 't') ORDER BY t.ord)
        FROM unnest(ARRAY[
            '2024-02-28T23:59:59.999999Z', '2024-02-29T10:00:00Z', '2024-01-31 10:00:00',
            '2024-03-01T07:30:45.5-05', '2024-03-01t12:30:45z', '2024-03-01T24:00:00',
            '2024-03-01T13:30:45.5+0100', '2024-03-01T12:30'
        ]) WITH ORDINALITY AS t (sent, ord)
    ),
    ARRAY[
        '2024-02-28 23:59:59.999999+00', '2024-02-29 10:00:00+00', '2024-01-31 10:00:00+00',
        '2024-03-01 12:30:45.5+00', '2024-03-01 12:30:45+00', '2024-03-02 00:00:00+00',
        '2024-03-01 12:30:45.5+00', '2024-03-01 12:30:00+00'
    ]::timestamptz[],
    'times with and without a zone, on the direct way and the checked one, read alike'
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

SELECT * FROM finish();
ROLLBACK;
