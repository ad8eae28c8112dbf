-- Size limits: text and JSON cut down with a visible marker (truncate_text, cap_object,
-- cap_array_newest, bound_json); capture_limits.sql shows capture applying them.
BEGIN;
SELECT plan(12);

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

SELECT is(
    monitoring.bound_json(
        jsonb_build_object(
            'ok', 'short', 'long', repeat('v', 30), repeat('k', 30), 'hunter2', 'n', 1.5,
            'pair', jsonb_build_array(repeat('k', 30), 'hunter2'),
            'deep', '[[["three"]]]'::jsonb
        ),
        20, 3
    ),
    jsonb_build_object(
        'ok', 'short', 'long', repeat('v', 20) || '... [truncated: 10 more characters]',
        repeat('k', 20) || '... [truncated: 10 more characters]', '[dropped: its name was cut]',
        'n', 1.5,
        'pair', jsonb_build_array(
            repeat('k', 20) || '... [truncated: 10 more characters]', '[dropped: its name was cut]'
        ),
        'deep', '[["[nested too deep: an array of 1 items]"]]'::jsonb
    ),
    'bound_json cuts long strings and keys, and what is nested too deep; the value of a cut '
    'key or pair name goes, as it may be a secret scrubbing can no longer tell'
);

SELECT * FROM finish();
ROLLBACK;
