-- Size limits in capture: an oversize event is stored cut down with a visible marker, never
-- refused; the errors.max_* settings set the limits. Sizes are as stored (pg_column_size), not
-- as text.
BEGIN;
SELECT plan(23);

-- Capture applies the default limits.
CREATE TEMPORARY TABLE frames_150 AS
SELECT
    jsonb_agg(
        jsonb_build_object('filename', '/app/deep.py', 'function', 'level' || i, 'lineno', i)
        ORDER BY i
    ) AS frames
FROM generate_series(1, 150) AS i;

CREATE TEMPORARY TABLE default_limits AS
SELECT c.event_id
FROM frames_150 AS f
CROSS JOIN LATERAL monitoring.capture_error(
    'DeepError', repeat('m', 9000), f.frames, p_service => 'limits-default'
) AS c;

SELECT is(
    (
        SELECT e.message
        FROM monitoring.errors AS e INNER JOIN default_limits AS d ON e.id = d.event_id
    ),
    repeat('m', 8192) || '... [truncated: 808 more characters]',
    'by default a message is cut at 8192 characters with a marker'
);
SELECT is(
    (
        SELECT jsonb_array_length(e.stack_trace)
        FROM monitoring.errors AS e INNER JOIN default_limits AS d ON e.id = d.event_id
    ),
    101,
    'by default 100 frames are kept, plus the marker'
);

-- Settings change the limits.
SELECT monitoring.set_setting('errors.max_message_length', '256');
SELECT monitoring.set_setting('errors.max_frames', '6');
SELECT monitoring.set_setting('errors.max_context_bytes', '1024');
SELECT monitoring.set_setting('errors.max_breadcrumbs', '3');

CREATE TEMPORARY TABLE small_limits AS
SELECT c.event_id
FROM monitoring.capture_error(
    'LimitError',
    'a message longer than the limit: ' || repeat('m', 250),
    (
        SELECT
            jsonb_agg(
                jsonb_build_object('filename', '/app/x.py', 'function', 'f' || i) ORDER BY i
            )
        FROM generate_series(1, 20) AS i
    ),
    p_context => jsonb_build_object(
        'a', repeat('1', 300), 'b', repeat('2', 300), 'c', repeat('3', 1500)
    ),
    p_tags => jsonb_build_object('t', repeat('t', 1500)),
    p_breadcrumbs => '[{"message": "c1"}, {"message": "c2"}, {"message": "c3"},
        {"message": "c4"}, {"message": "c5"}]',
    p_service => 'limits-small'
) AS c;

CREATE TEMPORARY TABLE stored AS
SELECT e.*
FROM monitoring.errors AS e INNER JOIN small_limits AS s ON e.id = s.event_id;

SELECT is(
    (SELECT message FROM stored),
    'a message longer than the limit: '
    || repeat('m', 223)
    || '... [truncated: 27 more characters]',
    'errors.max_message_length cuts the message'
);
SELECT is(
    (SELECT exceptions -> 0 ->> 'value' FROM stored),
    'a message longer than the limit: '
    || repeat('m', 223)
    || '... [truncated: 27 more characters]',
    'errors.max_message_length cuts the exception value'
);
SELECT is(
    (SELECT jsonb_path_query_array(stack_trace, '$[*].function') FROM stored),
    '["f1", "f2", "f3", "[14 frames omitted]", "f18", "f19", "f20"]'::jsonb,
    'errors.max_frames keeps the outermost and innermost frames around a marker'
);
SELECT is(
    (SELECT stack_trace -> 3 -> 'frames_omitted' FROM stored),
    '14'::jsonb,
    'the marker frame says how many frames were omitted'
);
SELECT is(
    (
        SELECT array_agg(k.k ORDER BY k.k)
        FROM stored AS s CROSS JOIN jsonb_object_keys(s.context) AS k (k)
    ),
    ARRAY['_truncated', 'a', 'b'],
    'errors.max_context_bytes keeps the first context keys and adds _truncated'
);
SELECT ok(
    (SELECT octet_length(context::text) <= 1024 FROM stored),
    'the cut context fits in errors.max_context_bytes'
);
SELECT ok(
    (SELECT context ->> '_truncated' LIKE 'kept 2 of 3 keys:%' FROM stored),
    'the _truncated marker says how many keys were kept'
);
SELECT is(
    (SELECT tags FROM stored),
    '{"_truncated": "kept 0 of 1 keys: the object had 1517 bytes, over the limit of 1024"}'::jsonb,
    'tags are capped like the context'
);
SELECT is(
    (SELECT breadcrumbs - 0 FROM stored),
    '[{"message": "c3"}, {"message": "c4"}, {"message": "c5"}]'::jsonb,
    'errors.max_breadcrumbs keeps the newest breadcrumbs, in order'
);
SELECT is(
    (
        SELECT i.title FROM monitoring.issues AS i
        WHERE i.service = 'limits-small'
    ),
    left('LimitError: a message longer than the limit: ' || repeat('m', 223), 200),
    'the issue title shows the cut message'
);

-- An oversize chain also has its frames' local variables capped.
SELECT monitoring.reset_setting('errors.max_frames');
SELECT monitoring.set_setting('errors.max_context_bytes', '19200');
CREATE TEMPORARY TABLE big_vars AS
SELECT c.event_id
FROM monitoring.capture_error(
    'VarsError', 'locals',
    (
        SELECT
            jsonb_agg(jsonb_build_object(
                'filename', '/app/v.py', 'function', 'f' || i,
                'vars', jsonb_build_object('id', i, 'blob', repeat('v', 2000))
            ) ORDER BY i)
        FROM generate_series(1, 10) AS i
    ),
    p_service => 'limits-vars'
) AS c;

SELECT is(
    (
        SELECT e.stack_trace -> 0 -> 'vars'
        FROM monitoring.errors AS e INNER JOIN big_vars AS b ON e.id = b.event_id
    ),
    '{"id": 1, "_truncated": "kept 1 of 2 keys: the object had 2040 bytes, over the limit of 300"}',
    'the local variables of each frame of an oversize chain are capped'
);
SELECT is(
    (
        SELECT jsonb_path_query_array(e.stack_trace, '$[*].function')
        FROM monitoring.errors AS e INNER JOIN big_vars AS b ON e.id = b.event_id
    ),
    '["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10"]'::jsonb,
    'capping local variables keeps every frame'
);

-- Every writer input takes time that grows with what is kept, not with what was sent: each of
-- these took from 5 s to over a minute before. The timeout only guards the suite.
SELECT monitoring.reset_setting('errors.max_context_bytes');
SELECT monitoring.reset_setting('errors.max_message_length');
SET LOCAL statement_timeout = '10s';
CREATE TEMPORARY TABLE huge AS
SELECT
    (monitoring.capture_error(
        'RecursionError', 'maximum recursion depth exceeded',
        'Traceback (most recent call last):' || E'\n' || (
            SELECT
                string_agg(
                    format(E'  File "/app/deep.py", line %s, in walk\n    walk(n - 1)', i), E'\n'
                )
            FROM generate_series(1, 20000) AS i
        ) || E'\nRecursionError: maximum recursion depth exceeded',
        p_service => 'huge'
    )).event_id AS traceback,
    (monitoring.capture_event(jsonb_build_object(
        'service', 'huge',
        'exception', jsonb_build_object('values', (
            SELECT
                jsonb_agg(jsonb_build_object(
                    'type', 'Chained' || i, 'value', 'link ' || i,
                    'stacktrace', jsonb_build_object('frames', jsonb_build_array(
                        jsonb_build_object('function', 'f' || i, 'module', 'app.chain')
                    ))
                ) ORDER BY i)
            FROM generate_series(1, 5000) AS i
        ))
    ))).event_id AS chain,
    (monitoring.capture_error(repeat('T', 5000000), 'a type of 5 MB', p_service => 'huge'))
    .event_id AS long_type,
    (monitoring.capture_error(
        'MinifiedError', 'in minified code',
        jsonb_build_array(jsonb_build_object(
            'filename', 'app.min.js', 'function', 'a', 'context_line', repeat('x;', 5000000),
            'pre_context', jsonb_build_array(repeat('y', 3000000)),
            'post_context', (SELECT jsonb_agg('line ' || i) FROM generate_series(1, 50) AS i)
        )),
        p_service => 'huge'
    )).event_id AS minified,
    (monitoring.capture_error(
        'DeepError', 'a deep context',
        p_context => (
            repeat('{"a": ', 800) || '{"password": "hunter2"}' || repeat('}', 800)
        )::jsonb,
        p_service => 'huge'
    )).event_id AS deep;
RESET statement_timeout;

SELECT is(
    (
        SELECT
            ARRAY[
                jsonb_array_length(e.exceptions -> 0 -> 'frames'),
                (e.exceptions -> 0 -> 'frames' -> 50 ->> 'frames_omitted')::int
            ]
        FROM monitoring.error_events AS e, huge AS h
        WHERE e.event_id = h.traceback
    ),
    ARRAY[101, 19900],
    'a traceback of 20,000 frames keeps 100 of them and a marker counting the others'
);
SELECT is(
    (
        SELECT jsonb_path_query_array(e.exceptions, '$[*].type')
        FROM monitoring.error_events AS e, huge AS h
        WHERE e.event_id = h.chain
    ),
    '["Chained1", "Chained2", "Chained3", "Chained4", "Chained5", "[4990 exceptions omitted]",
      "Chained4996", "Chained4997", "Chained4998", "Chained4999", "Chained5000"]'::jsonb,
    'a chain of 5,000 exceptions keeps errors.max_exceptions: the root cause and the raised sides'
);
SELECT is(
    (
        SELECT ARRAY[length(e.exception_type), length(e.exceptions -> 0 ->> 'type')]
        FROM monitoring.error_events AS e, huge AS h
        WHERE e.event_id = h.long_type
    ),
    ARRAY[8192 + length('... [truncated: 4991808 more characters]'), 8232],
    'an exception type of 5 MB is cut like a message, with a marker'
);
SELECT is(
    (
        SELECT
            ARRAY[
                length(f.frame ->> 'context_line'), length(f.frame -> 'pre_context' ->> 0),
                jsonb_array_length(f.frame -> 'post_context')
            ]
        FROM monitoring.error_events AS e, huge AS h,
            LATERAL (SELECT e.exceptions -> 0 -> 'frames' -> 0 AS frame) AS f
        WHERE e.event_id = h.minified
    ),
    ARRAY[8232, 8232, 10],
    'a frame''s 10 MB source line and 3 MB of context are cut, and 10 lines of context kept'
);
SELECT is(
    (
        SELECT
            ARRAY[
                e.context #> '{a,a,a,a,a,a,a,a,a,a,a}' IS NULL,
                e.context #>> '{a,a,a,a,a,a,a,a,a,a}' = '[nested too deep: an object of 1 keys]',
                e.context::text LIKE '%hunter2%'
            ]
        FROM monitoring.error_events AS e, huge AS h
        WHERE e.event_id = h.deep
    ),
    ARRAY[TRUE, TRUE, FALSE],
    'an 800-level context is stored 10 levels deep, with a marker, and nothing below is kept'
);

-- The pieces.
SELECT is(
    monitoring.trim_frames(
        '[{"function": "f1"}, {"function": "[7 frames omitted]", "frames_omitted": 7},
          {"function": "f9"}, {"function": "f10"}, {"function": "f11"}]',
        2
    ),
    '[{"function": "f1"}, {"in_app": false, "function": "[9 frames omitted]",
       "frames_omitted": 9}, {"function": "f11"}]'::jsonb,
    'trimming frames again counts what an earlier marker stood for'
);
SELECT throws_ok(
    $$SELECT monitoring.capture_event(repeat('[', 500000) || repeat(']', 500000))$$,
    '22023', 'p_event is nested too deeply to read (1000000 characters)',
    'JSON text too deep for PostgreSQL''s parser is refused naming the problem and the argument'
);
SELECT throws_ok(
    $$SELECT * FROM monitoring.capture_events(
        (SELECT jsonb_agg(jsonb_build_object('message', 'm')) FROM generate_series(1, 251))
    )$$,
    '22023', 'p_events holds 251 events; send at most 250 per call',
    'a batch is at most 250 events'
);

-- A chain over errors.max_stack_bytes loses its frames' variables and source context first,
-- then frames from the middle.
SELECT monitoring.set_setting('errors.max_stack_bytes', '20000');
CREATE TEMPORARY TABLE over_budget AS
SELECT (monitoring.capture_error(
    'BudgetError', 'a big chain',
    (
        SELECT
            jsonb_agg(jsonb_build_object(
                'filename', 'app/b' || i || '.py', 'function', 'f' || i,
                'context_line', md5(i::text) || repeat(' ', 200) || md5((i + 1)::text),
                'pre_context',
                jsonb_build_array(md5((-i)::text)),
                'vars',
                jsonb_build_object('i', i)
            ) ORDER BY i)
        FROM generate_series(1, 100) AS i
    ),
    p_service => 'budget'
)).event_id;
SELECT is(
    (
        SELECT
            ARRAY[
                pg_column_size(e.exceptions) <= 20000,
                NOT jsonb_path_exists(e.exceptions, '$[*].frames[*].vars'),
                NOT jsonb_path_exists(e.exceptions, '$[*].frames[*].pre_context'),
                e.exceptions
                -> 0
                ->> '_truncated' LIKE 'frame variables and source context dropped:%',
                jsonb_array_length(e.exceptions -> 0 -> 'frames') < 100
            ]
        FROM monitoring.error_events AS e, over_budget AS o
        WHERE e.event_id = o.event_id
    ),
    ARRAY[TRUE, TRUE, TRUE, TRUE, TRUE],
    'a chain over errors.max_stack_bytes fits it, without variables, context or middle frames'
);
SELECT monitoring.reset_setting('errors.max_stack_bytes');

SELECT * FROM finish();
ROLLBACK;
