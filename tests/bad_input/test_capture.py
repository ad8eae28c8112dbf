"""Capture (monitoring_writer): capture_error (jsonb and text stack traces), capture_message,
capture_event (jsonb and text) and capture_events (jsonb and text) with bad input.

An oversize value is stored cut with a marker; a wrong type or format is refused naming
the argument or the JSON field (22023, or 22004 for a missing value); a refused capture
leaves no row anywhere.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.rows import dict_row

from .suite import (
    EVENTS,
    MB,
    SECRET,
    Case,
    Database,
    assert_bounded,
    assert_healthy,
    call,
    has_cut_marker,
    js,
    limits,
    long_array,
    nested_arrays,
    nested_objects,
    noise,
    ok,
    python_traceback,
    refused,
    select,
    table,
    text_of,
    wide_object,
)

NULL_STATES = ("22004",)
# four bytes in UTF-8: the most a character takes of an index entry
EMOJI = "\U0001f600"


def error_with(*params: str) -> str:
    """capture_error(type, message, <params>)."""
    return select("capture_error", "::text", "::text", *params)


def message_with(*params: str) -> str:
    return select("capture_message", "::text", *params)


EVENT = select("capture_event", "::jsonb")
EVENT_TEXT = select("capture_event", "::text")
EVENTS_BATCH = select("capture_events", "::jsonb")
EVENTS_TEXT = select("capture_events", "::text")
ERROR = error_with()
ERROR_STACK = error_with("::jsonb")
ERROR_STACK_TEXT = error_with("::text")
ERROR_CONTEXT = error_with("p_context::jsonb")
MESSAGE = message_with()


def event(**fields: Any) -> str:
    return js({"message": "bad input", **fields})


def event_with(fields: str) -> str:
    """An event whose other fields are JSON text as written (too deep for json.dumps)."""
    return '{"message": "bad input", ' + fields + "}"


def frames(count: int, frame: str = '{"function": "f", "module": "app"}') -> str:
    return long_array(count, frame)


# Both calls of one statement share now(): the second is a resend of the first.
RESENT_ID = uuid.uuid4()
RESENT = " UNION ALL ".join(
    [
        error_with("p_event_id::uuid", "p_occurred_at::timestamptz").replace(
            "%s::timestamptz", "now()"
        )
    ]
    * 2
)

CAPTURE_ERROR = [
    # what it must be given, and what it must be
    refused(
        "error-all-null",
        ERROR_STACK,
        (None, None, None),
        states=NULL_STATES,
        names="p_exception_type",
    ),
    refused("error-blank-type-and-message", ERROR, ("  ", "\t\n\r "), states=NULL_STATES),
    ok("error-null-type-with-message", ERROR, (None, "boom")),
    ok("error-null-message-with-type", ERROR, ("Failure", None)),
    ok("error-json-null-stack-trace", ERROR_STACK, (None, None, "null")),
    refused("error-level-unknown", error_with("p_level"), ("T", "m", "bogus"), names="p_level"),
    refused("error-level-empty", error_with("p_level"), ("T", "m", ""), names="p_level"),
    refused(
        "error-level-10mb",
        error_with("p_level"),
        lambda: ("T", "m", text_of(10 * MB)),
        names="p_level",
        timeout=5,
    ),
    refused(
        "error-level-injection",
        error_with("p_level"),
        ("T", "m", "error'); DROP TABLE monitoring.error_events; --"),
        names="p_level",
    ),
    ok("error-level-null-is-error", error_with("p_level"), ("T", "m", None)),
    ok("error-level-any-case-and-blanks", error_with("p_level"), ("T", "m", " WARN ")),
    # bags of the wrong JSON type
    refused("error-context-array", ERROR_CONTEXT, ("T", "m", "[1, 2]"), names="p_context"),
    refused("error-context-string", ERROR_CONTEXT, ("T", "m", '"x"'), names="p_context"),
    ok("error-context-json-null", ERROR_CONTEXT, ("T", "m", "null")),
    refused("error-tags-array", error_with("p_tags::jsonb"), ("T", "m", "[]"), names="p_tags"),
    refused("error-user-number", error_with("p_user::jsonb"), ("T", "m", "7"), names="p_user"),
    refused(
        "error-breadcrumbs-object",
        error_with("p_breadcrumbs::jsonb"),
        ("T", "m", "{}"),
        names="p_breadcrumbs",
    ),
    # stack traces of every wrong shape
    refused("stack-number", ERROR_STACK, ("T", "m", "5"), names="p_stack_trace"),
    refused("stack-boolean", ERROR_STACK, ("T", "m", "true"), names="p_stack_trace"),
    refused(
        "stack-frames-not-array", ERROR_STACK, ("T", "m", '{"frames": 5}'), names="p_stack_trace"
    ),
    refused(
        "stack-values-not-array",
        ERROR_STACK,
        ("T", "m", '{"values": {}}'),
        names="p_stack_trace.values",
    ),
    refused(
        "stack-values-scalar-exception",
        ERROR_STACK,
        ("T", "m", '{"values": [1]}'),
        names="p_stack_trace.values",
    ),
    refused(
        "stack-chain-frames-string",
        ERROR_STACK,
        ("T", "m", '[{"type": "A", "frames": "f"}]'),
        names="p_stack_trace",
    ),
    ok("stack-frames-of-scalars", ERROR_STACK, ("T", "m", '[1, "x", null, [], {}]')),
    ok(
        "stack-frame-fields-of-wrong-types",
        ERROR_STACK,
        (
            "T",
            "m",
            js(
                [
                    {
                        "function": {"a": 1},
                        "module": [1],
                        "lineno": "x",
                        "in_app": "maybe",
                        "pre_context": "x",
                        "post_context": 5,
                        "vars": "x",
                        "context_line": 7,
                    }
                ]
            ),
        ),
    ),
    ok("stack-frames-100k", ERROR_STACK, lambda: ("T", "m", frames(100_000)), cut=True),
    ok(
        "stack-frame-vars-nested-5000",
        ERROR_STACK,
        lambda: ("T", "m", '[{"function": "f", "vars": ' + nested_objects(5000) + "}]"),
        cut=True,
    ),
    ok(
        "stack-frame-vars-secret",
        ERROR_STACK,
        ("T", "m", js([{"function": "f", "vars": {"db_password": SECRET, "x": 1}}])),
    ),
    ok(
        "stack-frame-context-line-1mb",
        ERROR_STACK,
        lambda: ("T", "m", js([{"function": "f", "context_line": text_of(MB)}])),
        cut=True,
    ),
    ok(
        "stack-frame-pre-context-100k-lines",
        ERROR_STACK,
        lambda: ("T", "m", js([{"function": "f", "pre_context": ["x = 1"] * 100_000}])),
    ),
    ok(
        "stack-frames-forged-omitted-markers",
        ERROR_STACK,
        lambda: ("T", "m", frames(300, '{"function": "f", "frames_omitted": 1e300}')),
    ),
    ok(
        "stack-frames-forged-marker-without-function",
        ERROR_STACK,
        ("T", "m", '[{"frames_omitted": 3}, {"function": "f", "in_app": true}]'),
    ),
    ok(
        "stack-values-5000-exceptions",
        ERROR_STACK,
        lambda: ("T", "m", js({"values": [{"type": f"E{i}", "value": "v"} for i in range(5000)]})),
        cut=True,
    ),
    ok(
        "stack-mechanism-nested-5000",
        ERROR_STACK,
        lambda: ("T", "m", '{"values": [{"type": "E", "mechanism": ' + nested_arrays(5000) + "}]}"),
        cut=True,
    ),
    # stack traces as text
    ok(
        "stack-text-traceback-20000-frames",
        ERROR_STACK_TEXT,
        lambda: ("T", "m", python_traceback(20_000)),
        cut=True,
        timeout=5,
    ),
    ok(
        "stack-text-chain-of-5000",
        ERROR_STACK_TEXT,
        lambda: ("T", "m", python_traceback(2, chained=5000)),
        cut=True,
        timeout=5,
    ),
    ok(
        "stack-text-10mb-not-python",
        ERROR_STACK_TEXT,
        lambda: ("T", "m", noise(10 * MB)),
        cut=True,
        timeout=5,
    ),
    ok(
        "stack-text-10mb-one-line-traceback",
        ERROR_STACK_TEXT,
        lambda: ("T", "m", "Traceback (most recent call last):\n" + text_of(10 * MB)),
        timeout=5,
    ),
    ok("stack-text-empty", ERROR_STACK_TEXT, ("T", "m", "")),
    ok(
        "stack-text-not-python-with-secrets",
        ERROR_STACK_TEXT,
        (
            "T",
            "m",
            f"at db.connect(postgres://app:{SECRET}@db:5432/x)\nAuthorization: Bearer {SECRET}",
        ),
    ),
    ok(
        "stack-text-line-number-of-30-digits",
        ERROR_STACK_TEXT,
        ("T", "m", python_traceback(1).replace("line 1,", "line " + "9" * 30 + ",")),
    ),
    ok(
        "stack-text-control-characters",
        ERROR_STACK_TEXT,
        ("T", "m", "\x01\x02\x1b[31mred\x7f\r\n\t\x0b\x0c"),
    ),
    refused(
        "stack-text-invalid-json",
        ERROR_STACK_TEXT,
        ("T", "m", '[{"function": '),
        names="p_stack_trace",
    ),
    refused(
        "stack-text-nested-1mb",
        ERROR_STACK_TEXT,
        lambda: ("T", "m", nested_arrays(MB // 2)),
        names="nested too deeply",
    ),
    ok(
        "stack-text-nul-escape",
        ERROR_STACK_TEXT,
        ("T", "m", '[{"function": "f\\u0000g", "vars": {"\\u0000": "\\u0000"}}]'),
    ),
    ok(
        "stack-text-unpaired-surrogates",
        ERROR_STACK_TEXT,
        (
            "T",
            "m",
            '[{"function": "\\ud800", "module": "\\udfff\\udbff", "context_line": '
            '"\\ud83d\\ude00 ok \\ude00\\ud83d"}]',
        ),
    ),
    ok(
        "stack-text-escaped-backslash-u0000",
        ERROR_STACK_TEXT,
        ("T", "m", '[{"function": "\\\\u0000 is text"}]'),
    ),
    refused(
        "stack-jsonb-nul-escape-is-refused-by-postgresql",
        ERROR_STACK,
        ("T", "m", '[{"function": "\\u0000"}]'),
        states=("22P05",),
    ),
    # oversize text
    ok("error-message-10mb", ERROR, lambda: ("T", text_of(10 * MB)), cut=True, timeout=5),
    ok("error-type-10mb", ERROR, lambda: (noise(10 * MB), "m"), cut=True, timeout=5),
    ok("error-message-1mb-multibyte", ERROR, lambda: ("T", text_of(MB, "é😀")), cut=True),
    ok("error-message-1mb-of-lines", ERROR, lambda: ("T", "\n" * MB + "x")),
    # oversize and odd bags
    ok("context-100k-keys", ERROR_CONTEXT, lambda: ("T", "m", wide_object(100_000)), cut=True),
    ok("context-1mb-string", ERROR_CONTEXT, lambda: ("T", "m", js({"s": text_of(MB)})), cut=True),
    ok(
        "context-100k-character-key",
        ERROR_CONTEXT,
        lambda: ("T", "m", js({text_of(100_000): 1})),
        cut=True,
    ),
    ok(
        "context-nested-5000-objects",
        ERROR_CONTEXT,
        lambda: ("T", "m", nested_objects(5000)),
        cut=True,
    ),
    ok(
        "context-nested-800-arrays",
        ERROR_CONTEXT,
        lambda: ("T", "m", '{"a": ' + nested_arrays(800) + "}"),
        cut=True,
    ),
    ok(
        "context-array-of-100k",
        ERROR_CONTEXT,
        lambda: ("T", "m", '{"a": ' + long_array(100_000) + "}"),
        cut=True,
    ),
    ok(
        "context-secret-under-a-long-key",
        ERROR_CONTEXT,
        lambda: ("T", "m", js({text_of(9000) + "_password": SECRET})),
        cut=True,
    ),
    ok(
        "stack-frame-vars-secret-under-a-long-name",
        ERROR_STACK,
        lambda: ("T", "m", js([{"function": "f", "vars": {text_of(9000) + "_token": SECRET}}])),
        cut=True,
    ),
    ok(
        "context-secret-nested-too-deep",
        ERROR_CONTEXT,
        lambda: ("T", "m", nested_objects(20, js({"password": SECRET}))),
    ),
    ok(
        "context-huge-numbers",
        ERROR_CONTEXT,
        ("T", "m", '{"a": 1e308, "b": -1e308, "c": 1e-308, "d": 123456789012345678901234567890}'),
    ),
    refused(
        "context-jsonb-nul-escape-is-refused-by-postgresql",
        ERROR_CONTEXT,
        ("T", "m", '{"a": "\\u0000"}'),
        states=("22P05",),
    ),
    ok(
        "tags-100k", error_with("p_tags::jsonb"), lambda: ("T", "m", wide_object(100_000)), cut=True
    ),
    ok(
        "breadcrumbs-100k",
        error_with("p_breadcrumbs::jsonb"),
        lambda: ("T", "m", long_array(100_000, '{"message": "m"}')),
        cut=True,
    ),
    ok(
        "breadcrumbs-nested-5000",
        error_with("p_breadcrumbs::jsonb"),
        lambda: ("T", "m", nested_arrays(5000)),
        cut=True,
    ),
    ok(
        "breadcrumbs-of-scalars",
        error_with("p_breadcrumbs::jsonb"),
        ("T", "m", '[1, "x", null, true]'),
    ),
    ok(
        "user-10k-character-id",
        error_with("p_user::jsonb"),
        lambda: ("T", "m", js({"id": noise(10_000)})),
        cut=True,
    ),
    ok("user-id-object", error_with("p_user::jsonb"), ("T", "m", '{"id": {"a": [1]}}')),
    # values that go into an index
    ok(
        "environment-10mb",
        error_with("p_environment"),
        lambda: ("T", "m", noise(10 * MB)),
        cut=True,
        timeout=5,
    ),
    ok("service-10k-noise", error_with("p_service"), lambda: ("T", "m", noise(10_000)), cut=True),
    ok("release-10k-noise", error_with("p_release"), lambda: ("T", "m", noise(10_000)), cut=True),
    ok(
        "trace-id-1mb",
        error_with("p_trace_id", "p_span_id"),
        lambda: ("T", "m", noise(MB), noise(MB)),
        cut=True,
    ),
    ok("service-empty-is-default", error_with("p_service", "p_environment"), ("T", "m", "", "")),
    ok("service-control-characters", error_with("p_service"), ("T", "m", "a\x01\x1b\nb")),
    ok(
        "indexed-names-of-200-emoji",
        error_with(
            "p_service", "p_environment", "p_release", "p_fingerprint::text[]", "p_user::jsonb"
        ),
        ("T", "m", *[EMOJI * 200] * 3, [EMOJI * 200], js({"id": EMOJI * 200})),
    ),
    ok(
        "indexed-names-of-201-emoji",
        error_with(
            "p_service", "p_environment", "p_release", "p_fingerprint::text[]", "p_user::jsonb"
        ),
        ("T", "m", *[EMOJI * 201] * 3, [EMOJI * 201], js({"id": EMOJI * 201})),
        cut=True,
    ),
    # fingerprints
    ok(
        "fingerprint-100k-parts",
        error_with("p_fingerprint::text[]"),
        lambda: ("T", "m", [f"part{i}" for i in range(100_000)]),
    ),
    ok(
        "fingerprint-1mb-part", error_with("p_fingerprint::text[]"), lambda: ("T", "m", [noise(MB)])
    ),
    ok(
        "fingerprint-nulls-and-blanks",
        error_with("p_fingerprint::text[]"),
        ("T", "m", [None, "", "  ", "\t"]),
    ),
    ok(
        "fingerprint-default-and-1mb",
        error_with("p_fingerprint::text[]"),
        lambda: ("T", "m", ["{{ default }}", noise(MB)]),
    ),
    ok(
        "fingerprint-metacharacters",
        error_with("p_fingerprint::text[]"),
        ("T", "m", ["%", "_", "\\", "|", ".*", "[", "'; DROP TABLE monitoring.error_issues; --"]),
    ),
    ok("fingerprint-empty-array", error_with("p_fingerprint::text[]"), ("T", "m", [])),
    # times and ids
    ok("occurred-at-infinity", error_with("p_occurred_at::timestamptz"), ("T", "m", "infinity")),
    ok(
        "occurred-at-minus-infinity",
        error_with("p_occurred_at::timestamptz"),
        ("T", "m", "-infinity"),
    ),
    ok(
        "occurred-at-year-294276",
        error_with("p_occurred_at::timestamptz"),
        ("T", "m", "294276-12-31 23:59:59+00"),
    ),
    ok(
        "occurred-at-4713-bc",
        error_with("p_occurred_at::timestamptz"),
        ("T", "m", "4713-01-01 00:00:00+00 BC"),
    ),
    refused(
        "occurred-at-invalid-is-refused-by-postgresql",
        error_with("p_occurred_at::timestamptz"),
        ("T", "m", "2024-02-30"),
        states=("22008",),
    ),
    ok(
        "event-id-nil-uuid",
        error_with("p_event_id::uuid"),
        ("T", "m", "00000000-0000-0000-0000-000000000000"),
    ),
    ok("event-id-resent-in-one-statement", RESENT, ("T", "m", RESENT_ID) * 2),
    refused(
        "event-id-invalid-is-refused-by-postgresql",
        error_with("p_event_id::uuid"),
        ("T", "m", "not-a-uuid"),
        states=("22P02",),
    ),
    # secrets in the text of an event
    ok("message-bearer-token", ERROR, ("T", f"request failed: Authorization: Bearer {SECRET}")),
    ok("message-url-password", ERROR, ("T", f"could not connect to postgres://app:{SECRET}@db/x")),
    ok(
        "message-pem-key-cut-before-its-end",
        ERROR,
        lambda: ("T", "-----BEGIN RSA PRIVATE KEY-----\n" + SECRET + text_of(MB)),
    ),
    ok(
        "context-query-string-secret",
        ERROR_CONTEXT,
        ("T", "m", js({"query": f"a=1&password={SECRET}&b=2"})),
    ),
    ok("context-card-number", ERROR_CONTEXT, ("T", "m", js({"n": "4111 1111 1111 1111"}))),
]

CAPTURE_MESSAGE = [
    refused("message-null", MESSAGE, (None,), states=NULL_STATES, names="p_message"),
    refused(
        "message-whitespace", MESSAGE, (" \t\r\n\x0b\x0c",), states=NULL_STATES, names="p_message"
    ),
    refused(
        "message-1mb-of-blanks",
        MESSAGE,
        lambda: ("\n " * (MB // 2),),
        states=NULL_STATES,
        names="p_message",
    ),
    ok("message-10mb", MESSAGE, lambda: (noise(10 * MB),), cut=True, timeout=5),
    ok("message-injection", MESSAGE, ("'); DROP TABLE monitoring.error_events; --",)),
    ok("message-control-characters", MESSAGE, ("\x01\x1b[2J\x7f",)),
    refused(
        "message-level-10mb",
        message_with("::text"),
        lambda: ("m", noise(10 * MB)),
        names="p_level",
        timeout=5,
    ),
    refused("message-tags-string", message_with("p_tags::jsonb"), ("m", '"x"'), names="p_tags"),
    ok("message-tags-secret", message_with("p_tags::jsonb"), ("m", js({"api_key": SECRET}))),
    ok(
        "message-user-secret",
        message_with("p_user::jsonb"),
        ("m", js({"id": 1, "session": SECRET})),
    ),
    ok(
        "message-breadcrumbs-secret",
        message_with("p_breadcrumbs::jsonb"),
        ("m", js([{"category": "http", "data": {"url": "/login", "password": SECRET}}])),
    ),
    ok(
        "message-breadcrumbs-1mb-crumb",
        message_with("p_breadcrumbs::jsonb"),
        lambda: ("m", js([{"message": text_of(MB)}])),
        cut=True,
    ),
]

CAPTURE_EVENT = [
    refused("event-array", EVENT, ("[]",), names="p_event"),
    refused("event-number", EVENT, ("5",), names="p_event"),
    refused("event-json-null", EVENT, ("null",), states=NULL_STATES, names="p_event"),
    refused("event-sql-null", EVENT, (None,), states=NULL_STATES, names="p_event"),
    refused("event-text-sql-null", EVENT_TEXT, (None,), states=NULL_STATES, names="p_event"),
    refused("event-text-empty", EVENT_TEXT, ("",), names="p_event"),
    refused("event-text-invalid", EVENT_TEXT, ('{"message": ',), names="p_event"),
    refused(
        "event-text-nested-1mb",
        EVENT_TEXT,
        lambda: ('{"extra": ' + nested_objects(MB // 6) + "}",),
        names="nested too deeply",
    ),
    ok(
        "event-text-nested-5000",
        EVENT_TEXT,
        lambda: (event_with('"extra": ' + nested_objects(5000)),),
        cut=True,
    ),
    refused(
        "event-text-short-unicode-escape", EVENT_TEXT, ('{"message": "\\u12"}',), names="p_event"
    ),
    refused("event-text-not-a-json-escape", EVENT_TEXT, ('{"message": "\\xff"}',), names="p_event"),
    ok(
        "event-text-nul-escapes",
        EVENT_TEXT,
        ('{"message": "a\\u0000b", "extra": {"\\u0000": "\\u0000"}, "tags": {"t": "\\u0000"}}',),
    ),
    ok(
        "event-text-unpaired-surrogates",
        EVENT_TEXT,
        ('{"message": "\\udc00\\ud800", "user": {"id": "\\ud83d"}}',),
    ),
    ok(
        "event-text-10mb",
        EVENT_TEXT,
        lambda: (event(extra={"s": noise(10 * MB)}),),
        cut=True,
        timeout=5,
    ),
    refused("event-id-number", EVENT, (event(event_id=7),), names="p_event.event_id"),
    refused("event-id-garbage", EVENT, (event(event_id="not-a-uuid"),), names="p_event.event_id"),
    refused(
        "event-id-unbalanced-brace",
        EVENT,
        (event(event_id="{" + uuid.uuid4().hex),),
        names="p_event.event_id",
    ),
    refused(
        "event-id-1mb", EVENT, lambda: (event(event_id=text_of(MB)),), names="p_event.event_id"
    ),
    ok(
        "event-id-braced-and-upper-case",
        EVENT,
        (event(event_id="{" + uuid.uuid4().hex.upper() + "}"),),
    ),
    refused("timestamp-object", EVENT, (event(timestamp={}),), names="p_event.timestamp"),
    refused("timestamp-now", EVENT, (event(timestamp="now"),), names="p_event.timestamp"),
    refused("timestamp-infinity", EVENT, (event(timestamp="infinity"),), names="p_event.timestamp"),
    refused(
        "timestamp-offset-out-of-range",
        EVENT,
        (event(timestamp="2024-01-01T10:00:00+99:99"),),
        names="p_event.timestamp",
    ),
    refused(
        "timestamp-february-30",
        EVENT,
        (event(timestamp="2024-02-30T00:00:00Z"),),
        names="p_event.timestamp",
    ),
    refused("timestamp-year-0", EVENT, (event(timestamp="0000-01-01"),), names="p_event.timestamp"),
    refused(
        "timestamp-1e308", EVENT, (event_with('"timestamp": 1e308'),), names="p_event.timestamp"
    ),
    refused(
        "timestamp-1mb",
        EVENT,
        lambda: (event(timestamp=text_of(MB, "1")),),
        names="p_event.timestamp",
    ),
    ok("timestamp-before-1970", EVENT, (event(timestamp=-99_999_999_999),)),
    ok("timestamp-leap-second", EVENT, (event(timestamp="2016-12-31T23:59:60Z"),)),
    refused("level-number", EVENT, (event(level=5),), names="p_event.level"),
    refused("level-object", EVENT, (event(level={"a": 1}),), names="p_event.level"),
    refused("exception-string", EVENT, (event(exception="boom"),), names="p_event.exception"),
    refused(
        "exception-values-of-numbers",
        EVENT,
        (event(exception={"values": [1]}),),
        names="p_event.exception.values",
    ),
    refused(
        "exception-frames-object",
        EVENT,
        (event(exception={"values": [{"type": "E", "stacktrace": {"frames": {}}}]}),),
        names="p_event.exception.values",
    ),
    ok("exception-object-without-values", EVENT, (event(exception={"type": "E"}),)),
    ok(
        "exception-5000-values",
        EVENT,
        lambda: (event(exception=[{"type": f"E{i}", "value": "v"} for i in range(5000)]),),
        cut=True,
    ),
    refused("tags-string", EVENT, (event(tags="a"),), names="p_event.tags"),
    ok(
        "tags-pairs-with-junk",
        EVENT,
        (event(tags=[["a", "1"], [None, "x"], "x", [], [1], [["nested"], 2], ["service", {}]]),),
    ),
    ok(
        "tags-100k-pairs",
        EVENT,
        lambda: (event(tags=[[f"t{i}", i] for i in range(100_000)]),),
        cut=True,
    ),
    refused(
        "breadcrumbs-values-number",
        EVENT,
        (event(breadcrumbs={"values": 5}),),
        names="p_event.breadcrumbs",
    ),
    refused("context-array", EVENT, (event(context=[]),), names="p_event.context"),
    refused("extra-string", EVENT, (event(extra="x"),), names="p_event.extra"),
    refused("user-array", EVENT, (event(user=[]),), names="p_event.user"),
    refused("release-object", EVENT, (event(release={}),), names="p_event.release"),
    ok("release-huge-number", EVENT, (event_with('"release": 1e308'),), cut=True),
    refused(
        "environment-array", EVENT, (event(environment=["prod"]),), names="p_event.environment"
    ),
    refused("service-object", EVENT, (event(service={}),), names="p_event.service"),
    refused(
        "trace-id-object",
        EVENT,
        (event(contexts={"trace": {"trace_id": {}}}),),
        names="p_event.contexts.trace.trace_id",
    ),
    ok("contexts-string", EVENT, (event(contexts="x"),)),
    ok("unknown-field-named-as-ours", EVENT, (event(timestamp_adjusted="x", _truncated=[]),)),
    refused("server-name-array", EVENT, (event(server_name=[]),), names="p_event.server_name"),
    refused("platform-object", EVENT, (event(platform={}),), names="p_event.platform"),
    ok("transaction-1mb", EVENT, lambda: (event(transaction=noise(MB)),), cut=True),
    refused("fingerprint-object", EVENT, (event(fingerprint={}),), names="p_event.fingerprint"),
    ok(
        "fingerprint-nested-5000",
        EVENT,
        lambda: (event_with('"fingerprint": ' + nested_arrays(5000)),),
    ),
    ok("message-object-without-text", EVENT, (event(message={"params": [1]}),)),
    ok(
        "logentry-10mb",
        EVENT,
        lambda: (event(logentry={"formatted": noise(10 * MB)}),),
        cut=True,
        timeout=5,
    ),
    ok(
        "unknown-fields-100k",
        EVENT,
        lambda: (event(**{f"field{i}": i for i in range(100_000)}),),
        cut=True,
    ),
    ok(
        "request-nested-5000",
        EVENT_TEXT,
        lambda: (event_with('"request": ' + nested_objects(5000)),),
        cut=True,
    ),
    ok(
        "request-header-secrets",
        EVENT,
        (
            event(
                request={
                    "headers": [["Authorization", f"Bearer {SECRET}"], ["X-Api-Key", SECRET]],
                    "cookies": f"sessionid={SECRET}; csrftoken={SECRET}",
                }
            ),
        ),
    ),
    ok(
        "request-header-secret-under-a-long-name",
        EVENT,
        lambda: (event(request={"headers": [[text_of(9000) + "-X-Api-Key", SECRET]]}),),
        cut=True,
    ),
    ok("extra-card-number-as-number", EVENT, (event_with('"extra": {"n": 4111111111111111}'),)),
]

BATCH_OF_TWO = js([{"message": "first"}, {"message": "second"}])
CAPTURE_EVENTS = [
    refused("batch-object", EVENTS_BATCH, ("{}",), names="p_events"),
    refused("batch-json-null", EVENTS_BATCH, ("null",), states=NULL_STATES, names="p_events"),
    refused("batch-sql-null", EVENTS_BATCH, (None,), states=NULL_STATES, names="p_events"),
    refused("batch-of-251", EVENTS_BATCH, (js([{"message": "m"}] * 251),), names="p_events"),
    refused(
        "batch-bad-fifth-event",
        EVENTS_BATCH,
        (js([{"message": "m"}] * 4 + [{"level": "bogus"}]),),
        names="p_events[4].level",
    ),
    refused(
        "batch-null-event",
        EVENTS_BATCH,
        (js([{"message": "m"}, None]),),
        states=NULL_STATES,
        names="p_events[1]",
    ),
    ok("batch-empty", EVENTS_BATCH, ("[]",)),
    ok("batch-of-250", EVENTS_BATCH, (js([{"message": f"m{i}"} for i in range(250)]),), timeout=5),
    ok(
        "batch-same-event-twice",
        EVENTS_BATCH,
        (
            js(
                [
                    {
                        "message": "twice",
                        "event_id": uuid.uuid4().hex,
                        "timestamp": "2024-01-01T00:00:00Z",
                    }
                ]
                * 2
            ),
        ),
    ),
    ok(
        "batch-same-event-twice-without-a-time",
        EVENTS_BATCH,
        (js([{"message": "twice", "event_id": uuid.uuid4().hex}] * 2),),
    ),
    ok(
        "batch-10-events-of-1mb",
        EVENTS_TEXT,
        lambda: (js([{"message": noise(MB)} for _ in range(10)]),),
        cut=True,
        timeout=5,
    ),
    refused("batch-text-invalid", EVENTS_TEXT, ("[{",), names="p_events"),
    refused(
        "batch-text-nested-1mb",
        EVENTS_TEXT,
        lambda: (nested_arrays(MB // 2),),
        names="nested too deeply",
    ),
    ok("batch-text-nul-escape", EVENTS_TEXT, ('[{"message": "\\u0000"}]',)),
]

STORED = (
    "SELECT (SELECT count(*) FROM monitoring.error_events),"
    " (SELECT count(*) FROM monitoring.error_issues),"
    " (SELECT count(*) FROM monitoring.error_issue_counts),"
    " (SELECT count(*) FROM monitoring.issue_activity),"
    " (SELECT count(*) FROM monitoring.releases)"
)


def stored(db: Database) -> tuple[int, ...]:
    return tuple(db.owner.execute(STORED).fetchone() or ())


@table(CAPTURE_ERROR + CAPTURE_MESSAGE + CAPTURE_EVENT + CAPTURE_EVENTS)
def test_capture(db: Database, case: Case) -> None:
    before = stored(db)
    rows = call(db.writer, case)
    if rows is None:
        assert stored(db) == before, "a refused capture left rows behind"
        return
    ids = {event_id for event_id, _ in rows}
    with db.owner.cursor(row_factory=dict_row) as cur:
        events = cur.execute(EVENTS + " WHERE e.id = ANY(%s)", (list(ids),)).fetchall()
    assert len(events) == len(ids), "an event it answered with is not stored"
    bounds = limits(db.owner)
    for stored_event in events:
        assert_bounded(stored_event, bounds)
        if case.cut:
            assert has_cut_marker(stored_event), "cut without a visible marker"


def test_after_capture(db: Database) -> None:
    assert_healthy(db)
