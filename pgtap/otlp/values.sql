-- OTLP's JSON mapping read as plain JSON: every AnyValue kind, int64 strings as numbers,
-- nesting bounded, bad values kept rather than refused, Unix nanoseconds as times.
BEGIN;
SELECT plan(19);

SELECT is(
    monitoring.otlp_attributes('[
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "i", "value": {"intValue": "9007199254740993"}},
        {"key": "n", "value": {"intValue": 7}},
        {"key": "d", "value": {"doubleValue": 0.5}},
        {"key": "b", "value": {"boolValue": true}},
        {"key": "bytes", "value": {"bytesValue": "AAE="}},
        {"key": "empty", "value": {}}
    ]'),
    '{"s": "x", "i": 9007199254740993, "n": 7, "d": 0.5, "b": true, "bytes": "AAE=",
      "empty": null}'::jsonb,
    'each AnyValue kind becomes its plain JSON value; int64 strings become exact numbers'
);

SELECT is(
    monitoring.otlp_attributes('[{"key": "l", "value": {"arrayValue": {"values": [
        {"stringValue": "a"}, {"intValue": "1"},
        {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": false}}]}}
    ]}}}]'),
    '{"l": ["a", 1, {"k": false}]}'::jsonb,
    'lists and maps nest'
);

SELECT is(
    monitoring.otlp_attributes('[{"key": "i", "value": {"intValue": "12x"}}]'),
    '{"i": "12x"}'::jsonb,
    'an intValue that is not an integer is kept as sent, not refused'
);

SELECT is(
    monitoring.otlp_attributes('[{"value": {"stringValue": "no key"}}, 5, "x"]'),
    '{}'::jsonb,
    'entries without a string key are left out'
);

SELECT is(monitoring.otlp_attributes('{"a": 1}'), '{}'::jsonb, 'not a list: no attributes');
SELECT is(monitoring.otlp_attributes(NULL), '{}'::jsonb, 'NULL: no attributes');

-- 15 levels of lists: cut at 10 with a marker, no error, no deep recursion
SELECT ok(
    (
        SELECT monitoring.otlp_attributes(jsonb_build_array(jsonb_build_object(
            'key', 'deep', 'value', (
                SELECT
                    repeat('{"arrayValue": {"values": [', 15) || '{"stringValue": "bottom"}'
                    || repeat(']}}', 15)
            )::jsonb
        )))::text
    ) LIKE '%nested too deep%',
    'nesting beyond 10 levels becomes a marker'
);

SELECT is(
    monitoring._otlp_time('{"t": "1700000000123456789"}'::jsonb ->> 't'),
    '2023-11-14 22:13:20.123456+00'::timestamptz,
    'Unix nanoseconds as a string become a time (whole microseconds)'
);
SELECT
    is(
        monitoring._otlp_time('{"t": 1700000000000000000}'::jsonb ->> 't'),
        '2023-11-14 22:13:20+00'::timestamptz,
        'or as a number'
    );
SELECT isnt(monitoring._otlp_time('9223372036854775807'), NULL, 'int64 at most');
SELECT is(monitoring._otlp_time('-5'), NULL, 'a negative time is no time');
SELECT is(monitoring._otlp_time('+5'), NULL, 'nor a signed one');
SELECT is(monitoring._otlp_time(' 5'), NULL, 'nor one with spaces');
SELECT is(monitoring._otlp_time('0'), NULL, 'zero is no time (OTLP: unknown)');
SELECT is(monitoring._otlp_time('9223372036854775808'), NULL, 'over int64 is no time');
SELECT is(monitoring._otlp_time('99999999999999999999'), NULL, 'nor are 20 digits');
SELECT is(monitoring._otlp_time('2023-11-14'), NULL, 'text is no time');
SELECT is(monitoring._otlp_time('1.7e18'), NULL, 'nor is an exponent');
SELECT is(monitoring._otlp_time('１２３'), NULL, 'nor are digits other than ASCII');

SELECT * FROM finish();
ROLLBACK;
