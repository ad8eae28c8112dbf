-- record_logs and reading logs: records stored with their severity, trace and span; bodies
-- and attributes scrubbed and bounded; bad records refused one by one; found by words, trace,
-- severity and time; partitions and retention.
BEGIN;
SELECT plan(16);

CREATE TEMPORARY TABLE answers (name text PRIMARY KEY, answer jsonb);

INSERT INTO answers
SELECT
    'mixed' AS name,
    monitoring.record_logs(pgtap_helpers.logs_request('shop', jsonb_build_array(
        jsonb_build_object(
            'timeUnixNano', pgtap_helpers.nanos(pgtap_helpers.base()), 'severityNumber', 17,
            'severityText',
            'ERROR',
            'body',
            jsonb_build_object(
                'stringValue', 'payment failed: card 4111 1111 1111 1111, password=hunter2'
            ),
            'traceId', 'ABCDEF0123456789ABCDEF0123456789', 'spanId', '0123456789abcdef',
            'attributes',
            jsonb_build_array(
                '{"key": "api_key", "value": {"stringValue": "k"}}'::jsonb,
                '{"key": "order", "value": {"intValue": "42"}}'::jsonb
            )
        ),
        jsonb_build_object(
            'observedTimeUnixNano', pgtap_helpers.nanos(pgtap_helpers.base() + interval '1 second'),
            'severityNumber',
            'SEVERITY_NUMBER_INFO',
            'body',
            jsonb_build_object('kvlistValue', jsonb_build_object('values', jsonb_build_array(
                '{"key": "event", "value": {"stringValue": "shipped"}}'::jsonb
            )))
        ),
        jsonb_build_object('severityNumber', 5, 'body', '{"stringValue": "no time at all"}'::jsonb),
        jsonb_build_object(
            'timeUnixNano', 'yesterday', 'body', '{"stringValue": "bad time"}'::jsonb
        ),
        jsonb_build_object(
            'timeUnixNano', pgtap_helpers.nanos(pgtap_helpers.base()), 'traceId', 'xyz'
        ),
        jsonb_build_object(
            'timeUnixNano', pgtap_helpers.nanos(pgtap_helpers.base()), 'severityNumber', 30
        ),
        jsonb_build_object('timeUnixNano', pgtap_helpers.nanos(now() - interval '20 days')),
        '7'::jsonb
    ))) AS answer;

SELECT is(
    (SELECT (answer ->> 'stored', answer ->> 'rejected') FROM answers),
    ('3'::text, '5'::text), 'good records are stored, bad ones refused one by one'
);
SELECT ok(
    (SELECT answer ->> 'error_message' FROM answers)
    ~ (
        '^5 of 8 log records rejected: timeUnixNano and observedTimeUnixNano must be'
        || '.*traceId must be empty or 32 hex digits.*severityNumber must be'
        || '.*retention window.*must be a JSON object'
    ),
    'each with its reason'
);
SELECT is(
    (
        SELECT body FROM monitoring.logs
        WHERE severity = 'error'
    ),
    'payment failed: card [Filtered], password=[Filtered]', 'the body is scrubbed'
);
SELECT is(
    (
        SELECT attributes FROM monitoring.logs
        WHERE severity = 'error'
    ),
    '{"api_key": "[Filtered]", "order": 42}'::jsonb, 'and so are the attributes'
);
SELECT is(
    (
        SELECT (trace_id, span_id, service, severity_text) FROM monitoring.logs
        WHERE severity = 'error'
    ),
    (
        'abcdef0123456789abcdef0123456789'::text,
        '0123456789abcdef'::text,
        'shop'::text,
        'ERROR'::text
    ),
    'with its trace, span and service'
);
SELECT is(
    (
        SELECT (time, body) FROM monitoring.logs
        WHERE severity = 'info'
    ),
    (pgtap_helpers.base() + interval '1 second', '{"event": "shipped"}'::text),
    'no time: the observed time; a structured body is kept as JSON'
);
SELECT is(
    (
        SELECT time FROM monitoring.logs
        WHERE body = 'no time at all'
    ), now(),
    'neither: the time it was received'
);

SELECT is(
    (SELECT array_agg(body) FROM monitoring.search_logs('PAYMENT failed')),
    ARRAY['payment failed: card [Filtered], password=[Filtered]'], 'search by words, any case'
);
SELECT is(
    (
        SELECT count(*)::integer
        FROM monitoring.search_logs(p_trace_id => 'ABCDEF0123456789ABCDEF0123456789')
    ),
    1, 'by trace'
);
SELECT is(
    (
        SELECT array_agg(severity ORDER BY severity)
        FROM monitoring.search_logs(p_min_severity => 'info')
    ),
    ARRAY['error', 'info'], 'by least severity'
);
SELECT is(
    (
        SELECT count(*)::integer
        FROM
            monitoring.search_logs(
                p_since => pgtap_helpers.base() + interval '500 milliseconds',
                p_until => now() - interval '1 minute'
            )
    ),
    1, 'by time'
);
SELECT throws_ok(
    $$SELECT * FROM monitoring.search_logs(p_min_severity => 'loud')$$, '22023', NULL,
    'an unknown severity is refused'
);

-- a batch sent again after a lost answer: records with a log.record.uid are stored once
CREATE TEMPORARY TABLE resent AS
SELECT pgtap_helpers.logs_request('shop', jsonb_build_array(jsonb_build_object(
    'timeUnixNano', pgtap_helpers.nanos(pgtap_helpers.base()),
    'body', '{"stringValue": "sent twice"}'::jsonb,
    'attributes', '[{"key": "log.record.uid", "value": {"stringValue": "u-1"}}]'::jsonb
))) AS request;
SELECT monitoring.record_logs(request) FROM resent;
SELECT is(
    (SELECT monitoring.record_logs(request) FROM resent),
    '{"stored": 0, "duplicates": 1, "rejected": 0, "error_message": null}'::jsonb,
    'a record sent again with its log.record.uid is a duplicate'
);
SELECT is(
    (
        SELECT (count(*), min(record_uid), min(attributes::text)) FROM monitoring.logs
        WHERE body = 'sent twice'
    ),
    (1::bigint, 'u-1'::text, '{}'::text),
    'stored once, its id in record_uid'
);

SELECT is(monitoring.ensure_log_partitions(1), 2, 'log partitions are created ahead');
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', 'SELECT * FROM monitoring.logs'), '42501',
    'writers read no logs'
);

SELECT * FROM finish();
ROLLBACK;
