"""The real sentry-sdk with PostgresTransport: errors, transactions and logs land in
monitoring.*, grouped as our own tracker groups; overflow and outages are counted as lost
in the SDK's client-report terms, and never hold the application."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sentry_sdk
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from pg_monitoring import ErrorTracker
from pg_monitoring.sentry import PostgresTransport

from .conftest import login_role, poll
from .test_asgi_middleware import App, wait_for
from .test_outage import BIN, Server, app_db, server  # noqa: F401 - fixtures
from .test_tracker import free_port

README = Path(__file__).resolve().parent.parent / "README.md"


def rows(dsn: str, text: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(text, params).fetchall()


@pytest.fixture
def writer_dsn(installed_db: str) -> str:
    """The database reached by a role that is only a monitoring_writer."""
    return login_role(installed_db, "pgm_sentry_writer", "monitoring_writer")


@pytest.fixture
def pool(writer_dsn: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(writer_dsn, min_size=1, max_size=2, open=True) as pool:
        yield pool


@contextmanager
def sentry(transport: PostgresTransport, **options: Any) -> Iterator[PostgresTransport]:
    """sentry_sdk initialised with `transport`; closed (flush, then kill) afterwards."""
    sentry_sdk.init(transport=transport, **options)
    try:
        with sentry_sdk.isolation_scope():  # the user, tags and attachments set stay here
            yield transport
    finally:
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init()  # a client with no transport for whatever runs next


def place_order(order_id: int) -> None:
    raise ValueError(f"order {order_id} not found")


def test_an_exception_is_one_issue_with_our_own_trackers_events(
    installed_db: str, pool: ConnectionPool
) -> None:
    tracker = ErrorTracker(pool, service="checkout", environment="production")
    with sentry(PostgresTransport(pool, service="checkout")) as transport:
        sentry_sdk.add_breadcrumb(category="cart", message="added item 7")
        sentry_sdk.set_user({"id": "u-1", "email": "ada@example.com"})
        sentry_sdk.set_tag("region", "eu")
        ours = []
        for order_id in (1, 2):
            try:
                place_order(order_id)
            except ValueError as error:
                sentry_sdk.capture_exception(error)
                ours.append(tracker.capture_exception(error))
        sentry_sdk.capture_message("payment provider slow", level="warning")
        sentry_sdk.flush(timeout=10)
        assert transport.stats()["stored"] == {"event": 3}
    events = rows(
        installed_db,
        "SELECT id, issue_id, fingerprint, service, environment, tags, user_info, breadcrumbs,"
        " message, platform FROM monitoring.errors WHERE platform = 'python' ORDER BY occurred_at",
    )
    sent = [event for event in events if event["id"] not in {c.event_id for c in ours}]
    assert len(sent) == 3
    # the SDK's two events of the exception, and our tracker's two: one issue
    assert {
        event["issue_id"] for event in events if event["message"] != "payment provider slow"
    } == {ours[0].issue_id}
    first = sent[0]
    assert first["service"] == "checkout"
    assert first["environment"] == "production"
    assert first["tags"]["region"] == "eu"
    assert first["user_info"]["id"] == "u-1"
    assert any(crumb.get("message") == "added item 7" for crumb in first["breadcrumbs"])
    assert sent[2]["message"] == "payment provider slow"
    [issue] = rows(
        installed_db, "SELECT * FROM monitoring.issues WHERE id = %s", (ours[0].issue_id,)
    )
    assert issue["times_seen"] == 4
    assert issue["exception_type"] == "ValueError"


def test_the_logging_integration_reports_an_error_record(
    installed_db: str, pool: ConnectionPool
) -> None:
    with sentry(PostgresTransport(pool, service="checkout", environment="staging")):
        try:
            place_order(3)
        except ValueError:
            logging.getLogger("shop.orders").exception("order failed")
        sentry_sdk.flush(timeout=10)
    [event] = rows(installed_db, "SELECT * FROM monitoring.errors")
    assert event["exception_type"] == "ValueError"
    assert event["service"] == "checkout"
    # the SDK sets environment "production" itself: the transport's is for events without
    assert event["environment"] == "production"


def test_a_transaction_becomes_a_trace(installed_db: str, pool: ConnectionPool) -> None:
    with sentry(PostgresTransport(pool, service="checkout"), traces_sample_rate=1.0) as transport:
        with sentry_sdk.start_transaction(op="http.server", name="POST /orders") as root:
            root.set_tag("region", "eu")
            with sentry_sdk.start_span(op="db", name="INSERT INTO orders") as insert:
                insert.set_data("db.rows", 1)
                with sentry_sdk.start_span(op="http.client", name="POST /charge") as call:
                    call.set_status("internal_error")
        sentry_sdk.flush(timeout=10)
        assert transport.stats()["stored"] == {"span": 3}
    spans = {
        span["span_id"]: span
        for span in rows(
            installed_db, "SELECT * FROM monitoring.spans WHERE trace_id = %s", (root.trace_id,)
        )
    }
    assert set(spans) == {root.span_id, insert.span_id, call.span_id}
    assert spans[root.span_id]["parent_span_id"] is None
    assert spans[insert.span_id]["parent_span_id"] == root.span_id
    assert spans[call.span_id]["parent_span_id"] == insert.span_id
    assert spans[root.span_id]["operation"] == "POST /orders"
    assert spans[root.span_id]["kind"] == "server"
    assert spans[root.span_id]["attributes"]["region"] == "eu"
    assert spans[insert.span_id]["operation"] == "INSERT INTO orders"
    assert spans[insert.span_id]["attributes"]["db.rows"] == 1
    assert spans[insert.span_id]["attributes"]["sentry.op"] == "db"
    assert spans[call.span_id]["status_code"] == "error"
    assert spans[call.span_id]["status_message"] == "internal_error"
    assert all(span["service"] == "checkout" for span in spans.values())
    assert spans[root.span_id]["resource"]["deployment.environment.name"] == "production"
    [trace] = rows(
        installed_db, "SELECT * FROM monitoring.traces WHERE trace_id = %s", (root.trace_id,)
    )
    assert trace["root_operation"] == "POST /orders"
    assert trace["span_count"] == 3
    assert trace["error_count"] == 1
    assert trace["duration_ms"] >= spans[insert.span_id]["duration_ms"]


@pytest.mark.skipif(not hasattr(sentry_sdk, "traces"), reason="sentry-sdk without span streaming")
def test_streamed_spans_become_a_trace(installed_db: str, pool: ConnectionPool) -> None:
    from sentry_sdk import traces

    with sentry(
        PostgresTransport(pool, service="checkout"),
        traces_sample_rate=1.0,
        trace_lifecycle="stream",
    ) as transport:
        http_server = {"sentry.op": "http.server"}
        with (
            traces.start_span(name="POST /orders", attributes=http_server) as root,
            traces.start_span(name="INSERT INTO orders", attributes={"db.rows": 2}) as insert,
        ):
            pass
        sentry_sdk.flush(timeout=10)
        assert transport.stats()["received"] == {"span": 1}
        assert transport.stats()["stored"] == {"span": 2}
    spans = {
        span["span_id"]: span
        for span in rows(
            installed_db, "SELECT * FROM monitoring.spans WHERE trace_id = %s", (root.trace_id,)
        )
    }
    assert spans[insert.span_id]["parent_span_id"] == root.span_id
    assert spans[insert.span_id]["attributes"]["db.rows"] == 2
    assert spans[root.span_id]["operation"] == "POST /orders"
    assert spans[root.span_id]["kind"] == "server"
    assert spans[root.span_id]["service"] == "checkout"


def test_a_large_batch_of_spans_is_stored_in_several_calls(
    installed_db: str, pool: ConnectionPool
) -> None:
    transport = PostgresTransport(pool)
    with sentry(transport, traces_sample_rate=1.0), psycopg.connect(installed_db) as holder:
        # The lock holds the first transaction in flight while ten more queue: together over
        # the 10,000 items record_spans takes in one call
        holder.execute("LOCK TABLE monitoring.trace_spans IN ACCESS EXCLUSIVE MODE")
        for n in range(11):
            with sentry_sdk.start_transaction(name=f"import {n}"):
                for i in range(1000):
                    with sentry_sdk.start_span(op="db", name=f"INSERT {i}"):
                        pass
        assert poll(lambda: transport.stats()["queued"] == 11)
        holder.rollback()
        sentry_sdk.flush(timeout=60)
        assert transport.stats()["lost"] == {}
        assert transport.stats()["stored"] == {"span": 11 * 1001}


def test_an_error_in_a_transaction_joins_its_trace(installed_db: str, pool: ConnectionPool) -> None:
    with sentry(PostgresTransport(pool), traces_sample_rate=1.0):
        with sentry_sdk.start_transaction(op="task", name="nightly") as root:
            try:
                place_order(4)
            except ValueError as error:
                sentry_sdk.capture_exception(error)
        sentry_sdk.flush(timeout=10)
    [event] = rows(installed_db, "SELECT trace_id, span_id FROM monitoring.errors")
    assert event == {"trace_id": root.trace_id, "span_id": root.span_id}
    assert rows(
        installed_db, "SELECT count(*) FROM monitoring.spans WHERE trace_id = %s", (root.trace_id,)
    ) == [{"count": 1}]


@pytest.mark.skipif(not hasattr(sentry_sdk, "logger"), reason="sentry-sdk without Sentry logs")
def test_sentry_logs_land_in_monitoring_logs(installed_db: str, pool: ConnectionPool) -> None:
    with sentry(
        PostgresTransport(pool, service="checkout"), enable_logs=True, traces_sample_rate=1.0
    ) as transport:
        with sentry_sdk.start_transaction(name="checkout") as root:
            sentry_sdk.logger.warning("stock low for {sku}", sku="A-1")
        logging.getLogger("shop").warning("order %s held", 7)
        sentry_sdk.flush(timeout=10)
        assert transport.stats()["stored"]["log"] == 2
    logs = {
        log["body"]: log
        for log in rows(installed_db, "SELECT * FROM monitoring.logs ORDER BY time")
    }
    assert set(logs) == {"stock low for A-1", "order 7 held"}
    low = logs["stock low for A-1"]
    assert low["severity"] == "warn"
    assert low["service"] == "checkout"
    assert low["trace_id"] == root.trace_id
    assert low["attributes"]["sentry.message.parameter.sku"] == "A-1"
    assert logs["order 7 held"]["attributes"]["logger.name"] == "shop"


def test_other_items_are_counted_not_stored(installed_db: str, pool: ConnectionPool) -> None:
    with sentry(PostgresTransport(pool)) as transport:
        sentry_sdk.crons.capture_checkin(monitor_slug="nightly", status="ok")
        sentry_sdk.get_isolation_scope().add_attachment(bytes=b"cart: 3 items", filename="cart.txt")
        sentry_sdk.capture_message("with an attachment")
        sentry_sdk.flush(timeout=10)
        stats = transport.stats()
    assert stats["received"] == {"check_in": 1, "event": 1, "attachment": 1}
    assert stats["stored"] == {"event": 1}
    assert stats["lost"] == {}


def test_a_full_queue_is_counted_as_lost(installed_db: str, pool: ConnectionPool) -> None:
    transport = PostgresTransport(pool, queue_size=2)
    with sentry(transport), psycopg.connect(installed_db) as holder:
        # The lock holds the worker's first batch in flight while the queue fills.
        holder.execute("LOCK TABLE monitoring.error_events IN ACCESS EXCLUSIVE MODE")
        sentry_sdk.capture_message("first")
        assert poll(
            lambda: transport.stats()["queued"] == 1 and transport._batcher._backlog.in_flight
        )
        for n in range(5):
            sentry_sdk.capture_message(f"more {n}")
        assert transport.stats()["lost"] == {("error", "queue_overflow"): 3}
        assert not transport.is_healthy()
        holder.rollback()
        sentry_sdk.flush(timeout=10)
        assert transport.stats()["stored"] == {"event": 3}
        assert transport.is_healthy()


def test_what_the_database_refuses_is_lost_alone(installed_db: str, pool: ConnectionPool) -> None:
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        if event.get("message") == "bad":
            event["level"] = "loud"  # capture_event refuses a level it does not know
        return event

    def before_send_transaction(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        event["spans"][0]["timestamp"] = "1999-01-01T00:00:00Z"  # ends before it starts
        return event

    options = {"before_send": before_send, "before_send_transaction": before_send_transaction}
    with sentry(PostgresTransport(pool), traces_sample_rate=1.0, **options) as transport:
        for message in ("good", "bad", "good too"):
            sentry_sdk.capture_message(message)
        with sentry_sdk.start_transaction(name="job"), sentry_sdk.start_span(name="step"):
            pass
        sentry_sdk.flush(timeout=10)
        stats = transport.stats()
    assert stats["lost"] == {("error", "send_error"): 1, ("span", "send_error"): 1}
    assert stats["stored"] == {"event": 2, "span": 1}
    assert sorted(
        row["message"] for row in rows(installed_db, "SELECT message FROM monitoring.errors")
    ) == [
        "good",
        "good too",
    ]


def test_events_wait_out_an_outage(
    server: Server,  # noqa: F811 - test_outage's fixture
    app_db: str,  # noqa: F811
) -> None:
    with ConnectionPool(app_db, min_size=1, max_size=2, timeout=1) as pool:
        transport = PostgresTransport(pool, timeout=1.0)
        with sentry(transport):
            sentry_sdk.capture_message("before")
            sentry_sdk.flush(timeout=10)
            server.stop("fast")
            started = time.perf_counter()
            for n in range(20):
                sentry_sdk.capture_message(f"during {n}")
            assert time.perf_counter() - started < 1.0
            sentry_sdk.flush(timeout=1)
            assert transport.stats()["queued"] > 0
            assert not transport.is_healthy()
            server.start()
            sentry_sdk.flush(timeout=20)
            assert transport.stats()["stored"] == {"event": 21}
            assert transport.stats()["lost"] == {}
    assert rows(app_db, "SELECT count(*) FROM monitoring.errors") == [{"count": 21}]


def dropped_by_transport(lost: dict[str, int]) -> dict[str, int]:
    """The app's lost counts ("category:reason") but the SDK's own (dedupe, sampling...)."""
    ours = ("queue_overflow", "network_error", "send_error", "internal_sdk_error")
    return {key: n for key, n in lost.items() if key.endswith(ours)}


@pytest.fixture
def sentry_app(tmp_path: Path) -> Iterator[Callable[[str], App]]:
    """tests/sentry_app.py under uvicorn: FastAPI with the real SDK and the transport."""
    apps: list[App] = []

    def start(dsn: str) -> App:
        apps.append(App(dsn, tmp_path / f"app{len(apps)}.log", target="tests.sentry_app:app"))
        return apps[-1]

    yield start
    for app in apps:
        app.stop()


def test_a_failing_fastapi_request_is_one_issue_with_its_request_and_user(
    installed_db: str, writer_dsn: str, sentry_app: Callable[[str], App]
) -> None:
    app = sentry_app(writer_dsn)
    # uvicorn drops the connection of a request that raised: not one to keep alive
    for order in (1, 2):
        response = app.client.get(f"/checkout/{order}", headers={"Connection": "close"})
        assert response.status_code == 500
    # the SDK's own drops are counted too: uvicorn logs the exception, dedupe drops that event
    assert dropped_by_transport(app.client.post("/flush").json()["lost"]) == {}
    errors = rows(installed_db, "SELECT * FROM monitoring.errors ORDER BY occurred_at")
    assert [error["user_info"]["id"] for error in errors] == ["user-1", "user-2"]
    assert len({error["issue_id"] for error in errors}) == 1
    first = errors[0]
    assert first["exception_type"] == "PaymentTimeout"
    assert first["service"] == "shop"
    assert first["environment"] == "test"
    assert first["transaction_name"] == "/checkout/{order}"
    assert first["data"]["request"]["url"].endswith("/checkout/1")
    assert first["data"]["request"]["method"] == "GET"
    assert any(crumb.get("message") == "cart of order 1 is large" for crumb in first["breadcrumbs"])
    # the request's transaction, the error's span (the SDK may put requests that came
    # without a trace header in one trace: their spans are each a child of the same remote)
    [span] = rows(
        installed_db, "SELECT * FROM monitoring.spans WHERE span_id = %s", (first["span_id"],)
    )
    assert span["trace_id"] == first["trace_id"]
    assert span["operation"] == "/checkout/{order}"
    assert span["kind"] == "server"
    assert span["status_code"] == "error"
    assert span["service"] == "shop"


@pytest.mark.skipif(not (BIN / "initdb").exists(), reason="needs initdb")
def test_with_the_database_stopped_requests_keep_their_latency(
    server: Server,  # noqa: F811 - test_outage's fixture
    app_db: str,  # noqa: F811
    sentry_app: Callable[[str], App],
) -> None:
    app = sentry_app(app_db)
    assert app.client.get("/checkout/0", headers={"Connection": "close"}).status_code == 500
    assert app.client.post("/flush").json()["stored"]["event"] == 1
    server.stop("fast")
    try:
        timings = []
        for number in range(1, 21):
            started = time.monotonic()
            path = f"/checkout/{number}" if number % 5 == 0 else f"/items/{number}"
            response = app.client.get(path, headers={"Connection": "close"})
            timings.append(time.monotonic() - started)
            assert response.status_code == (500 if number % 5 == 0 else 200)
        assert max(timings) < 0.5, timings
        wait_for(lambda: app.stats()["queued"] > 0, "envelopes waiting for the database")
    finally:
        server.start()
    stats = wait_for(
        lambda: (s := app.client.post("/flush").json())["queued"] == 0 and s, "the queue stored", 30
    )
    assert dropped_by_transport(stats["lost"]) == {}
    assert stats["stored"]["event"] == 5
    assert rows(app_db, "SELECT count(*) FROM monitoring.errors") == [{"count": 5}]


def lost_by_category(transport: PostgresTransport) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (category, _reason), quantity in transport.stats()["lost"].items():
        totals[category] = totals.get(category, 0) + quantity
    return totals


def test_the_database_down_never_holds_the_application() -> None:
    dsn = f"host=127.0.0.1 port={free_port()} user=nobody dbname=nothing"
    transport = PostgresTransport(dsn, timeout=1.0)
    with sentry(transport, traces_sample_rate=1.0):
        started = time.perf_counter()
        for n in range(150):
            with sentry_sdk.start_transaction(name=f"job {n}"):
                sentry_sdk.capture_message(f"message {n}")
        took = time.perf_counter() - started
        assert took < 2.0, f"150 transactions with a message each took {took:.2f} s"
        started = time.perf_counter()
        sentry_sdk.flush(timeout=1)
        assert time.perf_counter() - started < 1.5
        assert not transport.is_healthy()
    # Closed: every item counted lost, the transactions' spans too; those that found the
    # queue full as queue_overflow, the others as network_error once the SDK killed it.
    expected = {"error": 150, "transaction": 150, "span": 150}
    assert poll(lambda: lost_by_category(transport) == expected, 5), transport.stats()
    reasons = {reason for _category, reason in transport.stats()["lost"]}
    assert reasons == {"queue_overflow", "network_error"}
    assert transport.stats()["stored"] == {}


def test_the_readme_snippet_runs(
    installed_db: str, writer_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = README.read_text()
    section = text[text.index("## sentry-sdk: the transport") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setenv("DATABASE_URL", writer_dsn)
    namespace: dict[str, Any] = {}
    try:
        exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init()
    assert rows(installed_db, "SELECT service FROM monitoring.errors") == [{"service": "checkout"}]
