-- record_spans: an OTLP request stored span by span; bad spans refused one by one with a
-- reason while the rest are stored; retries stored once; resources and operations once;
-- attributes flat, bounded and scrubbed; writers may write and not read.
BEGIN;
SELECT plan(30);

CREATE TEMPORARY TABLE answers (name text PRIMARY KEY, answer jsonb);

-- a batch with one good span and one bad span of each kind
INSERT INTO answers
SELECT
    'mixed' AS name,
    monitoring.record_spans(pgtap_helpers.spans_request('shop', jsonb_build_array(
        pgtap_helpers.span(
            '5B8EFFF798038103D269B633813FC60C', 'EEE19B7EC3C1B174', NULL, 'POST /pay', 0, 250
        ),
        pgtap_helpers.span('W4792/eYA4ED0mm2M4E/xg==', 'eee19b7ec3c1b175', NULL, 'base64 id', 0, 1),
        pgtap_helpers.span(
            '00000000000000000000000000000000', 'eee19b7ec3c1b175', NULL, 'zero trace', 0, 1
        ),
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', '0000000000000000', NULL, 'zero span', 0, 1
        ),
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b176', 'xyz', 'bad parent', 0, 1
        ),
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b177', NULL, 'backwards', 10, -5
        ),
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b178', NULL, 'ancient', -3000000000, 1
        ),
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b179', NULL, 'future', 100000000, 1
        ),
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17a', NULL, 'kind', 0, 1, 9
        ),
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17b', NULL, 'status', 0, 1, 2, 7
        ),
        pgtap_helpers.span('5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17c', NULL, 'x', 0, 1)
        - 'startTimeUnixNano',
        jsonb_set(
            pgtap_helpers.span(
                '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17d', NULL, 'x', 0, 1
            ),
            '{name}',
            '5'
        ),
        '"not a span"'::jsonb
    ))) AS answer;

SELECT
    is((
        SELECT answer ->> 'stored' FROM answers
        WHERE name = 'mixed'
    ), '1', 'the good span is stored');
SELECT
    is((
        SELECT answer ->> 'rejected' FROM answers
        WHERE name = 'mixed'
    ), '12', 'each bad one is refused');
SELECT matches(
    (
        SELECT answer ->> 'error_message' FROM answers
        WHERE name = 'mixed'
    ),
    '^12 of 13 spans rejected: traceId must be 32 hex digits.*not base64.*'
    || E'\\(2 spans, first: resourceSpans\\[0\\]\\.scopeSpans\\[0\\]\\.spans\\[1\\]\\)',
    'the message says why, how many and where the first one is'
);
SELECT ok(
    (
        SELECT answer ->> 'error_message' FROM answers
        WHERE name = 'mixed'
    )
    ~ (
        'spanId must be 16 hex digits.*parentSpanId must be empty or 16 hex digits'
        || '.*endTimeUnixNano is before.*retention window'
    )
    AND (
        SELECT answer ->> 'error_message' FROM answers
        WHERE name = 'mixed'
    ) !~ 'future',
    'five reasons at most, in the order of the first span of each'
);

-- every reason on its own
CREATE FUNCTION pg_temp.reason(p_span jsonb)
RETURNS text
LANGUAGE sql
AS $$
    SELECT monitoring.record_spans(pgtap_helpers.spans_request('shop', jsonb_build_array(p_span)))
    ->> 'error_message';
$$;

SELECT matches(
    pg_temp.reason(
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17a', NULL, 'k', 0, 1, 9
        )
    ),
    'kind must be a SpanKind', 'a kind out of range is refused'
);
SELECT matches(
    pg_temp.reason(
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17b', NULL, 's', 0, 1, 2, 7
        )
    ),
    'status.code must be a StatusCode', 'a status out of range is refused'
);
SELECT matches(
    pg_temp.reason(
        pgtap_helpers.span('5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17c', NULL, 'x', 0, 1)
        - 'startTimeUnixNano'
    ),
    'startTimeUnixNano must be Unix nanoseconds', 'a span without a start is refused'
);
SELECT matches(
    pg_temp.reason(
        jsonb_set(
            pgtap_helpers.span(
                '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17d', NULL, 'x', 0, 1
            ),
            '{name}',
            '5'
        )
    ),
    'name must be a string', 'a span whose name is not a string is refused'
);
SELECT is(
    pg_temp.reason(jsonb_set(
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b17e', NULL, 'enum names', 0, 1
        ),
        '{kind}', '"SPAN_KIND_CLIENT"'
    )),
    NULL, 'enum names, as the generic protobuf JSON mapping writes them, are taken'
);
SELECT is(
    (
        SELECT kind FROM monitoring.spans
        WHERE span_id = 'eee19b7ec3c1b17e'
    ), 'client',
    'and read as the kind they name'
);

SELECT is(
    (
        SELECT trace_id || '/' || span_id FROM monitoring.spans
        WHERE operation = 'POST /pay'
    ),
    '5b8efff798038103d269b633813fc60c/eee19b7ec3c1b174',
    'ids are stored in lowercase hex, as errors carry them'
);

-- a retry: nothing new
SELECT is(
    monitoring.record_spans(pgtap_helpers.spans_request('shop', jsonb_build_array(
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b174', NULL, 'POST /pay', 0, 250
        ),
        pgtap_helpers.span(
            '5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b174', NULL, 'POST /pay', 0, 250
        )
    ))),
    '{"stored": 0, "rejected": 0, "duplicates": 2, "error_message": null}'::jsonb,
    'a retried span (twice in one request, even) is a duplicate, not stored again'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.spans
        WHERE span_id = 'eee19b7ec3c1b174'
    ), 1,
    'one row'
);
SELECT is(
    (
        SELECT span_count::integer FROM monitoring.traces
        WHERE trace_id = '5b8efff798038103d269b633813fc60c'
    ),
    2, 'and the trace counts its spans once'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.otel_resources
        WHERE service = 'shop'
    ), 1,
    'the resource is stored once for all requests'
);
SELECT is(
    (
        SELECT count(*)::integer FROM monitoring.trace_operations
        WHERE service = 'shop' AND name = 'POST /pay'
    ),
    1, 'and so is each operation'
);

-- attributes, events, links: flat, bounded, scrubbed
SELECT monitoring.record_spans(pgtap_helpers.spans_request('shop', jsonb_build_array(
    pgtap_helpers.span(
        'a' || repeat('0', 31), '1' || repeat('0', 15), NULL, 'GET /secret', 0, 5, 2, 2,
        jsonb_build_array(
            jsonb_build_object(
                'key', 'http.route', 'value', jsonb_build_object('stringValue', '/secret')
            ),
            jsonb_build_object(
                'key', 'http.request.header.authorization',
                'value', '{"arrayValue": {"values": [{"stringValue": "Bearer abc"}]}}'::jsonb
            ),
            jsonb_build_object(
                'key', 'url.full',
                'value', jsonb_build_object('stringValue', 'https://u:pw@x.test/?token=t1&q=1')
            ),
            jsonb_build_object(
                'key', 'db.statement',
                'value', jsonb_build_object('stringValue', repeat('x', 5000))
            )
        )
    ) || jsonb_build_object(
        'status', jsonb_build_object('code', 2, 'message', 'card 4111 1111 1111 1111 declined'),
        'events', (
            SELECT
                jsonb_agg(jsonb_build_object(
                    'timeUnixNano', pgtap_helpers.nanos(pgtap_helpers.base()), 'name', 'e' || i,
                    'attributes', jsonb_build_array(jsonb_build_object(
                        'key', 'password', 'value', jsonb_build_object('stringValue', 'hunter2')
                    ))
                ))
            FROM generate_series(1, 130) AS i
        ),
        'links', jsonb_build_array(jsonb_build_object(
            'traceId', 'b' || repeat('0', 31), 'spanId', '2' || repeat('0', 15),
            'attributes', jsonb_build_array(jsonb_build_object(
                'key', 'api_key', 'value', jsonb_build_object('stringValue', 'k')
            ))
        ))
    )
)));

SELECT is(
    (
        SELECT attributes -> 'http.request.header.authorization' FROM monitoring.spans
        WHERE operation = 'GET /secret'
    ),
    '"[Filtered]"'::jsonb, 'a header attribute named for a secret is filtered'
);
SELECT is(
    (
        SELECT attributes ->> 'url.full' FROM monitoring.spans
        WHERE operation = 'GET /secret'
    ),
    'https://u:[Filtered]@x.test/?token=[Filtered]&q=1', 'secrets inside a URL are filtered'
);
SELECT is(
    (
        SELECT attributes ->> 'db.statement' FROM monitoring.spans
        WHERE operation = 'GET /secret'
    ),
    repeat('x', 4096) || '... [truncated: 904 more characters]',
    'a long value is cut to otlp.max_attribute_length'
);
SELECT is(
    (
        SELECT status_message FROM monitoring.spans
        WHERE operation = 'GET /secret'
    ),
    'card [Filtered] declined', 'the status message is scrubbed'
);
SELECT is(
    (
        SELECT jsonb_array_length(events) FROM monitoring.spans
        WHERE operation = 'GET /secret'
    ),
    129, 'events are capped at traces.max_events, with a marker'
);
SELECT is(
    (
        SELECT events -> 0 -> 'attributes' FROM monitoring.spans
        WHERE operation = 'GET /secret'
    ),
    '{"password": "[Filtered]"}'::jsonb, 'event attributes are scrubbed'
);
SELECT is(
    (
        SELECT links -> 0 FROM monitoring.spans
        WHERE operation = 'GET /secret'
    ),
    jsonb_build_object(
        'trace_id', 'b' || repeat('0', 31), 'span_id', '2' || repeat('0', 15),
        'attributes', '{"api_key": "[Filtered]"}'::jsonb
    ),
    'links are kept, their attributes scrubbed'
);

-- the attributes index answers @>
SET LOCAL enable_seqscan = off;
SELECT ok(
    (
        SELECT string_agg(p.line, E'\n')
        FROM pgtap_helpers.explain(
            $q$SELECT span_id FROM monitoring.spans
            WHERE attributes @> '{"http.route": "/secret"}'$q$
        ) AS p (line)
    ) ~ 'Bitmap Index Scan on trace_spans_.*attributes',
    'attributes @> uses the GIN index'
);
RESET enable_seqscan;

-- bad requests
SELECT throws_ok(
    $$SELECT monitoring.record_spans('[]')$$, '22023', NULL, 'a request must be an object'
);
SELECT throws_ok(
    $$SELECT monitoring.record_spans(pgtap_helpers.spans_request('shop', (
        SELECT jsonb_agg(pgtap_helpers.span('c' || repeat('0', 31), lpad(to_hex(i), 16, '0'), NULL, 'n', 0, 1))
        FROM generate_series(1, 10001) AS i
    )))$$,
    '54000', NULL, 'more spans than otlp.max_items_per_call is refused whole'
);

-- the byte limit holds when it is the smaller one
SELECT monitoring.set_setting('otlp.max_attribute_length', '100000');
SELECT monitoring.set_setting('otlp.max_attributes_bytes', '1024');
SELECT monitoring.record_spans(pgtap_helpers.spans_request('shop', jsonb_build_array(
    pgtap_helpers.span(
        'e' || repeat('1', 31), 'e' || repeat('1', 15), NULL, 'GET /big', 0, 1, 2, 0,
        jsonb_build_array(jsonb_build_object(
            'key', 'big', 'value', jsonb_build_object('stringValue', repeat('y', 3000))
        ))
    )
)));
SELECT ok(
    (
        SELECT pg_column_size(attributes) <= 1024 AND attributes ? '_truncated'
        FROM monitoring.spans
        WHERE operation = 'GET /big'
    ),
    'attributes over otlp.max_attributes_bytes are cut, even under otlp.max_attribute_length'
);
SELECT monitoring.reset_setting('otlp.max_attribute_length');
SELECT monitoring.reset_setting('otlp.max_attributes_bytes');

SELECT monitoring.set_setting('otlp.max_request_bytes', '1048576');
SELECT throws_ok(
    $$SELECT monitoring.record_spans(jsonb_build_object(
        'resourceSpans', '[]'::jsonb, 'padding', repeat(md5(random()::text), 70000)
    ))$$,
    '54000', NULL, 'a request over otlp.max_request_bytes is refused before any work'
);
SELECT monitoring.reset_setting('otlp.max_request_bytes');

-- roles
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', format(
        'SELECT monitoring.record_spans(%L)',
        pgtap_helpers.spans_request('w', jsonb_build_array(
            pgtap_helpers.span('d' || repeat('0', 31), '3' || repeat('0', 15), NULL, 'w', 0, 1)
        ))
    )),
    NULL, 'a writer records spans'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', 'SELECT * FROM monitoring.spans'),
    '42501', 'and reads none'
);

SELECT * FROM finish();
ROLLBACK;
