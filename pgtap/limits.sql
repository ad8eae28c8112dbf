-- Size limits: an oversize event is stored cut down with a visible marker, never refused; the
-- errors.max_* settings set the limits. Sizes are as stored (pg_column_size), not as text.
BEGIN;
SELECT plan(25);

-- The cutting functions.
SELECT is(monitoring.truncate_text('short', 5), 'short', 'text within the limit is kept');
SELECT is(
    monitoring.truncate_text('abcdefghij', 4),
    'abcd... [truncated: 6 more characters]',
    'longer text keeps its start and says how many characters were cut'
);
SELECT is(monitoring.truncate_text(NULL, 4), NULL, 'truncate_text keeps NULL');

SELECT is(
    monitoring.cap_object('{"a": 1, "b": 2}', 100),
    '{"a": 1, "b": 2}'::jsonb,
    'an object within the limit is kept'
);
SELECT is(
    monitoring.cap_object(
        jsonb_build_object('a', repeat('x', 100), 'b', repeat('y', 100), 'c', repeat('z', 400)),
        450
    ),
    jsonb_build_object(
        'a', repeat('x', 100),
        'b', repeat('y', 100),
        '_truncated', 'kept 2 of 3 keys: the object had 635 bytes, over the limit of 450'
    ),
    'an oversize object keeps its first keys that fit and a _truncated marker'
);
SELECT is(
    monitoring.cap_object(to_jsonb(repeat('x', 100)), 50),
    '{"_truncated": "a string of 112 bytes, over the limit of 50"}'::jsonb,
    'an oversize value that is no object becomes a marker'
);

SELECT is(
    monitoring.cap_array_newest('[1, 2, 3, 4, 5]', 3, 1000) - 0,
    '[3, 4, 5]'::jsonb,
    'an over-long array keeps its newest (last) elements, in order'
);
SELECT is(
    monitoring.cap_array_newest('[1, 2, 3, 4, 5]', 3, 1000) -> 0,
    jsonb_build_object(
        'type', 'default', 'category', 'pg_monitoring.truncated', 'level', 'warning',
        'message', '[2 older entries omitted (5 sent; the limit is 3 entries or 1000 bytes)]'
    ),
    'a cut array starts with a breadcrumb saying how many older ones were dropped'
);
SELECT is(
    monitoring.cap_array_newest('["aaaa", "bbbb", "cccc"]', 10, 40) - 0,
    '["bbbb", "cccc"]'::jsonb,
    'an oversize array keeps the newest elements that fit'
);
SELECT is(
    monitoring.cap_array_newest('[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]', 100, 100),
    '[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]'::jsonb,
    'an array over the byte limit only as stored, which drops nothing, is kept with no marker'
);
SELECT is(
    monitoring.cap_array_newest('{"values": []}', 1, 1),
    '{"values": []}'::jsonb,
    'cap_array_newest leaves what is no array'
);

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
SELECT monitoring.set_setting('errors.max_message_length', '20');
SELECT monitoring.set_setting('errors.max_frames', '6');
SELECT monitoring.set_setting('errors.max_context_bytes', '400');
SELECT monitoring.set_setting('errors.max_breadcrumbs', '3');

CREATE TEMPORARY TABLE small_limits AS
SELECT c.event_id
FROM monitoring.capture_error(
    'LimitError',
    'a message that is much longer than twenty characters',
    (
        SELECT
            jsonb_agg(
                jsonb_build_object('filename', '/app/x.py', 'function', 'f' || i) ORDER BY i
            )
        FROM generate_series(1, 20) AS i
    ),
    p_context => jsonb_build_object(
        'a', repeat('1', 50), 'b', repeat('2', 50), 'c', repeat('3', 500)
    ),
    p_tags => jsonb_build_object('t', repeat('t', 500)),
    p_breadcrumbs => '[{"message": "c1"}, {"message": "c2"}, {"message": "c3"},
        {"message": "c4"}, {"message": "c5"}]',
    p_service => 'limits-small'
) AS c;

CREATE TEMPORARY TABLE stored AS
SELECT e.*
FROM monitoring.errors AS e INNER JOIN small_limits AS s ON e.id = s.event_id;

SELECT is(
    (SELECT message FROM stored),
    'a message that is mu... [truncated: 32 more characters]',
    'errors.max_message_length cuts the message'
);
SELECT is(
    (SELECT exceptions -> 0 ->> 'value' FROM stored),
    'a message that is mu... [truncated: 32 more characters]',
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
    (SELECT octet_length(context::text) <= 400 FROM stored),
    'the cut context fits in errors.max_context_bytes'
);
SELECT ok(
    (SELECT context ->> '_truncated' LIKE 'kept 2 of 3 keys:%' FROM stored),
    'the _truncated marker says how many keys were kept'
);
SELECT is(
    (SELECT tags FROM stored),
    '{"_truncated": "kept 0 of 1 keys: the object had 517 bytes, over the limit of 400"}'::jsonb,
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
    'LimitError: a message that is mu... [truncated: 32 more characters]',
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

SELECT * FROM finish();
ROLLBACK;
