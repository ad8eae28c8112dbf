-- Stack traces: which frames are the application's own, Python traceback text as structured
-- frames (root cause first, oldest call first), and over-long stacks cut in the middle.
BEGIN;
SELECT plan(33);

-- frame_in_app: the application's files are in-app; packages, the standard library and the
-- interpreter are not.
SELECT is(monitoring.frame_in_app(t.filename, t.module), t.in_app, t.what)
FROM (
    VALUES
    ('/app/shop/payments.py', NULL, TRUE, 'an application file is in-app'),
    ('/app/lib/helpers.py', NULL, TRUE, 'an application directory named lib is still in-app'),
    ('payments.py', NULL, TRUE, 'a bare file name is in-app'),
    (
        '/srv/venv/lib/python3.11/site-packages/requests/api.py', NULL, FALSE,
        'site-packages is not in-app'
    ),
    (
        '/usr/lib/python3/dist-packages/urllib3/connection.py', NULL, FALSE,
        'dist-packages is not in-app'
    ),
    (
        '/usr/lib/python3.11/json/decoder.py', NULL, FALSE,
        'the standard library under /usr/lib/python3.11 is not in-app'
    ),
    (
        '/usr/local/lib/python3.12/asyncio/events.py', NULL, FALSE,
        'the standard library under /usr/local/lib/python3.12 is not in-app'
    ),
    (
        '/usr/lib64/python3.11/json/decoder.py', NULL, FALSE,
        'the standard library under /usr/lib64 (Fedora, RHEL) is not in-app'
    ),
    (
        'C:\Python311\Lib\json\decoder.py', NULL, FALSE,
        'the standard library of a Windows install (Python311\Lib) is not in-app'
    ),
    (
        'C:\app\venv\Lib\site-packages\requests\api.py', NULL, FALSE,
        'Windows site-packages is not in-app'
    ),
    ('<frozen importlib._bootstrap>', NULL, FALSE, 'a frozen interpreter module is not in-app'),
    (
        NULL, 'asyncio.events', FALSE,
        'a standard library module known only by its module name is not in-app'
    )
) AS t (filename, module, in_app, what);

-- parse_python_traceback: one exception.
SELECT is(
    monitoring.parse_python_traceback(
        $tb$Traceback (most recent call last):
  File "/app/shop/views.py", line 10, in checkout
    charge(order)
  File "/app/shop/payments.py", line 42, in charge
    raise PaymentError("card declined")
shop.errors.PaymentError: card declined
$tb$
    ),
    $json$[{"type": "PaymentError", "module": "shop.errors", "value": "card declined",
        "frames": [
            {"filename": "views.py", "abs_path": "/app/shop/views.py", "lineno": 10,
             "function": "checkout", "context_line": "charge(order)", "in_app": true},
            {"filename": "payments.py", "abs_path": "/app/shop/payments.py", "lineno": 42,
             "function": "charge", "context_line": "raise PaymentError(\"card declined\")",
             "in_app": true}]}]$json$::jsonb,
    'a traceback becomes one exception: type, module, value and frames oldest call first'
);

SELECT is(
    monitoring.parse_python_traceback(
        E'Traceback (most recent call last):\r\n  File "/app/a.py", line 1, in <module>\r\n'
        || E'    main()\r\nKeyboardInterrupt\r\n'
    ),
    $json$[{"type": "KeyboardInterrupt", "module": null, "value": "",
        "frames": [{"filename": "a.py", "abs_path": "/app/a.py", "lineno": 1,
            "function": "<module>", "context_line": "main()", "in_app": true}]}]$json$::jsonb,
    'Windows line ends are understood, and an exception without a value has an empty value'
);

-- Python 3.11+ marks the failing expression with carets under the source line.
CREATE TEMPORARY TABLE carets AS
SELECT monitoring.parse_python_traceback(
    $tb$Traceback (most recent call last):
  File "/app/shop/payments.py", line 42, in charge
    total = order.total / order.count
            ~~~~~~~~~~~~^~~~~~~~~~~~~
  File "/app/shop/orders.py", line 7, in count
    return len(self.items) // 0
           ^^^^^^^^^^^^^^^^^^^^
ZeroDivisionError: integer division or modulo by zero
$tb$
) AS chain;

SELECT is(
    (SELECT jsonb_array_length(chain -> 0 -> 'frames') FROM carets),
    2,
    'caret lines (^^^^ and ~~~^~~~) are not frames'
);
SELECT is(
    (
        SELECT array_agg(x.f ->> 'context_line' ORDER BY x.ord)
        FROM carets AS c
        CROSS JOIN jsonb_array_elements(c.chain -> 0 -> 'frames') WITH ORDINALITY AS x (f, ord)
    ),
    ARRAY['total = order.total / order.count', 'return len(self.items) // 0'],
    'caret lines are not taken for source lines'
);

-- Chained exceptions, both kinds, root cause first.
CREATE TEMPORARY TABLE chained AS
SELECT
    monitoring.parse_python_traceback(
        $tb$Traceback (most recent call last):
  File "/app/shop/gateway.py", line 12, in post
    return session.post(url, json=body, timeout=30)
  File "/srv/venv/lib/python3.11/site-packages/requests/sessions.py", line 637, in post
    return self.request("POST", url, data=data, json=json, **kwargs)
  File "<frozen importlib._bootstrap>", line 1, in _call
requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='pay.example.com'): timed out

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/shop/payments.py", line 42, in charge
    raise PaymentTimeout("gateway timed out") from exc
shop.errors.PaymentTimeout: gateway timed out
$tb$
    ) AS cause,
    monitoring.parse_python_traceback(
        $tb$Traceback (most recent call last):
  File "/app/shop/cache.py", line 3, in get
    return self.data[key]
KeyError: 'cart:42'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/shop/cache.py", line 5, in get
    raise CacheMiss(key)
CacheMiss: cart:42
$tb$
    ) AS context;

SELECT is(
    (SELECT jsonb_path_query_array(cause, '$[*].type') FROM chained),
    '["ReadTimeout", "PaymentTimeout"]'::jsonb,
    '"The above exception was the direct cause": two exceptions, the root cause first'
);
SELECT is(
    (SELECT cause -> 0 ->> 'module' FROM chained),
    'requests.exceptions',
    'a dotted exception name gives the module'
);
SELECT is(
    (SELECT cause -> 0 ->> 'value' FROM chained),
    'HTTPSConnectionPool(host=''pay.example.com''): timed out',
    'the value is everything after the first colon'
);
SELECT is(
    (SELECT jsonb_path_query_array(cause, '$[0].frames[*].in_app') FROM chained),
    '[true, false, false]'::jsonb,
    'in the parsed frames, site-packages and frozen modules are not in-app'
);
SELECT is(
    (SELECT jsonb_path_query_array(cause, '$[1].frames[*].function') FROM chained),
    '["charge"]'::jsonb,
    'each exception keeps its own frames'
);
SELECT is(
    (SELECT jsonb_path_query_array(context, '$[*].type') FROM chained),
    '["KeyError", "CacheMiss"]'::jsonb,
    '"During handling of the above exception": two exceptions, the first one first'
);

SELECT is(
    monitoring.parse_python_traceback(
        $tb$Traceback (most recent call last):
  File "/app/walk.py", line 3, in walk
    return walk(node.parent)
  File "/app/walk.py", line 3, in walk
    return walk(node.parent)
  [Previous line repeated 996 more times]
RecursionError: maximum recursion depth exceeded
$tb$
    ) -> 0 -> 'frames' -> 1 ->> 'function',
    'walk',
    'the "[Previous line repeated]" note is skipped, not taken for a frame or an exception'
);

SELECT is(
    monitoring.parse_python_traceback(
        E'Traceback (most recent call last):\n  File "/app/a.py", line 9, in main\n    run()\n'
    ),
    $json$[{"type": null, "value": null, "frames": [{"filename": "a.py",
        "abs_path": "/app/a.py", "lineno": 9, "function": "main", "context_line": "run()",
        "in_app": true}]}]$json$::jsonb,
    'a traceback cut off before its exception line keeps its frames'
);

SELECT is(
    monitoring.parse_python_traceback('it broke: see the logs' || E'\n' || 'File "x", line y'),
    '[]'::jsonb,
    'text that is no traceback gives an empty chain, not an error'
);
SELECT is(monitoring.parse_python_traceback(''), '[]'::jsonb, 'empty text gives an empty chain');
SELECT is(monitoring.parse_python_traceback(NULL), '[]'::jsonb, 'NULL gives an empty chain');

-- trim_frames keeps the entry point and the failure.
CREATE TEMPORARY TABLE ten_frames AS
SELECT jsonb_agg(jsonb_build_object('function', 'f' || i) ORDER BY i) AS frames
FROM generate_series(1, 10) AS i;

SELECT is(
    (SELECT monitoring.trim_frames(frames, 10) FROM ten_frames),
    (SELECT frames FROM ten_frames),
    'a stack within the limit is kept as it is'
);
SELECT is(
    (
        SELECT jsonb_path_query_array(monitoring.trim_frames(frames, 4), '$[*].function')
        FROM ten_frames
    ),
    '["f1", "f2", "[6 frames omitted]", "f9", "f10"]'::jsonb,
    'an over-long stack keeps its outermost and innermost halves around a marker'
);
SELECT is(
    (
        SELECT jsonb_path_query_array(monitoring.trim_frames(frames, 5), '$[*].function')
        FROM ten_frames
    ),
    '["f1", "f2", "[5 frames omitted]", "f8", "f9", "f10"]'::jsonb,
    'with an odd limit the innermost side, where the failure is, keeps the extra frame'
);
SELECT is(
    (SELECT monitoring.trim_frames(frames, 4) -> 2 FROM ten_frames),
    '{"function": "[6 frames omitted]", "frames_omitted": 6, "in_app": false}'::jsonb,
    'the marker frame counts the frames dropped and is not in-app'
);
SELECT is(
    monitoring.trim_frames('{"not": "frames"}', 1),
    '{"not": "frames"}'::jsonb,
    'something that is not an array of frames is returned as it is'
);
SELECT is(monitoring.trim_frames(NULL, 1), NULL, 'NULL stays NULL');

SELECT * FROM finish();
ROLLBACK;
