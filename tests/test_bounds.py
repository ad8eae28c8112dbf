"""A server that takes a call and never answers it: the caller is let go at its bound.

A lock held by another session stands in for a hung server (or a network that dropped the
connection silently): the statement waits in the server, and only the client's watchdog can
end the wait. Then the breaker: the next call fails at once, and after a backoff one probe
finds the database well and closes it. Whatever the database refuses leaves it closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

import pg_monitoring.redis_compat as redis_sync
import pg_monitoring.redis_compat.asyncio as redis_async
from pg_monitoring import (
    AsyncErrorTracker,
    CallTimeoutError,
    ErrorTracker,
    InvalidArgumentError,
    PostgresCache,
    SyncPostgresCache,
    UnavailableError,
)
from pg_monitoring.breaker import BACKOFF_FIRST

BOUND = 0.3
SLACK = 0.2


@contextmanager
def held(dsn: str, statement: str) -> Iterator[None]:
    """`statement` run in an open transaction of another session, whose locks stall others."""
    with psycopg.connect(dsn) as conn:
        conn.execute(statement)
        yield
        conn.commit()


@contextmanager
def within(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < seconds


def waiting_backends(dsn: str, function: str) -> int:
    """Sessions still waiting on a lock in a call of `function` (which the cancel missed)."""
    with psycopg.connect(dsn) as conn:
        time.sleep(0.2)  # the cancel request travels on its own connection
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND query LIKE %s",
            (f"%monitoring.{function}(%",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_cache_call_with_no_answer_is_abandoned(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        cache = SyncPostgresCache(pool, timeout=BOUND)
        lenient = SyncPostgresCache(pool, timeout=BOUND, outage_as_miss=True)
        facade = redis_sync.Redis(pool, timeout=BOUND)
        cache.set("k", "old")
        with held(installed_db, "SELECT monitoring.cache_set('k', '\"theirs\"')"):
            with within(BOUND + SLACK), pytest.raises(CallTimeoutError):
                cache.set("k", "ours")
            with within(BOUND + SLACK):
                assert lenient.set("k", "ours") is False, "not stored, as far as we know"
            with within(BOUND + SLACK), pytest.raises(redis_sync.TimeoutError):
                facade.set("k", "ours")
            assert waiting_backends(installed_db, "cache_set") == 0, "cancelled in the server"
        assert cache.get("k") == "theirs", "ours never took effect"


def test_after_a_failure_calls_fail_at_once_until_a_probe_succeeds(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        cache = SyncPostgresCache(pool, timeout=BOUND)
        lenient = SyncPostgresCache(pool, timeout=BOUND, outage_as_miss=True)
        with held(installed_db, "SELECT monitoring.cache_set('k', '1')"):
            with pytest.raises(CallTimeoutError):
                cache.set("k", "ours")
            # no round trip: far under the bound (the pool's threads replacing the abandoned
            # connection share the GIL, so not always under 10 ms on 2 busy cores)
            with within(BOUND / 10), pytest.raises(UnavailableError, match="next try in"):
                cache.get("k")  # no round trip: the breaker refuses
            assert lenient.set("k", "ours") is False
            with within(BOUND / 10):
                assert lenient.get("k", "miss") == "miss", "or answers a miss"
        time.sleep(BACKOFF_FIRST)
        for client in (cache, lenient):
            assert client.get("k") == 1, "the probe found the database well"
            assert client.get("k") == 1


def test_refused_calls_leave_the_breaker_closed(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        cache = SyncPostgresCache(pool)
        for _ in range(3):
            with pytest.raises(InvalidArgumentError):
                cache.set("k", 1, ttl=-1)
        assert cache.set("k", 1)
        assert cache._connector.breaker.closed


def test_a_capture_with_no_answer_is_queued_and_stored_once(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        tracker = ErrorTracker(pool, timeout=BOUND)
        stalled = "LOCK TABLE monitoring.error_events IN ACCESS EXCLUSIVE MODE"
        with held(installed_db, stalled):
            with within(BOUND + SLACK):
                first = tracker.capture_message("stalled")
            with within(BOUND / 10):
                second = tracker.capture_message("joins the queue")
            # the worker's resend of both waits for the lock; the capture does not
            assert waiting_backends(installed_db, "capture_event") == 0
        assert first is not None
        assert second is not None
        assert first.issue_id is second.issue_id is None, "queued, with their ids"
        assert tracker.flush(10)
        with psycopg.connect(installed_db) as conn:
            stored = conn.execute("SELECT id FROM monitoring.errors").fetchall()
        assert sorted(stored) == sorted([(first.event_id,), (second.event_id,)])
        after = tracker.capture_message("direct again")
        assert after is not None
        assert after.issue_id is not None
        tracker.close()


async def test_async_calls_with_no_answer_are_abandoned(installed_db: str) -> None:
    async with AsyncConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        cache = PostgresCache(pool, timeout=BOUND)
        facade = redis_async.Redis(pool, timeout=BOUND)
        tracker = AsyncErrorTracker(pool, timeout=BOUND)
        await cache.set("k", "old")
        with held(installed_db, "SELECT monitoring.cache_set('k', '\"theirs\"')"):
            with within(BOUND + SLACK), pytest.raises(CallTimeoutError):
                await cache.set("k", "ours")
            with within(BOUND + SLACK), pytest.raises(redis_async.TimeoutError):
                await facade.set("k", "ours")
        stalled = "LOCK TABLE monitoring.error_events IN ACCESS EXCLUSIVE MODE"
        with held(installed_db, stalled):
            with within(BOUND + SLACK):
                queued = await tracker.capture_message("stalled")
            assert waiting_backends(installed_db, "capture_event") == 0
        assert queued is not None
        assert queued.issue_id is None
        assert await tracker.flush(10)
        await asyncio.sleep(BACKOFF_FIRST)  # the cache's breaker opened at its timeout
        assert await cache.get("k") == "theirs"
        with psycopg.connect(installed_db) as conn:
            assert conn.execute("SELECT id FROM monitoring.errors").fetchall() == [
                (queued.event_id,)
            ]
        await tracker.close()
