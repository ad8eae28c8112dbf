-- normalize_message: what each placeholder takes and leaves, the order between them, the line
-- and length bounds, and the function's own properties. Cases after Sentry's
-- tests/sentry/grouping/test_parameterization.py, in our own values; 'unlike Sentry' marks
-- the deliberate differences listed in sql/errors/normalize.sql.
BEGIN;

CREATE TEMP TABLE normalize_cases (
    id integer GENERATED ALWAYS AS IDENTITY,
    input text NOT NULL,
    expected text NOT NULL,
    description text NOT NULL,
    -- False where "pre <input> post" would change the meaning (line breaks, edges).
    wraps boolean NOT NULL DEFAULT TRUE
);

INSERT INTO normalize_cases (input, expected, description) VALUES
-- email: the address goes whole, the hostname inside it with it
('ada.lovelace@example.org', '<email>', 'email'),
('ada+alerts@mail.example.org', '<email>', 'email with a plus tag and a subdomain'),
('send to ops_team@localhost failed', 'send to <email> failed', 'email at a dotless host'),
('mail from ada@example.com.', 'mail from <email>.', 'email keeps the full stop after it'),
('user ''bob@x.org'' blocked', 'user ''<email>'' blocked', 'email stops at a quote'),
('@decorator applied', '@decorator applied', 'no email: nothing before @'),
('user@ has no domain', 'user@ has no domain', 'no email: nothing after @'),
-- url: any scheme; hostnames, addresses, ids and credentials inside go with it
('https://shop.example.net', '<url>', 'url'),
(
    'https://shop.example.net/cart/items.js?id=7&qty=2#top', '<url>',
    'url with path, query and fragment'
),
('ftp://ops:hunter2@files.example.com:2121', '<url>', 'url with credentials and port'),
('http://localhost:5000', '<url>', 'url at localhost'),
('http://10.1.2.3:8080', '<url>', 'url at an IPv4 address'),
('http://[fe80::1]:80', '<url>', 'url at a bracketed IPv6 address'),
('http://fe80::1', '<url>', 'url at an IPv6 address'),
(
    'GET http://10.0.0.7:8080/jobs/f47ac10b-58cc-4372-a567-0e02b2c3d479 failed',
    'GET <url> failed', 'url holding an address and a uuid is one <url>'
),
('postgres://app:secret@db.internal:5432/app', '<url>', 'url of any scheme (unlike Sentry)'),
(
    'tcp://broker.example.com:9092 had a problem', '<url> had a problem',
    'tcp url with port (unlike Sentry)'
),
('fetch ''https://x.example.com/a'' failed', 'fetch ''<url>'' failed', 'url stops at a quote'),
('file:///etc/app.conf', 'file:///etc/app.conf', 'no url: nothing between :// and the path'),
('see http:/broken', 'see http:/broken', 'no url: one slash'),
-- hostname: common TLDs only, all lower or all upper case
('api.example.com', '<hostname>', 'hostname'),
('eu.api.example.co.uk', '<hostname>', 'hostname with a two-part TLD'),
('MAIL.EXAMPLE.ORG', '<hostname>', 'hostname in upper case'),
('ip-10-0-1-12.ec2.internal', '<hostname>', 'hostname in .internal (unlike Sentry)'),
('cache.local:6379', '<hostname>:<int>', 'hostname and port'),
('config.yaml', 'config.yaml', 'no hostname: a file name'),
('index.html', 'index.html', 'no hostname: a web page'),
('Example.Com', 'Example.Com', 'no hostname: a TLD in mixed case'),
('done.It failed', 'done.It failed', 'no hostname: a missing blank after a full stop'),
('self.id', '<hostname>', 'like Sentry: an attribute named like a TLD reads as a hostname'),
-- ip
('192.168.0.12', '<ip>', 'IPv4'),
('10.0.0.1:5432', '<ip>:<int>', 'IPv4 and port'),
('10.0.0.0/8', '<ip>', 'IPv4 network (unlike Sentry)'),
('1.2.3.4.5', '<ip>.<int>', 'IPv4 and a fifth number'),
('256.1.1.1', '<float>.<float>', 'no IPv4: an octet above 255'),
('::', '<ip>', 'IPv6 unspecified address'),
('::1', '<ip>', 'IPv6 loopback'),
('[::1]:8080', '[<ip>]:<int>', 'IPv6 loopback in brackets, with port'),
('fd00::/8', '<ip>', 'IPv6 network'),
('2001:db8:85a3::8a2e:370:7334', '<ip>', 'IPv6 compressed'),
('2001:0db8:0000:0000:0000:ff00:0042:8329', '<ip>', 'IPv6 in eight groups'),
('::ffff:10.0.0.1', '<ip>', 'IPv4 mapped to IPv6'),
('fe80::1%eth0', '<ip>', 'IPv6 with a zone (unlike Sentry)'),
('Result::unwrap()', 'Result::unwrap()', 'no IPv6: a Rust path'),
('Dbe::call()', 'Dbe::call()', 'no IPv6: a class name made of hex letters'),
('Fee::add()', 'Fee::add()', 'no IPv6: hex letters on both sides but no digit (unlike Sentry)'),
('App::Models::User', 'App::Models::User', 'no IPv6: a Ruby constant path'),
('23456:7:890', '<int>:<int>:<int>', 'no IPv6: five digits before a colon'),
('321:5:67890', '<int>:<int>:<int>', 'no IPv6: five digits after a colon'),
-- traceparent
(
    'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    'traceparent: <traceparent>', 'W3C traceparent'
),
('Root=1-5759e988-bd862e3fe1be46a994272793', 'Root=<traceparent>', 'AWS trace id'),
(
    'cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09', '<traceparent>',
    'W3C traceparent of another version (unlike Sentry)'
),
(
    'fed1-5759e988-bd862e3fe1be46a994272793', '<hex>-<hex>-<hex>',
    'no AWS trace id: glued to a word'
),
-- uuid, sha1, md5
('f47ac10b-58cc-4372-a567-0e02b2c3d479', '<uuid>', 'uuid'),
('F47AC10B-58CC-4372-A567-0E02B2C3D479', '<uuid>', 'uuid in upper case'),
(
    'f47ac10b-58cc-4372-a567-0e02b2c3d479/9b2e4c1a-3f5d-4e6b-8a7c-1d2e3f4a5b6c',
    '<uuid>/<uuid>', 'two uuids'
),
(
    'f47ac10b-58cc-4372-a567-0e02b2c3d47', '<hex>-<hex>-<int>-<hex>-<hex>',
    'no uuid: a digit short; the dashes stay'
),
('da39a3ee5e6b4b0d3255bfef95601890afd80709', '<sha1>', 'sha1'),
('d41d8cd98f00b204e9800998ecf8427e', '<md5>', 'md5'),
(
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '<hex>',
    'sha256 is plain hex'
),
('md5 mismatch for sha1', 'md5 mismatch for sha1', 'no hash: the words md5 and sha1'),
-- date: ISO 8601 and RFC 3339
('2025-03-14T09:26:53', '<date>', 'ISO date and time'),
('2025-03-14T09:26', '<date>', 'ISO date and time without seconds'),
('2025-03-14T09:26:53Z', '<date>', 'RFC 3339 in UTC'),
('2025-03-14T09:26:53.123456789Z', '<date>', 'RFC 3339 with nanoseconds'),
('2025-03-14T09:26:53Z07:00', '<date>', 'Go''s RFC 3339 layout'),
('2025-03-14 09:26:53', '<date>', 'date and time with a blank'),
('2025-03-14 09:26:53+05:30', '<date>', 'date and time with an offset'),
('2025-03-14 09:26:53.250', '<date>', 'date and time with milliseconds'),
('20250314T092653', '<date>', 'compressed date and time'),
('20250314 092653Z', '<date>', 'compressed date and time with a blank, in UTC'),
('20250314T092653+0100', '<date>', 'compressed date and time with an offset'),
('20250314 09:26:53.250000', '<date>', 'compressed date, colon time'),
('2025-03-14', '<date>', 'ISO date'),
('backup_2025-03-14.sql', 'backup_<date>.sql', 'ISO date inside a file name'),
('2025-03-41', '<int>-<int>-<int>', 'no date: day 41'),
('2025-13-14', '<int>-<int>-<int>', 'no date: month 13 (unlike Sentry)'),
('20250-03-14', '<int>-<int>-<int>', 'no date: a five-digit year'),
('2025-03', '<int>-<int>', 'no date: no day'),
-- date: named forms
('Fri, 14 Mar 2025 09:26:53 GMT', '<date>', 'RFC 1123'),
('Fri, 14 Mar 2025 09:26:53 -0500', '<date>', 'RFC 1123 with an offset'),
('Fri, 14 Mar 25 09:26 CET', '<date>', 'RFC 822'),
('Friday, 14-Mar-25 09:26:53 GMT', '<date>', 'RFC 850'),
('Fri, 14-Mar-25 09:26:53 GMT', '<date>', 'RFC 850 with a short weekday'),
('Wed, 21-Oct-2015 07:28:00 GMT', '<date>', 'cookie expiry'),
('14 Mar 2025 09:26:53', '<date>', 'RFC 1123 without weekday and zone (unlike Sentry)'),
(
    'Fri Mar 14 2025 09:26:53 GMT+0100 (Central European Standard Time)', '<date>',
    'JavaScript Date'
),
('Fri Mar 14 2025 09:26:53 GMT-0500', '<date>', 'JavaScript Date without the zone name'),
('Mon Jan  2 15:04:05 2006', '<date>', 'C asctime() (unlike Sentry)'),
('Mon Jan 2 15:04:05 MST 2006', '<date>', 'Unix date(1) (unlike Sentry)'),
('Mar 14, 2025', '<date>', 'month day, year'),
('Fri Mar 14, 2025', '<date>', 'weekday month day, year'),
('Friday, March 14, 2025', '<date>', 'full names (unlike Sentry)'),
('datetime.datetime(2025, 3, 14, 9, 26, 53, 250000)', '<date>', 'Python datetime repr'),
(
    'datetime.datetime(2025, 3, 14, 9, 26, '
    || 'tzinfo=datetime.timezone(datetime.timedelta(seconds=3600)))',
    '<date>', 'Python datetime repr with a nested time zone (unlike Sentry)'
),
('datetime.date(2024, 2, 29)', '<date>', 'Python date repr (unlike Sentry)'),
-- date: clock times
('09:26', '<date>', 'time'),
('9:26', '<date>', 'time with a one-digit hour'),
('0:05', '<date>', 'time just after midnight'),
('23:59:59', '<date>', 'time with seconds'),
('15:04:05.123', '<date>', 'time with milliseconds (unlike Sentry)'),
('10:45 PM', '<date>', '12-hour time'),
('10:45pm', '<date>', '12-hour time without a blank'),
('7:05:09 AM', '<date>', '12-hour time with seconds'),
('745:31', '<int>:<int>', 'no time: three-digit hour'),
('10:4512', '<int>:<int>', 'no time: four-digit minute'),
('24:10', '<int>:<int>', 'no time: hour 24'),
('10:61', '<int>:<int>', 'no time: minute 61'),
('10:30:61', '<int>:<int>:<int>', 'no time: second 61'),
-- duration
('0ms', '<duration>', 'zero milliseconds'),
('250ms', '<duration>', 'milliseconds'),
('1000000ms', '<duration>', 'a million milliseconds'),
('2.5s', '<duration>', 'fractional seconds'),
('30s', '<duration>', 'seconds'),
('15µs', '<duration>', 'microseconds (unlike Sentry)'),
('90min', '<duration>', 'minutes (unlike Sentry)'),
('1h2m3.5s', '<duration>', 'Go''s compound duration (unlike Sentry)'),
('10mb', '10mb', 'no duration: a size'),
('x30s', 'x30s', 'no duration: glued to a word before (unlike Sentry)'),
('10msec', '10msec', 'no duration: glued to a word after (unlike Sentry)'),
-- swift_txn_id
('tx0123456789abcdef01234-00651f2a3b', '<swift_txn_id>', 'Swift transaction id'),
('tx0123456789abcdef01234-00651f2a3b-east1', '<swift_txn_id>', 'Swift id with a suffix'),
(
    'zz0123456789abcdef01234-00651f2a3b', 'zz0123456789abcdef01234-<hex>',
    'no Swift id: not tx'
),
-- hex
('0x1f', '<hex>', 'hex with 0x'),
('0XBADF00D', '<hex>', 'hex with 0X'),
('0xcafe', '<hex>', 'hex with 0x, letters only'),
('7fa3', '<hex>', 'four hex digits with a letter and a digit'),
('7FA3', '<hex>', 'four upper case hex digits'),
('7fa3c2', '<hex>', 'six hex digits'),
('7fa3c2e91b04', '<hex>', 'twelve hex digits'),
('facade12', '<hex>', 'eight hex digits'),
('FACADE12', '<hex>', 'eight upper case hex digits'),
('deadface', '<hex>', 'eight hex letters'),
('87654321', '<hex>', 'eight digits'),
('-87654321', '<hex>', 'eight digits with a minus'),
('A93C7D2', '<hex>', 'seven upper case hex digits (unlike Sentry)'),
(pg_catalog.repeat('ab12', 40), '<hex>', '160 hex digits (unlike Sentry)'),
('7fa', '7fa', 'no hex: three characters'),
('e2e', 'e2e', 'no hex: three characters again'),
('cafe', 'cafe', 'no hex: four letters'),
('deadbee', 'deadbee', 'no hex: seven letters'),
('Facade12', 'Facade12', 'no hex: mixed case'),
('beef 42', 'beef <int>', 'no hex: the digits are in another word'),
-- git_sha
('deploy 3f9c2e1', 'deploy <git_sha>', 'git sha'),
('deploy facade1', 'deploy <git_sha>', 'git sha with one digit'),
('-a93c7d2', '-<git_sha>', 'git sha after a dash'),
('deploy defaced', 'deploy defaced', 'no git sha: letters only'),
('deploy 5550123', 'deploy <int>', 'no git sha: digits only'),
-- float and int
('3.14', '<float>', 'float'),
('-3.14', '<float>', 'negative float'),
('x-1.5', 'x-<float>', 'a dash between a word and a float is no minus (unlike Sentry)'),
('42', '<int>', 'int'),
('-42', '<int>', 'negative int'),
('7654321', '<int>', 'seven digits'),
('-7654321', '<int>', 'seven digits with a minus'),
('0:31415', '<int>:<int>', 'ints around a colon'),
('offset:-31415', 'offset:<int>', 'negative int after a colon'),
('offset: -31415', 'offset: <int>', 'negative int after a blank'),
('555-0199', '<int>-<int>', 'a dash between digits is no minus'),
('lucy-907', 'lucy-<int>', 'a dash after a word is no minus'),
('{"err" => "(#48151)', '{"err" => "(#<int>)', 'int after #'),
('1,234,567', '<int>,<int>,<int>', 'like Sentry: a thousands separator splits a number'),
('v2.3.4 released', 'v2.<float> released', 'like Sentry: a version is taken apart'),
('Encoding: utf-8', 'Encoding: utf-8', 'utf-8 keeps its 8 (unlike Sentry)'),
('UTF-16 fails', 'UTF-16 fails', 'UTF-16 keeps its 16 (unlike Sentry)'),
('int32 overflow', 'int32 overflow', 'no int: digits inside a word'),
-- quoted_str and bool: only the value of key=value
('k=''7''', 'k=<quoted_str>', 'single-quoted value'),
('k="7"', 'k=<quoted_str>', 'double-quoted value'),
('k="10.0.0.1 5 x=False"', 'k=<quoted_str>', 'quoted value holding other kinds'),
('b=''x'' c="y"', 'b=<quoted_str> c=<quoted_str>', 'two quoted values'),
('k = ''7''', 'k = ''<int>''', 'no quoted_str: blanks around ='),
('k=''open"', 'k=''open"', 'no quoted_str: the quotes differ'),
('empty=''''', 'empty=''''', 'no quoted_str: empty'),
('on=false', 'on=<bool>', 'bool'),
('on=True', 'on=<bool>', 'bool, capitalised'),
('ok=true, retry=False', 'ok=<bool>, retry=<bool>', 'two bools'),
('True', 'True', 'no bool: no ='),
('on = true', 'on = true', 'no bool: blanks around ='),
('on=TRUE', 'on=TRUE', 'no bool: upper case'),
('on=trueish', 'on=trueish', 'no bool: a longer word (unlike Sentry)'),
-- text that has nothing to replace
('The quick brown fox', 'The quick brown fox', 'plain text'),
(
    'TypeError: Cannot read properties of undefined (reading ''map'')',
    'TypeError: Cannot read properties of undefined (reading ''map'')', 'a message without ids'
),
('Ошибка: пользователь не найден', 'Ошибка: пользователь не найден', 'Cyrillic text'),
(
    'Benutzer 42 nicht gefunden — Größe 3.5', 'Benutzer <int> nicht gefunden — Größe <float>',
    'German text with numbers'
),
('用户 7 不存在', '用户 <int> 不存在', 'Chinese text with a number'),
('🔥 at 10:30', '🔥 at <date>', 'an emoji and a time'),
-- several kinds in one message
('0.0.0.0:80', '<ip>:<int>', 'address and port'),
(
    'connection to server at "db-2.internal" (10.0.2.5), port 5432 failed: timeout expired',
    'connection to server at "<hostname>" (<ip>), port <int> failed: timeout expired',
    'a PostgreSQL connection error'
),
(
    'UnicodeDecodeError: ''utf-8'' codec can''t decode byte 0x97 in position 23: '
    || 'invalid start byte',
    'UnicodeDecodeError: ''utf-8'' codec can''t decode byte <hex> in position <int>: '
    || 'invalid start byte',
    'a Python decoding error'
),
(
    'Request 9b2e4c1a-3f5d-4e6b-8a7c-1d2e3f4a5b6c from ada@example.org failed after 1.5s',
    'Request <uuid> from <email> failed after <duration>', 'uuid, email and duration'
),
('key=''bob@x.org''', 'key=<quoted_str>', 'an email inside a quoted value');

INSERT INTO normalize_cases (input, expected, description, wraps) VALUES
('', '', 'empty', FALSE),
(E'  \t ', '', 'blanks only', FALSE),
(E'\n\n \r\n', '', 'blank lines only', FALSE),
('   padded 7   ', 'padded <int>', 'blanks around the text', FALSE),
(E'first\nsecond\nthird', E'first\nsecond', 'the first two lines', FALSE),
(
    E'\n\n  first 1 \n \t \nsecond 2\nthird 3', E'first <int>\nsecond <int>',
    'blank lines and blanks around lines are skipped', FALSE
),
(E'one\r\ntwo\r\nthree', E'one\ntwo', 'CRLF line breaks', FALSE),
(E'one\rtwo\rthree', E'one\ntwo', 'CR line breaks', FALSE),
(E'boom\n', 'boom', 'one line and a trailing line break', FALSE),
(
    E'Traceback (most recent call last):\n  File "/app/views.py", line 20, in handler\n'
    || 'RuntimeError: boom',
    E'Traceback (most recent call last):\nFile "/app/views.py", line <int>, in handler',
    'a Python traceback keeps its first two lines', FALSE
),
(
    E'at 2025-03-14\n09:26:53 GMT', E'at <date>\n<date> GMT', 'no date spans the line break',
    FALSE
),
(
    E'k=''first\nsecond''', E'k=''first\nsecond''',
    'no quoted_str spans the line break (unlike Sentry)', FALSE
);

SELECT plan((SELECT pg_catalog.count(*)::integer FROM normalize_cases) + 18);

SELECT is(monitoring.normalize_message(c.input), c.expected, c.description)
FROM normalize_cases AS c
ORDER BY c.id;

SELECT is_empty(
    $$SELECT c.input, monitoring.normalize_message('pre ' || c.input || ' post')
      FROM normalize_cases AS c
      WHERE c.wraps
        AND monitoring.normalize_message('pre ' || c.input || ' post')
        IS DISTINCT FROM 'pre ' || c.expected || ' post'$$,
    'every case gives the same with words before and after it'
);

SELECT is_empty(
    $$SELECT c.input FROM normalize_cases AS c
      WHERE monitoring.normalize_message(monitoring.normalize_message(c.input))
        IS DISTINCT FROM monitoring.normalize_message(c.input)$$,
    'normalising a normalised message changes nothing'
);

-- NULL, and the bounds that keep a huge message cheap
SELECT is(monitoring.normalize_message(NULL), NULL, 'NULL gives NULL');
SELECT is(
    pg_catalog.length(monitoring.normalize_message(pg_catalog.repeat('x', 5000))), 1000,
    'a line is cut to 1000 characters'
);
SELECT is(
    monitoring.normalize_message(pg_catalog.repeat('x', 999) || ' 12345'),
    pg_catalog.repeat('x', 999),
    'the cut comes before replacing, and blanks at the cut go'
);
SELECT is(
    pg_catalog.length(
        monitoring.normalize_message(
            pg_catalog.repeat('x', 3000) || E'\n' || pg_catalog.repeat('y', 3000)
        )
    ),
    2001,
    'each of the two lines is cut to 1000 characters'
);
SELECT is(
    monitoring.normalize_message(pg_catalog.repeat(' ', 10000) || 'late'), '',
    'text that starts after the first 10000 characters is not read'
);
SELECT is(
    monitoring.normalize_message('first' || pg_catalog.repeat(E'\n', 9990) || 'second line'),
    E'first\nsecon',
    'a second line that starts near the 10000th character is read up to it'
);
SELECT is(
    monitoring.normalize_message('first' || pg_catalog.repeat(E'\n', 10000) || 'second'),
    'first',
    'a second line after the first 10000 characters is not read'
);
SELECT is(
    monitoring.normalize_message(pg_catalog.repeat('Order 42 failed ', 65536)),
    pg_catalog.repeat('Order <int> failed ', 62) || 'Order <int>',
    'a 1 MB message is read no further than its first line''s first 1000 characters'
);
SELECT is(
    pg_catalog.length(monitoring.normalize_message(pg_catalog.repeat('1 ', 500000))), 2999,
    'a 1 MB message of numbers gives one line of 500 placeholders'
);

-- properties the capture path relies on
SELECT is(
    (
        SELECT p.provolatile FROM pg_catalog.pg_proc AS p
        WHERE p.oid = 'monitoring.normalize_message(text)'::regprocedure
    ),
    'i',
    'IMMUTABLE'
);
SELECT ok(
    (
        SELECT p.proisstrict FROM pg_catalog.pg_proc AS p
        WHERE p.oid = 'monitoring.normalize_message(text)'::regprocedure
    ),
    'STRICT'
);
SELECT is(
    (
        SELECT p.proparallel FROM pg_catalog.pg_proc AS p
        WHERE p.oid = 'monitoring.normalize_message(text)'::regprocedure
    ),
    's',
    'PARALLEL SAFE'
);
SELECT ok(
    pg_catalog.has_function_privilege(
        'monitoring_writer', 'monitoring.normalize_message(text)', 'EXECUTE'
    ),
    'monitoring_writer may call it'
);
SELECT ok(
    pg_catalog.has_function_privilege(
        'monitoring_reader', 'monitoring.normalize_message(text)', 'EXECUTE'
    ),
    'monitoring_reader may call it'
);
SELECT ok(
    pg_catalog.has_function_privilege(
        'monitoring_admin', 'monitoring.normalize_message(text)', 'EXECUTE'
    ),
    'monitoring_admin may call it'
);
SELECT ok(
    NOT pg_catalog.has_function_privilege(
        'public', 'monitoring.normalize_message(text)', 'EXECUTE'
    ),
    'PUBLIC may not call it'
);

SELECT * FROM finish();
ROLLBACK;
