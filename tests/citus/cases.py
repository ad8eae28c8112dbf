"""The shared cases (issue 16): every capture path and the design document's queries, run
against one server and against a Citus cluster, whose results must be the same.

A case writes through one path and reads back through the views and functions people read
(`monitoring.issues`, `errors`, `spans`, `traces`, ...), in a fresh database (on the cluster,
one emptied for it). It returns what it read, which `Normaliser` turns into what must not
depend on where it ran: ids (identity values, event ids) become their order of
first appearance, times become whole minutes from the case's start. A case asserts what it
knows itself, so it is a test on one server too.

`CLUSTER_XFAIL` names the cases that do not work on the cluster yet, and why.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from psycopg.rows import dict_row

from pg_monitoring import ErrorTracker, issues
from pg_monitoring._db.connection import Connector
from pg_monitoring.logs import PostgresLogHandler
from pg_monitoring.traces.exporter import PostgresSpanExporter

Result = dict[str, Any]
Case = Callable[["Run"], Result]

CASES: dict[str, Case] = {}

# Cases that fail on the cluster, with the reason (docs/citus-notes.md): xfail there, not strict,
# so that a fix shows as XPASS.
CLUSTER_XFAIL: dict[str, str] = {}

ISSUES = "SELECT * FROM monitoring.issues ORDER BY first_seen, title, environment"
ERRORS = "SELECT * FROM monitoring.errors ORDER BY occurred_at, message, fingerprint"
COUNTS = (
    "SELECT fingerprint, environment, substatus, times_seen, users_seen, first_seen, last_seen "
    "FROM monitoring.issues ORDER BY fingerprint, environment"
)
HISTORY = (
    "SELECT h.issue_id, h.action, h.actor, h.data FROM monitoring.issue_history AS h ORDER BY h.id"
)


def case(function: Case) -> Case:
    CASES[function.__name__] = function
    return function


@dataclass
class Run:
    """A case's database: one autocommit connection (each call its own transaction, as the
    clients and serve call them) and the server's time when the case began."""

    dsn: str
    conn: psycopg.Connection[dict[str, Any]]
    t0: datetime

    def rows(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        return self.conn.execute(query.encode(), params).fetchall()

    def row(self, query: str, params: Any = None) -> dict[str, Any]:
        (row,) = self.rows(query, params)
        return row

    def ago(self, **delta: float) -> datetime:
        return self.t0 - timedelta(**delta)

    def nanos(self, at: datetime) -> str:
        return str(round(at.timestamp() * 1_000_000) * 1000)


@contextmanager
def running(dsn: str) -> Iterator[Run]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        # a whole second: times computed from it are exact in OTLP's nanoseconds too
        t0 = conn.execute("SELECT date_trunc('second', now()) AS t0").fetchone()["t0"]
        yield Run(dsn, conn, t0)


def run_case(name: str, dsn: str) -> Result:
    """Case `name` on the database `dsn`, its result normalised."""
    with running(dsn) as run:
        return Normaliser(run.t0)(CASES[name](run))


# Normalising --------------------------------------------------------------------------

# event ids as text (dashed); fingerprints and trace ids, hex without dashes, are compared
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:?\d\d)?|Z)")


@dataclass
class Normaliser:
    t0: datetime
    ids: dict[tuple[str, Any], str] = field(default_factory=dict)

    def __call__(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v, key) for v in value]
        if isinstance(value, datetime):
            return self.minutes(value)
        if isinstance(value, uuid.UUID):
            return self.id("uuid", value)
        if isinstance(value, int) and not isinstance(value, bool) and is_id(key):
            return self.id("int", value)
        if isinstance(value, str):
            if _UUID.fullmatch(value):
                return self.id("uuid", uuid.UUID(value))
            if _TIME.fullmatch(value):
                return self.minutes(datetime.fromisoformat(value.replace("Z", "+00:00")))
        if isinstance(value, date):
            return f"day {(value - self.t0.date()).days}"
        return value

    def id(self, kind: str, value: Any) -> str:
        return self.ids.setdefault((kind, value), f"{kind}#{len(self.ids) + 1}")

    def minutes(self, at: datetime) -> str:
        return f"t0{round((at - self.t0).total_seconds() / 60):+d}m"


def is_id(key: str) -> bool:
    return key == "id" or key.endswith("_id")


# Errors: SQL --------------------------------------------------------------------------

FRAMES = json.dumps(
    [
        {
            "filename": "/srv/shop/payments.py",
            "module": "shop.payments",
            "function": "charge",
            "lineno": 42,
            "context_line": "response = gateway.post(order)",
            "in_app": True,
        }
    ]
)

TRACEBACK = """Traceback (most recent call last):
  File "/srv/shop/orders.py", line 12, in place
    total = price(order)
  File "/srv/shop/pricing.py", line 30, in price
    return order.amount / order.quantity
ZeroDivisionError: division by zero
"""


@case
def capture_error(run: Run) -> Result:
    captured = [
        run.row(
            "SELECT * FROM monitoring.capture_error('PaymentTimeout', %s, %s::jsonb, "
            "%s::jsonb, p_environment => 'production', p_service => 'shop', "
            "p_release => '1.2.0', p_tags => '{\"region\": \"eu\"}', p_user => %s::jsonb, "
            "p_trace_id => 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', p_span_id => 'd000000000000002', "
            'p_breadcrumbs => \'[{"message": "cart loaded"}]\', p_occurred_at => %s)',
            (
                f"gateway timed out after 30s for order {order}",
                FRAMES,
                json.dumps({"order_id": order}),
                json.dumps({"id": f"u{order % 2}"}),
                run.ago(minutes=10 - order),
            ),
        )
        for order in range(3)
    ]
    captured.append(
        run.row(
            "SELECT * FROM monitoring.capture_error('ZeroDivisionError', 'division by zero', "
            "%s::text, p_environment => 'production', p_service => 'shop', "
            "p_release => '1.3.0')",
            (TRACEBACK,),
        )
    )
    captured.append(
        run.row(
            "SELECT * FROM monitoring.capture_error('KeyError', 'sku', "
            "p_fingerprint => ARRAY['inventory', '{{ default }}'], p_level => 'warning', "
            'p_context => \'{"user_id": "u9"}\')'
        )
    )
    assert len({c["issue_id"] for c in captured}) == 3, "three orders, one issue"
    return {
        "captured": captured,
        "issues": run.rows(ISSUES),
        "errors": run.rows(ERRORS),
        "history": run.rows(HISTORY),
        # by fingerprint, as the trackers and the CLI find an issue (with constants: a call
        # per row of a query over distributed tables is pushed to the shards, and refused)
        "issue_ids": [
            run.row(
                "SELECT monitoring.issue_id(%s, %s, %s) AS issue_id",
                (i["fingerprint"], i["environment"], i["service"]),
            )
            for i in run.rows(ISSUES)
        ],
    }


@case
def capture_message(run: Run) -> Result:
    captured = [
        run.row(
            "SELECT * FROM monitoring.capture_message(%s, %s, p_service => 'worker', "
            "p_user => %s::jsonb)",
            (f"disk {n} almost full", level, json.dumps({"email": f"ops{n % 2}@example.com"})),
        )
        for n, level in enumerate(["warning", "warning", "info", "fatal"])
    ]
    captured.append(run.row("SELECT * FROM monitoring.capture_message('queue stalled', 'error')"))
    assert len({c["issue_id"] for c in captured}) == 2, "numbers are normalised away"
    return {"captured": captured, "issues": run.rows(ISSUES), "errors": run.rows(ERRORS)}


def sentry_event(run: Run, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{n:032x}",
        "timestamp": run.ago(minutes=5 - n).isoformat(),
        "platform": "python",
        "level": "error",
        "environment": "production",
        "release": "shop@2.0.0",
        "server_name": "web-1",
        "transaction": "/checkout",
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": f"'sku-{n}'",
                    "module": "builtins",
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "shop/cart.py",
                                "module": "shop.cart",
                                "function": "add",
                                "lineno": 10 + n,
                                "context_line": "item = stock[sku]",
                                "in_app": True,
                                "vars": {"sku": f"'sku-{n}'", "password": "hunter2"},
                            }
                        ]
                    },
                }
            ]
        },
        "tags": {"region": "eu", "shard": str(n % 2)},
        "user": {"id": str(n % 3), "ip_address": "10.0.0.1"},
        "extra": {"user_id": str(n % 3)},
        "contexts": {
            "trace": {"trace_id": "a1" * 16, "span_id": f"{n + 1:016x}"},
            "runtime": {"name": "CPython", "version": "3.11.2"},
        },
        "breadcrumbs": {"values": [{"category": "http", "message": "GET /cart"}]},
        "request": {
            "url": "https://shop.example/checkout?token=abc",
            "method": "POST",
            "headers": {"Authorization": "Bearer xyz", "Accept": "*/*"},
        },
        **extra,
    }


@case
def capture_event(run: Run) -> Result:
    captured = [
        run.row("SELECT * FROM monitoring.capture_event(%s::jsonb)", (json.dumps(e),))
        for e in [
            sentry_event(run, 1),
            sentry_event(run, 2),
            sentry_event(run, 3, message="a message too", fingerprint=["cart", "{{ default }}"]),
        ]
    ]
    # the same event again: stored and counted once
    again = run.row(
        "SELECT * FROM monitoring.capture_event(%s::text)", (json.dumps(sentry_event(run, 1)),)
    )
    assert again == captured[0]
    return {"captured": captured, "issues": run.rows(ISSUES), "errors": run.rows(ERRORS)}


@case
def capture_events(run: Run) -> Result:
    batch = [sentry_event(run, n) for n in range(1, 6)]
    batch.append({"message": "batch message", "level": "info", "environment": "staging"})
    batch.append(batch[0])  # resent inside the batch
    captured = run.rows("SELECT * FROM monitoring.capture_events(%s::jsonb)", (json.dumps(batch),))
    assert len(captured) == 7
    resent = run.rows("SELECT * FROM monitoring.capture_events(%s::text)", (json.dumps(batch[:2]),))
    assert resent == captured[:2]
    refused = ""
    try:
        run.rows(
            "SELECT * FROM monitoring.capture_events(%s::jsonb)",
            (json.dumps([batch[1], {"environment": {"not": "text"}}]),),
        )
    except psycopg.Error as error:
        refused = f"{error.sqlstate}: {error.diag.message_primary}"
    assert refused.startswith("22023: event 1 of the batch"), refused
    return {
        "captured": captured,
        "refused": refused,
        "issues": run.rows(ISSUES),
        "errors": run.rows(ERRORS),
        "events_stored": run.row("SELECT count(*) FROM monitoring.errors"),
    }


# The design document's queries (production-monitoring.md, "PostgreSQL Error Tracking"),
# verbatim, over pgtap/errors/capture.sql's events.
DOC_EVENTS = [
    ("payment_timeout_error", "TimeoutError", "gateway timed out after 30s", "u1", 1, "production"),
    ("payment_timeout_error", "TimeoutError", "gateway timed out after 30s", "u1", 2, "production"),
    ("payment_timeout_error", "TimeoutError", "gateway timed out after 30s", "u2", 3, "production"),
    (
        "payment_timeout_error",
        "TimeoutError",
        "gateway timed out after 30s",
        None,
        30,
        "production",
    ),
    ("database_connection_error", "OperationalError", "could not connect", "u2", 1, "production"),
    ("database_connection_error", "OperationalError", "could not connect", None, 5, "production"),
    ("known_external_api_issue", "ApiError", "upstream returned 503", "u1", 2.5, "production"),
    ("payment_timeout_error", "TimeoutError", "gateway timed out after 30s", "u1", 1.5, "staging"),
    (
        "payment_timeout_error",
        "TimeoutError",
        "gateway timed out after 30s",
        "u5",
        240,
        "production",
    ),
    ("database_connection_error", "OperationalError", "could not connect", "u2", 20, "production"),
]

DOC_QUERIES = {
    "by_fingerprint": """SELECT
    fingerprint,
    COUNT(*) as occurrences,
    MAX(occurred_at) as last_seen,
    MIN(occurred_at) as first_seen
FROM monitoring.errors
WHERE environment = 'production'
  AND resolved_at IS NULL
GROUP BY fingerprint
ORDER BY occurrences DESC;""",
    "stack_traces": """SELECT
    id,
    fingerprint,
    message,
    exception_type,
    stack_trace,
    context,
    occurred_at
FROM monitoring.errors
WHERE fingerprint = 'payment_timeout_error'
ORDER BY occurred_at DESC
LIMIT 10;""",
    "correlation": """SELECT
    e.message as error,
    e.context->>'user_id' as user_id,
    t.trace_id,
    t.duration_ms,
    t.status_code
FROM monitoring.errors e
LEFT JOIN monitoring.traces t ON e.trace_id = t.trace_id
WHERE e.fingerprint = 'database_connection_error'
ORDER BY e.occurred_at DESC;""",
    "top_24h": """SELECT
    fingerprint,
    exception_type,
    message,
    COUNT(*) as count,
    MAX(occurred_at) as last_seen
FROM monitoring.errors
WHERE occurred_at > NOW() - INTERVAL '24 hours'
  AND resolved_at IS NULL
GROUP BY fingerprint, exception_type, message
ORDER BY count DESC
LIMIT 10;""",
    "by_user": """SELECT
    context->>'user_id' as user_id,
    COUNT(*) as error_count,
    array_agg(DISTINCT exception_type) as error_types
FROM monitoring.errors
WHERE occurred_at > NOW() - INTERVAL '7 days'
GROUP BY context->>'user_id'
ORDER BY error_count DESC
LIMIT 20;""",
    "hourly": """SELECT
    date_trunc('hour', occurred_at) as hour,
    COUNT(*) as error_count
FROM monitoring.errors
WHERE occurred_at > NOW() - INTERVAL '24 hours'
GROUP BY hour
ORDER BY hour;""",
}

DOC_TRACE = "d0c0" * 8


def doc_events(run: Run) -> None:
    for fingerprint, kind, message, user, hours, environment in DOC_EVENTS:
        run.rows(
            "SELECT monitoring.capture_error(%s, %s, %s::jsonb, %s::jsonb, "
            "p_environment => %s, p_fingerprint => ARRAY[%s], p_occurred_at => %s, "
            "p_trace_id => %s)",
            (
                kind,
                message,
                json.dumps([{"filename": f"/app/shop/{fingerprint}.py", "function": "run"}]),
                json.dumps({"user_id": user} if user else {}),
                environment,
                fingerprint,
                run.ago(hours=hours),
                DOC_TRACE if fingerprint == "database_connection_error" else None,
            ),
        )


def doc_query_results(run: Run) -> Result:
    # "hourly" is the only one whose rows depend on the clock: keep how many, and the counts
    results = {name: run.rows(query) for name, query in DOC_QUERIES.items() if name != "hourly"}
    results["hourly"] = sorted(r["error_count"] for r in run.rows(DOC_QUERIES["hourly"]))
    return results


@case
def design_document_queries(run: Run) -> Result:
    doc_events(run)
    # the correlation query's trace: a root span of 200 ms in error
    record = spans_request(
        "db", [span(run, DOC_TRACE, "e000000000000001", None, "POST /pay", 0, 200, status=2)]
    )
    run.rows("SELECT monitoring.record_spans(%s::jsonb)", (json.dumps(record),))
    results = doc_query_results(run)
    assert [r["occurrences"] for r in results["by_fingerprint"]] == [5, 3, 1]
    assert {r["duration_ms"] for r in results["correlation"]} == {200}
    return results


# Errors: the Python client ------------------------------------------------------------


def charge(order_id: int) -> None:
    raise TimeoutError(f"payment timeout for order {order_id}")


def tracker(run: Run, **options: Any) -> ErrorTracker:
    return ErrorTracker(
        run.dsn,
        environment="production",
        service="shop",
        release="3.1.0",
        server_name="web-1",
        timeout=None,
        **options,
    )


@case
def python_tracker(run: Run) -> Result:
    captured = []
    with tracker(run, tags={"team": "payments"}) as errors:
        for order in (1, 2):
            try:
                charge(order)
            except TimeoutError as error:
                captured.append(
                    errors.capture_exception(
                        error, context={"order_id": order}, user={"id": f"u{order}"}
                    )
                )
        captured.append(errors.capture_message("cache miss storm", level="warning"))
        captured.append(errors.capture_event({"message": "from a dict", "tags": {"source": "raw"}}))
    assert all(c is not None and c.issue_id is not None for c in captured), captured
    with tracker(run, background=True) as batched:
        for n in range(5):
            batched.capture_message(f"queued message {n}")
        assert batched.flush(timeout=30)
    db = Connector(run.dsn)
    try:
        listed = issues.list_issues(db, issues.IssueFilter(status=None))
        shown = issues.show_issue(db, captured[0].issue_id)  # type: ignore[union-attr]
    finally:
        db.close()
    return {
        "captured": [(c.event_id, c.issue_id) for c in captured if c],
        "issues": run.rows(ISSUES),
        "errors": run.rows(ERRORS),
        "listed": listed,
        "shown": shown,
    }


# Triage -------------------------------------------------------------------------------


@case
def triage(run: Run) -> Result:
    doc_events(run)
    ids = {
        r["fingerprint"]: r["id"]
        for r in run.rows(
            "SELECT id, fingerprint FROM monitoring.issues WHERE environment = 'production'"
        )
    }
    steps = [
        run.row("SELECT * FROM monitoring.resolve_issue(%s)", (ids["known_external_api_issue"],)),
        run.row(
            "SELECT * FROM monitoring.ignore_issue(%s, p_until_events => 2, p_actor => 'ops')",
            (ids["database_connection_error"],),
        ),
        run.row(
            "SELECT * FROM monitoring.assign_issue(%s, 'dev@example.com')",
            (ids["payment_timeout_error"],),
        ),
        run.row(
            "SELECT * FROM monitoring.resolve_issue(%s, p_in_release => '2.0.0')",
            (ids["payment_timeout_error"],),
        ),
    ]
    by_fingerprint = run.rows(DOC_QUERIES["by_fingerprint"])
    # an older release does not regress it, a newer one does; two events wake the ignored one
    for release in ("1.0.0", "2.1.0"):
        run.rows(
            "SELECT monitoring.capture_error('TimeoutError', 'gateway timed out after 30s', "
            "p_environment => 'production', p_fingerprint => ARRAY['payment_timeout_error'], "
            "p_release => %s)",
            (release,),
        )
    for _ in range(2):
        run.rows(
            "SELECT monitoring.capture_error('OperationalError', 'could not connect', "
            "p_environment => 'production', p_fingerprint => ARRAY['database_connection_error'])"
        )
    steps.append(
        run.row("SELECT * FROM monitoring.reopen_issue(%s)", (ids["known_external_api_issue"],))
    )
    steps.append(
        run.row("SELECT * FROM monitoring.unassign_issue(%s)", (ids["payment_timeout_error"],))
    )
    after = run.rows(ISSUES)
    assert {(r["fingerprint"], r["status"]) for r in after if r["environment"] == "production"} == {
        ("payment_timeout_error", "unresolved"),
        ("database_connection_error", "unresolved"),
        ("known_external_api_issue", "unresolved"),
    }
    return {
        "steps": steps,
        "by_fingerprint_after_triage": by_fingerprint,
        "issues": after,
        "history": run.rows(HISTORY),
    }


@case
def python_triage(run: Run) -> Result:
    with tracker(run) as errors:
        for order in (1, 2):
            try:
                charge(order)
            except TimeoutError as error:
                errors.capture_exception(error, fingerprint=["payment_timeout_error"])
        errors.capture_message("upstream returned 503", fingerprint=["known_external_api_issue"])
        errors.capture_message("bug", fingerprint=["critical_bug"])
        # the design document's issue management, in the sync client
        steps = [
            errors.resolve_error(fingerprint="payment_timeout_error"),
            errors.ignore_error(fingerprint="known_external_api_issue"),
            errors.assign_error(fingerprint="critical_bug", assignee="dev@example.com"),
        ]
    db = Connector(run.dsn)
    try:
        with issues.triage():
            steps.append(issues.reopen(db, steps[0]["id"], actor="cli"))
    finally:
        db.close()
    return {"steps": steps, "issues": run.rows(ISSUES), "history": run.rows(HISTORY)}


# Spans --------------------------------------------------------------------------------

TRACE_A = "a" * 31 + "1"
TRACE_B = "b" * 31 + "2"


def span(
    run: Run,
    trace: str,
    span_id: str,
    parent: str | None,
    name: str,
    start_ms: float,
    duration_ms: float,
    *,
    kind: int = 2,
    status: int = 0,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    base = run.ago(hours=1)
    return {
        "traceId": trace,
        "spanId": span_id,
        "parentSpanId": parent or "",
        "name": name,
        "kind": kind,
        "startTimeUnixNano": run.nanos(base + timedelta(milliseconds=start_ms)),
        "endTimeUnixNano": run.nanos(base + timedelta(milliseconds=start_ms + duration_ms)),
        "status": {"code": status},
        "attributes": [
            {"key": k, "value": {"stringValue": v}} for k, v in (attributes or {}).items()
        ],
    }


def spans_request(service: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        {"key": "host.name", "value": {"stringValue": "web-1"}},
                    ]
                },
                "scopeSpans": [{"scope": {"name": "tests"}, "spans": spans}],
            }
        ]
    }


def two_services(run: Run) -> list[dict[str, Any]]:
    """record_spans' answers to a frontend's and a backend's requests, and a retry."""
    frontend = spans_request(
        "frontend",
        [
            span(
                run,
                TRACE_A,
                "a000000000000001",
                None,
                "GET /checkout",
                0,
                300,
                attributes={"http.route": "/checkout"},
            ),
            span(
                run, TRACE_A, "a000000000000002", "a000000000000001", "POST shop", 10, 250, kind=3
            ),
            span(run, TRACE_B, "b000000000000001", None, "GET /cart", 1000, 40),
        ],
    )
    backend = spans_request(
        "shop",
        [
            span(
                run,
                TRACE_A,
                "a000000000000003",
                "a000000000000002",
                "POST /pay",
                20,
                200,
                status=2,
                attributes={"http.route": "/pay", "authorization": "Bearer x"},
            ),
            span(
                run, TRACE_A, "a000000000000004", "a000000000000003", "SELECT card", 30, 50, kind=3
            ),
            # refused alone: ends before it starts
            span(run, TRACE_A, "a000000000000005", "a000000000000003", "bad", 90, -5),
        ],
    )
    return [
        run.row("SELECT monitoring.record_spans(%s::jsonb) AS r", (json.dumps(body),))["r"]
        for body in (frontend, backend, backend)
    ]


@case
def record_spans(run: Run) -> Result:
    answers = two_services(run)
    assert [a["stored"] for a in answers] == [3, 2, 0]
    assert answers[2]["duplicates"] == 2
    return {
        "answers": answers,
        "spans": run.rows("SELECT * FROM monitoring.spans ORDER BY start_time, span_id"),
        "trace": run.rows(
            "SELECT * FROM monitoring.spans WHERE trace_id = %s ORDER BY span_id", (TRACE_A,)
        ),
        "traces": run.rows("SELECT * FROM monitoring.traces ORDER BY trace_id"),
        "trace_by_id": run.rows("SELECT * FROM monitoring.traces WHERE trace_id = %s", (TRACE_B,)),
        "operations": run.rows(
            "SELECT * FROM monitoring.operation_stats('1 day') ORDER BY service, operation"
        ),
        "service_map": run.rows("SELECT * FROM monitoring.service_map('1 day') ORDER BY 1, 2"),
    }


@case
def recent_traces(run: Run) -> Result:
    two_services(run)
    return {
        "recent": run.rows("SELECT * FROM monitoring.recent_traces('1 day')"),
        "slowest": run.rows("SELECT * FROM monitoring.recent_traces('1 day', p_slowest => true)"),
        "errors": run.rows("SELECT * FROM monitoring.recent_traces('1 day', p_errors => true)"),
    }


@case
def trace_tree(run: Run) -> Result:
    two_services(run)
    run.rows(
        "SELECT monitoring.capture_error('CardDeclined', 'declined', p_service => 'shop', "
        "p_trace_id => %s, p_span_id => 'a000000000000003')",
        (TRACE_A,),
    )
    tree = run.rows("SELECT * FROM monitoring.trace_tree(%s)", (TRACE_A,))
    assert [r["depth"] for r in tree] == [0, 1, 2, 3]
    return {"tree": tree}


@case
def python_span_exporter(run: Run) -> Result:
    exporter = PostgresSpanExporter(run.dsn)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "worker"}), id_generator=CountingIds()
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    start = int(run.ago(minutes=30).timestamp()) * 1_000_000_000
    root = tracer.start_span("job", start_time=start)
    with tracer.start_as_current_span("step", start_time=start + 5_000_000, end_on_exit=False):
        pass
    root.end(end_time=start + 90_000_000)
    provider.shutdown()
    return {
        "spans": run.rows(
            "SELECT trace_id, span_id, parent_span_id, operation, service, kind, status_code, "
            "start_time, duration_ms FROM monitoring.spans ORDER BY span_id"
        ),
        "traces": run.rows(
            "SELECT trace_id, span_count, root_service, root_operation FROM monitoring.traces"
        ),
    }


class CountingIds(IdGenerator):
    """Ids the same on every run (the SDK's are random)."""

    def __init__(self) -> None:
        self.spans = 0

    def generate_span_id(self) -> int:
        self.spans += 1
        return 0xE000000000000000 + self.spans

    def generate_trace_id(self) -> int:
        return 0x7E57 << 64


# Logs ---------------------------------------------------------------------------------


def logs_request(run: Run) -> dict[str, Any]:
    records = [
        {
            "timeUnixNano": run.nanos(run.ago(minutes=3 - n)),
            "severityNumber": severity,
            "severityText": text,
            "body": {"stringValue": body},
            "attributes": [{"key": "order", "value": {"intValue": str(n)}}],
            **({"traceId": TRACE_A, "spanId": "a000000000000003"} if n < 2 else {}),
        }
        for n, (severity, text, body) in enumerate(
            [
                (9, "INFO", "payment started"),
                (17, "ERROR", "payment declined"),
                (13, "WARN", "slow disk token=abc"),
            ]
        )
    ]
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "scopeLogs": [{"logRecords": records}],
            }
        ]
    }


def log_reads(run: Run) -> Result:
    return {
        "logs": run.rows("SELECT * FROM monitoring.logs ORDER BY time"),
        "words": run.rows("SELECT * FROM monitoring.search_logs('PAYMENT')"),
        "trace": run.rows("SELECT * FROM monitoring.search_logs(p_trace_id => %s)", (TRACE_A,)),
        "severe": run.rows("SELECT * FROM monitoring.search_logs(p_min_severity => 'warn')"),
    }


@case
def record_logs(run: Run) -> Result:
    answers = [
        run.row("SELECT monitoring.record_logs(%s::jsonb) AS r", (json.dumps(logs_request(run)),))[
            "r"
        ]
        for _ in range(2)
    ]
    assert answers[0]["stored"] == 3
    return {"answers": answers, **log_reads(run)}


@case
def ingest_in_one_transaction(run: Run) -> Result:
    """A capture, spans and logs in one transaction (a client's `conn=`), reads between."""
    with run.conn.transaction():
        run.rows(
            "SELECT monitoring.capture_error('E', 'before the logs', p_trace_id => %s)", (TRACE_A,)
        )
        read = run.rows("SELECT message, trace_id FROM monitoring.errors")
        answers = two_services(run)
        spans = run.rows(
            "SELECT span_id FROM monitoring.spans WHERE trace_id = %s ORDER BY span_id", (TRACE_A,)
        )
        answers.append(
            run.row(
                "SELECT monitoring.record_logs(%s::jsonb) AS r", (json.dumps(logs_request(run)),)
            )["r"]
        )
    return {"read": read, "spans": spans, "answers": answers, **log_reads(run)}


@case
def python_log_handler(run: Run) -> Result:
    handler = PostgresLogHandler(run.dsn, service="shop")
    logger = logging.getLogger("tests.citus.cases")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.info("order %s paid", 1234, extra={"user_id": 7})
        logger.warning("slow gateway")
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return {
        "logs": run.rows(
            "SELECT severity, body, attributes - 'log.record.uid' - 'code.lineno' "
            "- 'thread.id' - 'process.id' AS attributes, service, trace_id "
            "FROM monitoring.logs ORDER BY time"
        )
    }


# Maintenance --------------------------------------------------------------------------


@case
def maintenance(run: Run) -> Result:
    doc_events(run)
    before = run.rows(COUNTS)
    report = run.row("SELECT monitoring.run_maintenance() AS r")["r"]
    assert "failed" not in report, report["failed"]
    after = run.rows(COUNTS)
    assert after == before, "the fold changes no count a reader sees"
    return {"events_folded": report["events_folded"], "issues": run.rows(ISSUES)}
