-- Scrubbing: secrets are replaced by [Filtered] before anything is stored, at any depth, with
-- Sentry's default keys and patterns, and the scrub.* settings to add keys, spare keys or
-- switch it off.
BEGIN;
SELECT plan(48);

-- Keys.
SELECT is(
    monitoring.scrub('{"password": "hunter2", "name": "bob"}'),
    '{"password": "[Filtered]", "name": "bob"}'::jsonb,
    'the value under a sensitive key is filtered, other values are kept'
);
SELECT is(
    (
        SELECT count(*)::integer
        FROM
            jsonb_each(monitoring.scrub(jsonb_build_object(
                'password', 'x', 'passwd', 'x', 'secret', 'x', 'api_key', 'x', 'apikey', 'x',
                'auth', 'x', 'credentials', 'x', 'mysql_pwd', 'x', 'private_key', 'x',
                'privatekey', 'x', 'token', 'x', 'session', 'x', 'csrf', 'x', 'cookie', 'x',
                'authorization', 'x', 'set-cookie', 'x', 'x-api-key', 'x'
            ))) AS e
        WHERE e.value = '"[Filtered]"'
    ),
    17,
    'every default key is filtered'
);
SELECT is(
    monitoring.scrub('{"Password": "a", "API_KEY": "b", "X-Api-Key": "c"}'),
    '{"Password": "[Filtered]", "API_KEY": "[Filtered]", "X-Api-Key": "[Filtered]"}'::jsonb,
    'keys match whatever their case'
);
SELECT is(
    monitoring.scrub('{"db_password_hash": "a", "sessionid": "b", "HTTP_AUTHORIZATION": "c"}'),
    '{"db_password_hash": "[Filtered]", "sessionid": "[Filtered]", '
    '"HTTP_AUTHORIZATION": "[Filtered]"}',
    'keys match when they contain a sensitive word anywhere'
);
SELECT is(
    monitoring.scrub(
        '{"request": {"headers": {"Authorization": "Basic dXNlcjpwdw==", "Accept": "*/*"}}}'
    ),
    '{"request": {"headers": {"Authorization": "[Filtered]", "Accept": "*/*"}}}'::jsonb,
    'keys are filtered in nested objects'
);
SELECT is(
    monitoring.scrub('{"calls": [{"token": "t1", "id": 1}, [{"secret": "s"}], "plain"]}'),
    '{"calls": [{"token": "[Filtered]", "id": 1}, [{"secret": "[Filtered]"}], "plain"]}'::jsonb,
    'keys are filtered in objects inside arrays, in order'
);
SELECT is(
    monitoring.scrub('{"credentials": {"user": "bob", "pw": "x"}, "tokens": [1, 2]}'),
    '{"credentials": "[Filtered]", "tokens": "[Filtered]"}'::jsonb,
    'an object or array under a sensitive key is filtered whole'
);
SELECT is(
    monitoring.scrub('{"n": 5, "ok": true, "none": null, "list": [], "o": {}}'),
    '{"n": 5, "ok": true, "none": null, "list": [], "o": {}}'::jsonb,
    'numbers, booleans, nulls and empty containers are kept'
);
SELECT is(monitoring.scrub(NULL), NULL, 'NULL stays NULL');

-- Values that look like secrets, under any key.
SELECT is(
    monitoring.scrub_text(
        'visa 4111 1111 1111 1111, mc 5500-0000-0000-0004, amex 378282246310005, '
        || 'discover 6011111111111117'
    ),
    'visa [Filtered], mc [Filtered], amex [Filtered], discover [Filtered]',
    'card numbers are filtered, with spaces, dashes or neither'
);
SELECT is(
    monitoring.scrub_text('order 12345 of 2024-01-15, phone +44 20 7946 0958, id 1234567890123'),
    'order 12345 of 2024-01-15, phone +44 20 7946 0958, id 1234567890123',
    'ids, dates, phone numbers and other digits that are no card number are kept'
);
SELECT is(
    monitoring.scrub_text('GET /me Authorization: Bearer eyJhbGciOi.eyJzdWIi.SflKxw-_c= done'),
    'GET /me Authorization: Bearer [Filtered] done',
    'a bearer token is filtered and the word Bearer kept'
);
SELECT is(
    monitoring.scrub_text('header "bearer abc123"'),
    'header "bearer [Filtered]"',
    'bearer matches in any case'
);
SELECT is(
    monitoring.scrub_text(
        E'loaded -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nq83vEjL==\n'
        || E'-----END RSA PRIVATE KEY----- from disk'
    ),
    'loaded [Filtered] from disk',
    'a PEM private key is filtered whole, across lines'
);
SELECT is(
    monitoring.scrub_text(E'-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC'),
    '[Filtered]',
    'a PEM private key cut off before its END line is filtered to the end'
);
SELECT is(
    monitoring.scrub_text('-----BEGIN CERTIFICATE-----'),
    '-----BEGIN CERTIFICATE-----',
    'a certificate is public and kept'
);
SELECT is(
    monitoring.scrub('{"note": "paid with 4111111111111111", "n": [{"m": "Bearer abc"}]}'),
    '{"note": "paid with [Filtered]", "n": [{"m": "Bearer [Filtered]"}]}'::jsonb,
    'secret-looking strings are filtered inside documents at any depth'
);
SELECT is(monitoring.scrub_text(NULL), NULL, 'scrub_text keeps NULL');

-- Settings.
SELECT monitoring.set_setting(
    'scrub.extra_keys', '["tenant.id", "x(y", "a+b", "[", "Customer_SSN"]'
);
SELECT is(
    monitoring.scrub(
        '{"tenant.id": 1, "tenantXid": 2, "x(y": 3, "xy": 4, "a+b": 5, "aab": 6, "k[0]": 7}'
    ),
    '{"tenant.id": "[Filtered]", "tenantXid": 2, "x(y": "[Filtered]", "xy": 4, '
    '"a+b": "[Filtered]", "aab": 6, "k[0]": "[Filtered]"}',
    'scrub.extra_keys are matched as literal text: regex metacharacters are not patterns'
);
SELECT is(
    monitoring.scrub('{"customer_ssn": "078-05-1120", "password": "x"}'),
    '{"customer_ssn": "[Filtered]", "password": "[Filtered]"}'::jsonb,
    'scrub.extra_keys match in any case and add to the defaults'
);

SELECT monitoring.set_setting('scrub.safe_keys', '["Author", "session_count"]');
SELECT is(
    monitoring.scrub(
        '{"author": "ann", "AUTHOR": "bob", "authorization": "x", "session_count": 3, '
        '"session_id": "s"}'
    ),
    '{"author": "ann", "AUTHOR": "bob", "authorization": "[Filtered]", "session_count": 3, '
    '"session_id": "[Filtered]"}',
    'scrub.safe_keys are kept in any case; only the exact key is spared'
);
SELECT is(
    monitoring.scrub('{"author": {"password": "x", "card": "4111111111111111"}}'),
    '{"author": {"password": "[Filtered]", "card": "[Filtered]"}}'::jsonb,
    'what is inside a safe key is still scrubbed'
);

SELECT monitoring.set_setting('scrub.enabled', 'false');
SELECT is(
    monitoring.scrub('{"password": "hunter2", "card": "4111111111111111"}'),
    '{"password": "hunter2", "card": "4111111111111111"}'::jsonb,
    'scrub.enabled false turns scrubbing off'
);

-- The capture functions scrub everything they store.
SELECT monitoring.reset_setting('scrub.enabled');
SELECT monitoring.reset_setting('scrub.extra_keys');
SELECT monitoring.reset_setting('scrub.safe_keys');

CREATE TEMPORARY TABLE scrubbed AS
SELECT c.event_id
FROM monitoring.capture_error(
    'PaymentError',
    'card 4111 1111 1111 1111 declined',
    p_stack_trace => '[{"filename": "/app/pay.py", "function": "charge",
        "context_line": "charge(card)", "vars": {"api_key": "sk_live_1", "amount": 10}}]',
    p_context => '{"user_id": "u1", "order": {"password": "x"}}',
    p_tags => '{"session": "abc", "region": "eu"}',
    p_user => '{"id": "u1", "auth_token": "t"}',
    p_breadcrumbs => '[{"message": "Authorization: Bearer abc.def", "data": {"csrf": "z"}}]',
    p_service => 'scrub-test'
) AS c;

SELECT is(
    (SELECT e.message FROM monitoring.errors AS e INNER JOIN scrubbed AS s ON e.id = s.event_id),
    'card [Filtered] declined',
    'a captured message is scrubbed'
);
SELECT is(
    (
        SELECT e.exceptions -> 0 ->> 'value'
        FROM monitoring.errors AS e
        INNER JOIN scrubbed AS s ON e.id = s.event_id
    ),
    'card [Filtered] declined',
    'a captured exception value is scrubbed'
);
SELECT is(
    (
        SELECT e.stack_trace -> 0 -> 'vars'
        FROM monitoring.errors AS e
        INNER JOIN scrubbed AS s ON e.id = s.event_id
    ),
    '{"api_key": "[Filtered]", "amount": 10}'::jsonb,
    'the local variables of captured frames are scrubbed'
);
SELECT results_eq(
    $$SELECT e.context, e.tags, e.user_info, e.breadcrumbs
      FROM monitoring.errors AS e INNER JOIN scrubbed AS s ON e.id = s.event_id$$,
    $$VALUES (
        '{"user_id": "u1", "order": {"password": "[Filtered]"}}'::jsonb,
        '{"session": "[Filtered]", "region": "eu"}'::jsonb,
        '{"id": "u1", "auth_token": "[Filtered]"}'::jsonb,
        '[{"message": "Authorization: Bearer [Filtered]", "data": {"csrf": "[Filtered]"}}]'::jsonb
    )$$,
    'captured context, tags, user and breadcrumbs are scrubbed'
);
SELECT is(
    (
        SELECT i.title FROM monitoring.issues AS i
        WHERE i.service = 'scrub-test'
    ),
    'PaymentError: card [Filtered] declined',
    'the issue title is made from the scrubbed message'
);

SELECT monitoring.set_setting('scrub.enabled', 'false');
CREATE TEMPORARY TABLE unscrubbed AS
SELECT c.event_id
FROM monitoring.capture_message(
    'raw', p_context => '{"password": "hunter2"}', p_service => 'scrub-test'
) AS c;
SELECT is(
    (SELECT e.context FROM monitoring.errors AS e INNER JOIN unscrubbed AS u ON e.id = u.event_id),
    '{"password": "hunter2"}'::jsonb,
    'with scrub.enabled false, capture stores what it was given'
);

SELECT monitoring.reset_setting('scrub.enabled');
SELECT monitoring.set_setting('errors.max_message_length', '256');
CREATE TEMPORARY TABLE cut_key AS
SELECT c.event_id
FROM monitoring.capture_message(
    E'loading key -----BEGIN PRIVATE KEY-----\n' || repeat('MIIEvQIBADANBgkq', 40)
    || E'\n-----END PRIVATE KEY-----',
    p_service => 'scrub-test'
) AS c;
SELECT is(
    (
        SELECT strpos(e.message, 'MIIEvQIBADANBgkq')
        FROM monitoring.errors AS e INNER JOIN cut_key AS k ON e.id = k.event_id
    ),
    0,
    'a PEM key cut in two by the message length limit does not leak its first half'
);

-- The quick test that lets capture skip the walk: never false where the walk would filter.
SELECT ok(
    monitoring._may_hold_secrets(
        '[{"a": {"X_Api_Key_2": 1}}]'::jsonb::text, monitoring.scrub_key_pattern()
    ),
    'it sees a sensitive fragment inside a nested key, in any case'
);
SELECT ok(
    monitoring._may_hold_secrets(
        '{"note": "fine", "auth_level": null}'::jsonb::text, monitoring.scrub_key_pattern('[]')
    ),
    'a key containing auth is seen (auth_level)'
);
SELECT ok(
    NOT monitoring._may_hold_secrets(
        '{"note": "reset my password please", "user_id": 42}'::jsonb::text,
        monitoring.scrub_key_pattern()
    ),
    'a sensitive word in a value alone does not need the walk'
);
SELECT ok(
    monitoring._may_hold_secrets('{"n": "4111 1111 1111 1111"}', monitoring.scrub_key_pattern())
    AND monitoring._may_hold_secrets('{"h": "Bearer abc"}', monitoring.scrub_key_pattern()),
    'card numbers and bearer tokens in values are seen'
);
SELECT is(
    monitoring.scrub_with(
        '{"note": "reset my password please", "user_id": 42}', monitoring.scrub_key_pattern(), NULL
    ),
    '{"note": "reset my password please", "user_id": 42}'::jsonb,
    'and the walk agrees that such a document holds nothing to filter'
);

-- The LIKE patterns tested first are the regex's fragments, and never reject what it finds.
SELECT is(
    monitoring.scrub_key_likes(),
    (
        SELECT array_agg('%' || replace(f.frag, '_', '\_') || '%' ORDER BY f.ord)
        FROM
            unnest(string_to_array(monitoring.scrub_key_pattern(), '|'))
            WITH ORDINALITY AS f (frag, ord)
    ),
    'the LIKE patterns are the default key fragments, with _ escaped'
);
SELECT is(
    monitoring.scrub_key_likes('["Ssn", "100%_sure", ""]'),
    monitoring.scrub_key_likes() || '{%ssn%,%100\\%\\_sure%}'::text[],
    'extra keys are lowered and their LIKE wildcards escaped; empty ones are skipped'
);
SELECT is(
    monitoring.scrub_key_likes('["clé"]'),
    NULL,
    'a key that is not ASCII leaves no quick test (lower() and the regex could disagree)'
);
CREATE TEMPORARY TABLE quick_docs (doc text, extra jsonb);
INSERT INTO quick_docs VALUES
('{"X_API_KEY": 1}', '[]'), ('{"a": {"MySessionId": 2}}', '[]'),
('{"operation": "authorize"}', '[]'), ('{"user_id": 42}', '[]'),
('{"SSN_last4": "1234"}', '["ssn"]'), ('{"rate": "100%_sure"}', '["100%_sure"]'),
('{"h": "bearer x"}', '[]'), ('{"clé_api": 1}', '["CLÉ"]');
SELECT is_empty(
    $$
    SELECT d.doc FROM quick_docs AS d
    WHERE monitoring._may_hold_secrets(
        d.doc, monitoring.scrub_key_pattern(d.extra), monitoring.scrub_key_likes(d.extra)
    ) IS DISTINCT FROM monitoring._may_hold_secrets(d.doc, monitoring.scrub_key_pattern(d.extra))
    $$,
    'with the LIKE patterns the quick test answers as the regex alone does'
);
SELECT ok(
    NOT monitoring._may_hold_secrets(
        '{"operation": "authorize"}', monitoring.scrub_key_pattern(), monitoring.scrub_key_likes()
    )
    AND monitoring._may_hold_secrets(
        '{"X_API_KEY": 1}', monitoring.scrub_key_pattern(), monitoring.scrub_key_likes()
    ),
    'a fragment in a value passes the LIKEs but not the regex; one in a key, in capitals, both'
);
CREATE TEMPORARY TABLE capitals AS
SELECT c.event_id
FROM monitoring.capture_error('E', 'm', NULL, '{"Auth_Token": "abc", "ok": 1}') AS c;
SELECT is(
    (SELECT e.context FROM monitoring.errors AS e INNER JOIN capitals AS s ON e.id = s.event_id),
    '{"Auth_Token": "[Filtered]", "ok": 1}'::jsonb,
    'capture, which tests the LIKEs first, still filters a key in capitals'
);

-- What Sentry's event format allows besides keys and values, scrubbed by default: a card
-- number sent as a JSON number, headers as [name, value] pairs, query strings, form data and
-- cookies as strings, and a URL's password.
CREATE TEMPORARY TABLE shapes AS
SELECT (monitoring.capture_event(jsonb_build_object(
    'message', 'connecting to postgres://shop:s3cr3t@db.internal/shop failed',
    'extra', jsonb_build_object('cc', 4111111111111111, 'count', 1234567890123),
    'request', jsonb_build_object(
        'url', 'https://shop.example/checkout',
        'headers', '[["Authorization", "Basic c2hvcDpzM2NyM3Q="], ["Cookie", "sessionid=abc"],
            ["Accept", "text/html"]]'::jsonb,
        'query_string', 'page=2&password=hunter2&api_key=k-1',
        'data', 'user=ada&passwd=hunter2',
        'cookies', 'sessionid=abc; csrftoken=def'
    )
))).event_id;
CREATE TEMPORARY TABLE shaped AS
SELECT
    e.message,
    e.context,
    e.data
FROM monitoring.error_events AS e INNER JOIN shapes AS s ON e.event_id = s.event_id;
SELECT is(
    (SELECT s.context FROM shaped AS s),
    '{"cc": "[Filtered]", "count": 1234567890123}'::jsonb,
    'a card number sent as a JSON number is filtered; other numbers are kept'
);
SELECT is(
    (SELECT s.data -> 'request' -> 'headers' FROM shaped AS s),
    '[["Authorization", "[Filtered]"], ["Cookie", "[Filtered]"], ["Accept", "text/html"]]'::jsonb,
    'headers as [name, value] pairs are filtered by name'
);
SELECT is(
    (
        SELECT
            ARRAY[
                s.data -> 'request' ->> 'query_string', s.data -> 'request' ->> 'data',
                s.data -> 'request' ->> 'cookies'
            ]
        FROM shaped AS s
    ),
    ARRAY[
        'page=2&password=[Filtered]&api_key=[Filtered]', 'user=ada&passwd=[Filtered]',
        '[Filtered]'
    ],
    'query strings and form data as strings are filtered by name; cookies by their key'
);
SELECT is(
    (SELECT s.message FROM shaped AS s),
    'connecting to postgres://shop:[Filtered]@db.internal/shop failed',
    'a URL''s password is filtered, in messages too'
);
SELECT is(
    monitoring._scrub_string(
        'sessionid=abc; theme=dark; safe_token=1', monitoring.scrub_key_pattern(), '{safe_token}'
    ),
    'sessionid=[Filtered]; theme=dark; safe_token=1',
    'a cookie string keeps its safe keys and its other values'
);
SELECT ok(
    monitoring._may_hold_secrets(
        '[["X-Api-Key", "k"]]'::jsonb::text, monitoring.scrub_key_pattern()
    )
    AND monitoring._may_hold_secrets(
        '{"q": "a=1&token=2"}'::jsonb::text, monitoring.scrub_key_pattern()
    ),
    'the quick test sees a pair''s name and a name=value in a string'
);

SELECT is(
    monitoring.scrub((repeat('{"a": ', 3000) || '{"password": "x"}' || repeat('}', 3000))::jsonb)
    #>> '{a,a,a,a,a,a,a,a,a,a}',
    '[nested too deep: an object of 1 keys]',
    'scrub keeps JSON of any depth 10 levels deep, as capture does, instead of overflowing'
);

SELECT * FROM finish();
ROLLBACK;
