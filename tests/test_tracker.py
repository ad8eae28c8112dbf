"""The sync error tracker against a real database: captured Python exceptions, found grouped
through the views; failures that never reach the application; background batches; issues."""

from __future__ import annotations

import importlib
import logging
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from pg_monitoring import (
    AsyncErrorTracker,
    Captured,
    ErrorNotificationChannel,
    ErrorTracker,
    NotFoundError,
    PgMonitoringError,
    init_error_tracker,
)
from pg_monitoring import monitoring as monitoring_package

from .conftest import REPO
from .test_events import AFTER, BEFORE, rewrite, write_module

ENV = "test"


def query(dsn: str, text: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(text, params).fetchall()


def issues(dsn: str) -> list[dict[str, Any]]:
    return query(dsn, "SELECT * FROM monitoring.issues ORDER BY id")


@pytest.fixture
def tracker(installed_db: str) -> Iterator[ErrorTracker]:
    with ErrorTracker(installed_db, environment=ENV, service="shop") as tracker:
        yield tracker


def charge(order_id: int) -> None:
    raise TimeoutError(f"payment timeout for order {order_id}")


def refund(order_id: int) -> None:
    raise TimeoutError(f"payment timeout for order {order_id}")


def test_import_paths() -> None:
    assert monitoring_package.init_error_tracker is init_error_tracker
    assert monitoring_package.ErrorNotificationChannel is ErrorNotificationChannel
    assert {"ErrorTracker", "AsyncErrorTracker"} <= set(monitoring_package.__all__)


def test_the_same_bug_in_a_loop_is_one_issue(installed_db: str, tracker: ErrorTracker) -> None:
    captured = []
    for order_id in (17, 4711, 90210):
        try:
            charge(order_id)
        except TimeoutError as error:
            captured.append(tracker.capture_exception(error, context={"order_id": order_id}))
    assert all(isinstance(c, Captured) for c in captured)
    assert len({c.event_id for c in captured if c}) == 3
    assert len({c.issue_id for c in captured if c}) == 1

    (issue,) = issues(installed_db)
    assert issue["times_seen"] == 3
    assert issue["environment"] == ENV
    assert issue["service"] == "shop"
    assert issue["fingerprint_source"] == "stacktrace"
    assert issue["exception_type"] == "TimeoutError"
    assert issue["culprit"] == "tests.test_tracker in charge"
    assert issue["platform"] == "python"
    messages = query(installed_db, "SELECT message FROM monitoring.errors ORDER BY occurred_at")
    assert [m["message"] for m in messages] == [
        "payment timeout for order 17",
        "payment timeout for order 4711",
        "payment timeout for order 90210",
    ]


def test_a_different_function_is_another_issue(installed_db: str, tracker: ErrorTracker) -> None:
    for function in (charge, refund, charge):
        try:
            function(1)
        except TimeoutError as error:
            tracker.capture_exception(error)
    assert [(i["culprit"], i["times_seen"]) for i in issues(installed_db)] == [
        ("tests.test_tracker in charge", 2),
        ("tests.test_tracker in refund", 1),
    ]


def test_a_reloaded_module_is_still_one_issue(
    installed_db: str, tracker: ErrorTracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same line of code, moved by an edit elsewhere in its file: one issue, before and
    after the module is reloaded (the stale line cache gave the frame another function's
    source line, and the grouping a new issue)."""
    module = write_module(tmp_path, monkeypatch, BEFORE)
    captured = []
    for reload in (False, True):
        if reload:
            rewrite(module, AFTER)
            importlib.reload(module)
        try:
            module.fail()
        except ValueError as error:
            captured.append(tracker.capture_exception(error))
    assert all(captured)
    assert len({c.issue_id for c in captured if c}) == 1
    (issue,) = issues(installed_db)
    assert issue["times_seen"] == 2


def test_chained_exceptions_are_stored_root_cause_first(
    installed_db: str, tracker: ErrorTracker
) -> None:
    def load_order() -> None:
        try:
            charge(3)
        except TimeoutError as error:
            raise RuntimeError("could not place the order") from error

    try:
        load_order()
    except RuntimeError:
        tracker.capture_exception()  # the exception being handled
    (row,) = query(
        installed_db,
        """
        SELECT exception_type, message, exceptions, stack_trace
        FROM monitoring.errors
        """,
    )
    assert row["exception_type"] == "RuntimeError"
    assert row["message"] == "could not place the order"
    assert [e["type"] for e in row["exceptions"]] == ["TimeoutError", "RuntimeError"]
    assert row["exceptions"][0]["mechanism"]["source"] == "__cause__"
    assert [f["function"] for f in row["exceptions"][0]["frames"]] == ["load_order", "charge"]
    assert [f["function"] for f in row["stack_trace"]] == [
        "test_chained_exceptions_are_stored_root_cause_first",
        "load_order",
    ]


def test_an_exception_never_raised_is_grouped_by_type_and_value(
    installed_db: str, tracker: ErrorTracker
) -> None:
    assert tracker.capture_exception(ValueError("quota exceeded for account 12")) is not None
    assert tracker.capture_exception(ValueError("quota exceeded for account 99")) is not None
    assert tracker.capture_exception(KeyError("quota exceeded for account 99")) is not None
    found = issues(installed_db)
    assert [(i["exception_type"], i["times_seen"]) for i in found] == [
        ("ValueError", 2),
        ("KeyError", 1),
    ]
    assert {i["fingerprint_source"] for i in found} == {"exception"}


def test_library_frames_are_not_in_app(installed_db: str, tracker: ErrorTracker) -> None:
    import json

    try:
        json.loads("{broken")
    except ValueError as error:
        tracker.capture_exception(error)
    (row,) = query(installed_db, "SELECT stack_trace FROM monitoring.errors")
    frames = row["stack_trace"]
    assert frames[0]["module"] == "tests.test_tracker"
    assert frames[0]["in_app"] is True
    assert frames[0]["context_line"].strip() == 'json.loads("{broken")'
    assert len(frames) > 1
    assert all(f["module"].startswith("json") and f["in_app"] is False for f in frames[1:])
    # so the culprit is the application's line, not json's
    assert issues(installed_db)[0]["culprit"] == (
        "tests.test_tracker in test_library_frames_are_not_in_app"
    )


def test_context_tags_user_and_fingerprint(installed_db: str, tracker: ErrorTracker) -> None:
    tracker.tags["region"] = "eu"
    try:
        charge(5)
    except TimeoutError as error:
        tracker.capture_exception(
            error,
            context={"user_id": 42, "order_id": 5, "operation": "process_payment"},
            tags={"team": "payments"},
            user={"id": "u-42"},
            fingerprint=["payment_timeout_error"],
            transaction="POST /orders",
        )
    (row,) = query(
        installed_db,
        """
        SELECT context->>'user_id' AS user_id, context, tags, user_info, fingerprint,
            transaction_name, level, server_name
        FROM monitoring.errors WHERE context->>'user_id' = '42'
        """,
    )
    assert row["context"]["operation"] == "process_payment"
    assert row["tags"] == {"region": "eu", "team": "payments"}
    assert row["user_info"] == {"id": "u-42"}
    assert row["fingerprint"] == "payment_timeout_error"
    assert row["transaction_name"] == "POST /orders"
    assert row["level"] == "error"
    assert row["server_name"] == socket.gethostname()


def test_capture_message_and_raw_event(installed_db: str, tracker: ErrorTracker) -> None:
    first = tracker.capture_message("cache warmed in 31 ms", level="warning")
    second = tracker.capture_message("cache warmed in 45 ms", level="warning")
    third = tracker.capture_event({"message": "from a Sentry SDK", "extra": {"k": 1}})
    assert first is not None
    assert second is not None
    assert third is not None
    assert first.issue_id == second.issue_id != third.issue_id
    rows = query(installed_db, "SELECT message, level, context, environment FROM monitoring.errors")
    assert sorted(r["level"] for r in rows) == ["error", "warning", "warning"]
    assert {"k": 1} in [r["context"] for r in rows]
    assert {r["environment"] for r in rows} == {ENV}


def test_lone_surrogates_are_sanitised_not_fatal(installed_db: str, tracker: ErrorTracker) -> None:
    assert tracker.capture_exception(ValueError("broken \ud800 text\x00")) is not None
    (row,) = query(installed_db, "SELECT message FROM monitoring.errors")
    assert row["message"] == "broken \ufffd text\ufffd"
    assert tracker.failed_captures == 0


def test_opentelemetry_span_is_recorded(installed_db: str, tracker: ErrorTracker) -> None:
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("checkout") as span:
        try:
            charge(1)
        except TimeoutError as error:
            tracker.capture_exception(error)
    context = span.get_span_context()
    (row,) = query(installed_db, "SELECT trace_id, span_id, data FROM monitoring.errors")
    assert row["trace_id"] == format(context.trace_id, "032x")
    assert row["span_id"] == format(context.span_id, "016x")
    assert row["data"]["contexts"]["trace"]["trace_id"] == row["trace_id"]


def test_a_writer_role_can_capture(installed_db: str) -> None:
    with psycopg.connect(installed_db, autocommit=True) as conn:
        if not conn.execute("SELECT FROM pg_roles WHERE rolname = 'pgm_test_app'").rowcount:
            conn.execute("CREATE ROLE pgm_test_app LOGIN PASSWORD 'app-secret'")
        conn.execute("GRANT monitoring_writer TO pgm_test_app")
    app_dsn = make_conninfo(installed_db, user="pgm_test_app", password="app-secret")
    with ErrorTracker(app_dsn, environment=ENV, background=True) as tracker:
        assert tracker.capture_exception(ValueError("from the app role")) is not None
        assert tracker.capture_message("and a message") is not None
        assert tracker.flush(10)
        assert tracker.failed_captures == 0
        with pytest.raises(PgMonitoringError):
            tracker.resolve_error("anything")  # managing issues is monitoring_admin's
    assert len(query(installed_db, "SELECT * FROM monitoring.errors")) == 2


# The application never sees a failure -------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_failed_quietly(tracker: ErrorTracker, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pg_monitoring"):
        assert tracker.capture_exception(ValueError("x")) is None
        assert tracker.capture_message("y") is None
    assert tracker.failed_captures == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "pg_monitoring"]
    assert len(warnings) == 1, "one warning, not one per failed request"
    assert warnings[0].startswith("pg_monitoring: could not store 1 error event(s) (1 so far): ")


def assert_queued_quietly(tracker: ErrorTracker, caplog: pytest.LogCaptureFixture) -> None:
    """An unreachable database: the first capture gives up at its bound, the next at once;
    both are queued to be sent again, and one warning says why."""
    with caplog.at_level(logging.WARNING, logger="pg_monitoring"):
        started = time.monotonic()
        first = tracker.capture_exception(ValueError("x"))
        after_first = time.monotonic()
        second = tracker.capture_message("y")
        after_second = time.monotonic()
    assert after_first - started < tracker.timeout + 0.2
    assert after_second - after_first < 0.05, "the second waits for nothing"
    assert first is not None
    assert first.issue_id is None
    assert second is not None
    assert second.issue_id is None
    assert tracker.queued_events == 2
    assert tracker.failed_captures == tracker.dropped_events == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "pg_monitoring"]
    assert len(warnings) == 1, "one warning, not one per request"
    assert "the database is unreachable" in warnings[0]
    tracker.close(timeout=0.3)
    assert tracker.dropped_events == 2, "still queued at close: counted as dropped"


def test_database_down(caplog: pytest.LogCaptureFixture) -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1"
    assert_queued_quietly(ErrorTracker(dsn, timeout=0.3), caplog)


def test_wrong_dsn_and_not_installed(
    installed_db: str, make_database: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    assert_queued_quietly(ErrorTracker(make_conninfo(installed_db, dbname="no_such_db")), caplog)
    caplog.clear()
    with ErrorTracker(make_database()) as not_installed:
        assert_failed_quietly(not_installed, caplog)


def test_a_closed_pool(installed_db: str, caplog: pytest.LogCaptureFixture) -> None:
    pool = ConnectionPool(installed_db, min_size=1, max_size=1, open=True)
    pool.close()
    assert_failed_quietly(ErrorTracker(pool), caplog)


def test_a_bad_event_fails_alone(tracker: ErrorTracker) -> None:
    assert tracker.capture_event({"message": "x", "level": "loud"}) is None
    assert tracker.capture_exception(ValueError("fine")) is not None
    assert tracker.failed_captures == 1


def test_an_unserialisable_context_is_stringified(installed_db: str, tracker: ErrorTracker) -> None:
    assert tracker.capture_message("odd", context={"n": float("nan")}) is None
    assert tracker.failed_captures == 1, "NaN is no JSON: refused, counted"
    assert tracker.capture_message("odd context", context={"when": object, "ids": {1, 2}})
    (row,) = query(installed_db, "SELECT context FROM monitoring.errors")
    assert row["context"] == {"when": "<class 'object'>", "ids": "{1, 2}"}


def test_the_event_a_capture_sends() -> None:
    tracker = ErrorTracker(
        "dbname=unused", environment="staging", release="1.2", server_name="", tags={"a": "1"}
    )
    event = tracker.exception_event(
        ValueError("x"), tags={"b": "2"}, fingerprint=("{{ default }}", "db"), level="warning"
    )
    assert event["fingerprint"] == ["{{ default }}", "db"]
    assert event["tags"] == {"a": "1", "b": "2"}
    assert event["environment"] == "staging"
    assert event["release"] == "1.2"
    assert event["level"] == "warning"
    assert event["platform"] == "python"
    assert event["sdk"]["name"] == "pg_monitoring.python"
    assert "server_name" not in event
    assert "service" not in event, "the database's default service applies"
    assert "contexts" not in event, "no span, no trace context"
    assert tracker.message_event("hello", fingerprint="greeting")["fingerprint"] == ["greeting"]
    # A raw event gets a timestamp too: a resend is recognised by its id and timestamp.
    assert isinstance(tracker._raw_event({"message": "x"})["timestamp"], float)
    assert tracker._raw_event({"timestamp": 1.5})["timestamp"] == 1.5


def test_constructor_errors_do_raise() -> None:
    with pytest.raises(TypeError):
        ErrorTracker(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'sms'"):
        ErrorTracker("dbname=x", notification_channels=["sms"])
    with pytest.raises(ValueError, match="timeout must be positive"):
        ErrorTracker("dbname=x", timeout=0)


# Background mode -----------------------------------------------------------------------


class Gate:
    """Wraps a tracker's batch sender: records batch sizes, and holds the first batch until
    `open()` so a test can fill the queue meanwhile."""

    def __init__(self, tracker: ErrorTracker) -> None:
        assert tracker._batcher is not None
        self.batches: list[int] = []
        self.held = threading.Event()
        self._open = threading.Event()
        self._send: Callable[[list[str]], list[str]] = tracker._batcher._send
        tracker._batcher._send = self.send

    def send(self, batch: list[str]) -> list[str]:
        self.held.set()
        self._open.wait(30)
        self.batches.append(len(batch))
        return self._send(batch)

    def open(self) -> None:
        self._open.set()


def test_background_batches_everything(installed_db: str) -> None:
    # every event stored: 400 of one issue stay under storm protection's threshold
    with psycopg.connect(installed_db, autocommit=True) as conn:
        conn.execute("SELECT monitoring.set_setting('errors.storm_full_events', '1000')")
    tracker = ErrorTracker(installed_db, environment=ENV, background=True, batch_size=50)
    gate = Gate(tracker)
    gate.open()
    results = []
    for order_id in range(400):
        try:
            charge(order_id)
        except TimeoutError as error:
            results.append(tracker.capture_exception(error))
    assert all(r is not None and r.issue_id is None for r in results)
    tracker.close()
    assert sum(gate.batches) == 400
    assert max(gate.batches) <= 50
    assert len(gate.batches) < 400, "events are sent in batches, not one by one"
    (issue,) = issues(installed_db)
    assert issue["times_seen"] == 400
    stored = query(installed_db, "SELECT id FROM monitoring.errors")
    assert {row["id"] for row in stored} == {r.event_id for r in results if r}
    assert tracker.failed_captures == tracker.dropped_events == 0


def test_a_bad_event_does_not_lose_its_batch(
    installed_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = ErrorTracker(installed_db, environment=ENV, background=True)
    gate = Gate(tracker)
    tracker.capture_message("first")
    assert gate.held.wait(10)
    for n in range(4):
        tracker.capture_message(f"good {n}")
    tracker.capture_event({"message": "bad", "level": "loud"})
    for n in range(4, 8):
        tracker.capture_message(f"good {n}")
    with caplog.at_level(logging.WARNING, logger="pg_monitoring"):
        gate.open()
        assert tracker.flush(30)
    assert gate.batches == [1, 9]
    assert "a batch of 9 events failed" in caplog.text
    assert "'loud'" in caplog.text
    assert tracker.failed_captures == 1
    assert len(query(installed_db, "SELECT * FROM monitoring.errors")) == 9
    tracker.close()


def test_a_full_queue_drops_and_counts(installed_db: str) -> None:
    tracker = ErrorTracker(installed_db, background=True, max_queue=5)
    gate = Gate(tracker)
    tracker.capture_message("in flight")
    assert gate.held.wait(10)
    accepted = [tracker.capture_message(f"queued {n}") for n in range(7)]
    assert [a is not None for a in accepted] == [True] * 5 + [False] * 2
    assert tracker.dropped_events == 2
    gate.open()
    tracker.close()
    assert len(query(installed_db, "SELECT * FROM monitoring.errors")) == 6
    assert tracker.capture_message("after close") is None
    assert tracker.dropped_events == 3


def test_background_database_down_keeps_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    tracker = ErrorTracker(dsn, background=True)
    gate = Gate(tracker)
    tracker.capture_message("first")
    assert gate.held.wait(10)
    for n in range(5):
        tracker.capture_message(f"more {n}")
    with caplog.at_level(logging.WARNING, logger="pg_monitoring"):
        gate.open()
        assert not tracker.flush(1), "nothing to send them to"
    assert tracker.queued_events == 6, "kept to be sent again"
    assert tracker.failed_captures == 0
    assert "one by one" not in caplog.text
    tracker.close(timeout=0.3)
    assert tracker.dropped_events == 6


def test_background_needs_a_pool_not_a_connection(installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn, pytest.raises(ValueError, match="pool"):
        ErrorTracker(conn, background=True)


def test_queued_events_are_sent_at_exit(installed_db: str) -> None:
    script = textwrap.dedent(
        f"""
        from pg_monitoring import init_error_tracker
        tracker = init_error_tracker({installed_db!r}, environment="exit", background=True)
        for n in range(50):
            tracker.capture_message(f"shutting down {{n}}")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=REPO)
    (row,) = query(installed_db, "SELECT times_seen FROM monitoring.issues")
    assert row["times_seen"] == 50


# Concurrency -------------------------------------------------------------------------------


def test_threads_capturing_one_fingerprint(installed_db: str) -> None:
    threads, each = 8, 25
    with ConnectionPool(installed_db, min_size=threads, max_size=threads) as pool:
        tracker = init_error_tracker(pool, environment=ENV)
        start = threading.Barrier(threads)

        def work() -> None:
            start.wait()
            for order_id in range(each):
                try:
                    charge(order_id)
                except TimeoutError:
                    tracker.capture_exception()

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert not any(worker.is_alive() for worker in workers)
    assert tracker.failed_captures == 0
    (issue,) = issues(installed_db)
    assert issue["times_seen"] == threads * each


# Issues --------------------------------------------------------------------------------


def test_resolve_ignore_assign_by_fingerprint(installed_db: str, tracker: ErrorTracker) -> None:
    tracker.capture_exception(ValueError("x"), fingerprint="payment_timeout_error")
    tracker.capture_exception(ValueError("y"), fingerprint="known_external_api_issue")

    def status(fingerprint: str) -> dict[str, Any]:
        (row,) = query(
            installed_db, "SELECT * FROM monitoring.issues WHERE fingerprint = %s", (fingerprint,)
        )
        return row

    resolved = tracker.resolve_error(fingerprint="payment_timeout_error", actor="dev@example.com")
    assert resolved["status"] == "resolved"
    assert status("payment_timeout_error")["resolved_by"] == "dev@example.com"

    assert tracker.ignore_error(fingerprint="known_external_api_issue")["status"] == "ignored"
    assert (
        tracker.ignore_error("known_external_api_issue", until_events=10)["ignore_until_times_seen"]
        == 11
    )

    assigned = tracker.assign_error(fingerprint="payment_timeout_error", assignee="dev@example.com")
    assert assigned["assignee"] == "dev@example.com"
    assert tracker.unassign_error("payment_timeout_error")["assignee"] is None
    assert tracker.reopen_error("payment_timeout_error")["status"] == "unresolved"
    assert status("known_external_api_issue")["status"] == "ignored"

    history = query(
        installed_db, "SELECT action FROM monitoring.issue_history ORDER BY occurred_at, id"
    )
    assert [h["action"] for h in history if h["action"] != "first_seen"] == [
        "resolved",
        "ignored",
        "ignored",
        "assigned",
        "unassigned",
        "unresolved",
    ]


def test_issue_lookups_use_the_trackers_environment(installed_db: str) -> None:
    with (
        ErrorTracker(installed_db, environment="staging") as staging,
        ErrorTracker(installed_db, environment="production") as production,
        ErrorTracker(installed_db) as anywhere,
    ):
        staging.capture_message("boom", fingerprint="same")
        production.capture_message("boom", fingerprint="same")
        staging.resolve_error("same")
        assert production.resolve_error("same", environment="staging")["status"] == "resolved"
        with pytest.raises(NotFoundError, match="no issue with fingerprint 'other'"):
            production.resolve_error("other")
        with pytest.raises(PgMonitoringError, match="names 2 issues"):
            anywhere.resolve_error("same")
    statuses = query(installed_db, "SELECT environment, status FROM monitoring.issues ORDER BY 1")
    assert statuses == [
        {"environment": "production", "status": "unresolved"},
        {"environment": "staging", "status": "resolved"},
    ]


# init_error_tracker ----------------------------------------------------------------------


def test_init_error_tracker_chooses_the_twin(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=1) as pool:
        tracker = init_error_tracker(
            pool,
            environment="production",
            notification_channels=[ErrorNotificationChannel.EMAIL, "slack"],
        )
        assert isinstance(tracker, ErrorTracker)
        assert tracker.notification_channels == (
            ErrorNotificationChannel.EMAIL,
            ErrorNotificationChannel.SLACK,
        )
        with pytest.raises(TypeError, match="async_"):
            init_error_tracker(pool, async_=True)
    assert isinstance(init_error_tracker(installed_db), ErrorTracker)
    assert isinstance(init_error_tracker(installed_db, async_=True), AsyncErrorTracker)
    with psycopg.connect(installed_db) as conn:
        assert isinstance(init_error_tracker(conn), ErrorTracker)
    assert {c.name for c in ErrorNotificationChannel} == {"EMAIL", "SLACK", "WEBHOOK", "PAGERDUTY"}


def test_on_a_callers_connection(installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn:
        tracker = init_error_tracker(conn, environment=ENV)
        assert tracker.capture_message("on a connection") is not None
    assert len(query(installed_db, "SELECT * FROM monitoring.errors")) == 1
