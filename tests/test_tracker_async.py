"""The asyncio twin, as the design document uses it: `await tracker.capture_exception(...)`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from psycopg_pool import AsyncConnectionPool

from pg_monitoring import PgMonitoringError
from pg_monitoring.monitoring import (
    AsyncErrorTracker,
    ErrorNotificationChannel,
    init_error_tracker,
)

from .test_tracker import charge, free_port, issues, query

ENV = "test"


async def process_payment(order_id: int) -> None:
    await asyncio.sleep(0)
    raise TimeoutError(f"payment timeout for order {order_id}")


async def test_the_design_documents_example(installed_db: str) -> None:
    async with AsyncConnectionPool(installed_db, min_size=1, max_size=2) as db_pool:
        tracker = init_error_tracker(
            db_pool,
            environment="production",
            notification_channels=[ErrorNotificationChannel.EMAIL, ErrorNotificationChannel.SLACK],
        )
        assert isinstance(tracker, AsyncErrorTracker)
        for order_id in (1, 22, 333):
            try:
                await process_payment(order_id)
            except TimeoutError as error:
                captured = await tracker.capture_exception(
                    error,
                    context={
                        "user_id": 7,
                        "order_id": order_id,
                        "request_id": f"req-{order_id}",
                        "operation": "process_payment",
                    },
                )
                assert captured is not None
                assert captured.issue_id is not None
        await tracker.close()
        assert not db_pool.closed, "the application's pool is the application's to close"
    (issue,) = issues(installed_db)
    assert issue["times_seen"] == 3
    assert issue["culprit"] == "tests.test_tracker_async in process_payment"
    rows = query(
        installed_db,
        "SELECT context->>'user_id' AS user_id FROM monitoring.errors "
        "WHERE environment = 'production' AND resolved_at IS NULL",
    )
    assert [r["user_id"] for r in rows] == ["7", "7", "7"]


async def test_issue_management(installed_db: str) -> None:
    async with init_error_tracker(installed_db, environment=ENV, async_=True) as tracker:
        assert await tracker.capture_message("slow", fingerprint="payment_timeout_error")
        assert await tracker.capture_message("flaky", fingerprint="known_external_api_issue")
        resolved = await tracker.resolve_error(fingerprint="payment_timeout_error")
        assert resolved["status"] == "resolved"
        ignored = await tracker.ignore_error(fingerprint="known_external_api_issue")
        assert ignored["status"] == "ignored"
        assigned = await tracker.assign_error(
            fingerprint="payment_timeout_error", assignee="dev@example.com"
        )
        assert assigned["assignee"] == "dev@example.com"
        assert (await tracker.unassign_error("payment_timeout_error"))["assignee"] is None
        assert (await tracker.reopen_error("payment_timeout_error"))["status"] == "unresolved"
        with pytest.raises(PgMonitoringError, match="no issue"):
            await tracker.resolve_error("critical_bug")
    statuses = {i["fingerprint"]: i["status"] for i in issues(installed_db)}
    assert statuses == {
        "payment_timeout_error": "unresolved",
        "known_external_api_issue": "ignored",
    }


async def test_database_down(caplog: pytest.LogCaptureFixture) -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    tracker = init_error_tracker(dsn, async_=True, timeout=0.3)
    with caplog.at_level(logging.WARNING, logger="pg_monitoring"):
        started = time.monotonic()
        try:
            charge(1)
        except TimeoutError as error:
            first = await tracker.capture_exception(error)
        second = await tracker.capture_message("x")
    assert time.monotonic() - started < 0.3 + 0.2, "one bound, then at once"
    assert first is not None, "queued, with its id"
    assert first.issue_id is None
    assert second is not None
    assert second.issue_id is None
    assert tracker.queued_events == 2
    assert tracker.failed_captures == 0
    assert "the database is unreachable" in caplog.text
    await tracker.close(timeout=0.3)
    assert tracker.dropped_events == 2


async def test_on_a_callers_connection(installed_db: str) -> None:
    async with await psycopg.AsyncConnection.connect(installed_db) as conn:
        tracker = init_error_tracker(conn)
        assert isinstance(tracker, AsyncErrorTracker)
        assert await tracker.capture_message("on a connection") is not None
        with pytest.raises(ValueError, match="pool"):
            AsyncErrorTracker(conn, background=True)
    assert len(query(installed_db, "SELECT * FROM monitoring.errors")) == 1


async def test_an_opentelemetry_span(installed_db: str) -> None:
    tracer = TracerProvider().get_tracer("tests")
    async with AsyncErrorTracker(installed_db) as tracker:
        with tracer.start_as_current_span("request") as span:
            await tracker.capture_exception(ValueError("inside a span"))
    (row,) = query(installed_db, "SELECT trace_id, span_id FROM monitoring.errors")
    assert row == {
        "trace_id": format(span.get_span_context().trace_id, "032x"),
        "span_id": format(span.get_span_context().span_id, "016x"),
    }


async def test_tasks_capturing_one_fingerprint(installed_db: str) -> None:
    tasks, each = 8, 25
    async with AsyncConnectionPool(installed_db, min_size=tasks, max_size=tasks) as pool:
        tracker = init_error_tracker(pool, environment=ENV)

        async def work() -> None:
            for order_id in range(each):
                try:
                    await process_payment(order_id)
                except TimeoutError:
                    await tracker.capture_exception()

        await asyncio.wait_for(asyncio.gather(*(work() for _ in range(tasks))), 60)
    assert tracker.failed_captures == 0
    (issue,) = issues(installed_db)
    assert issue["times_seen"] == tasks * each


# Background mode -----------------------------------------------------------------------


class Gate:
    """Records batch sizes and holds the first batch until `open()`."""

    def __init__(self, tracker: AsyncErrorTracker) -> None:
        assert tracker._batcher is not None
        self.batches: list[int] = []
        self.held = asyncio.Event()
        self._open = asyncio.Event()
        self._send: Callable[[list[str]], Awaitable[list[str]]] = tracker._batcher._send
        tracker._batcher._send = self.send

    async def send(self, batch: list[str]) -> list[str]:
        self.held.set()
        await self._open.wait()
        self.batches.append(len(batch))
        return await self._send(batch)

    def open(self) -> None:
        self._open.set()


async def test_background_batches_everything(installed_db: str) -> None:
    tracker = AsyncErrorTracker(installed_db, environment=ENV, background=True, batch_size=40)
    gate = Gate(tracker)
    gate.open()
    results: list[Any] = []
    for order_id in range(300):
        try:
            await process_payment(order_id)
        except TimeoutError as error:
            results.append(await tracker.capture_exception(error))
    assert all(r is not None and r.issue_id is None for r in results)
    await tracker.close()
    assert sum(gate.batches) == 300
    assert max(gate.batches) <= 40
    assert len(gate.batches) < 300
    (issue,) = issues(installed_db)
    assert issue["times_seen"] == 300
    assert tracker.failed_captures == tracker.dropped_events == 0


async def test_background_bad_event_and_full_queue(
    installed_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = AsyncErrorTracker(installed_db, background=True, max_queue=6)
    gate = Gate(tracker)
    await tracker.capture_message("in flight")
    await asyncio.wait_for(gate.held.wait(), 10)
    accepted = [await tracker.capture_message(f"good {n}") for n in range(5)]
    accepted.append(await tracker.capture_event({"message": "bad", "level": "loud"}))
    accepted.append(await tracker.capture_message("one too many"))
    assert [a is not None for a in accepted] == [True] * 6 + [False]
    assert tracker.dropped_events == 1
    with caplog.at_level(logging.WARNING, logger="pg_monitoring"):
        gate.open()
        assert await tracker.flush(30)
    assert gate.batches == [1, 6]
    assert "a batch of 6 events failed" in caplog.text
    assert tracker.failed_captures == 1
    await tracker.close()
    assert len(query(installed_db, "SELECT * FROM monitoring.errors")) == 6
    assert await tracker.capture_message("after close") is None
