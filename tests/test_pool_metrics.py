"""pg_monitoring.db: the registered pool, and its gauges read from real psycopg_pool pools on
the test server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pg_monitoring import db
from pg_monitoring.monitoring.metrics import MetricsCollector

from .conftest import REPO, poll

WARNING = "Database pool highly utilized"


@pytest.fixture
def collector() -> MetricsCollector:
    return MetricsCollector(CollectorRegistry())


@pytest.fixture(autouse=True)
def no_registered_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "_pool", None)


def gauges(collector: MetricsCollector) -> dict[str, float | None]:
    value = collector.registry.get_sample_value
    return {
        **{
            state: value("pg_monitoring_db_pool_connections", {"state": state})
            for state in ("active", "idle", "waiting")
        },
        "max": value("pg_monitoring_db_pool_max_connections"),
    }


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pg_monitoring.db" and r.msg == WARNING]


def test_get_db_pool_returns_the_registered_pool(database: str) -> None:
    with pytest.raises(db.NoPoolRegisteredError, match=r"register_db_pool\(pool\)"):
        db.get_db_pool()
    with pytest.raises(TypeError, match="ConnectionPool or AsyncConnectionPool"):
        db.register_db_pool(database)  # type: ignore[arg-type]
    with ConnectionPool(database, min_size=1, open=True) as pool:
        assert db.register_db_pool(pool) is pool
        assert db.get_db_pool() is pool


def test_held_connections_and_one_saturation_warning(
    database: str, collector: MetricsCollector, caplog: pytest.LogCaptureFixture
) -> None:
    with ConnectionPool(database, min_size=4, max_size=4) as pool:
        pool.wait()
        db.register_db_pool(pool)
        held = [pool.getconn() for _ in range(3)]
        db.collect_pool_metrics(collector=collector)
        assert gauges(collector) == {"active": 3, "idle": 1, "waiting": 0, "max": 4}
        assert not warnings(caplog), "75% lent out is not saturated"

        held.append(pool.getconn())
        # one more client queues for a connection
        waiter = threading.Thread(target=lambda: pool.putconn(pool.getconn(timeout=20)))
        waiter.start()
        assert poll(lambda: pool.get_stats()["requests_waiting"] == 1)
        with caplog.at_level(logging.WARNING, logger="pg_monitoring.db"):
            db.collect_pool_metrics(pool, collector)
            db.collect_pool_metrics(pool, collector)
        assert gauges(collector) == {"active": 4, "idle": 0, "waiting": 1, "max": 4}
        [warning] = warnings(caplog)
        assert (warning.pool_size, warning.max_size, warning.utilization_pct) == (4, 4, 100.0)  # type: ignore[attr-defined]
        assert (warning.active, warning.waiting) == (4, 1)  # type: ignore[attr-defined]

        for conn in held:
            pool.putconn(conn)
        waiter.join(20)
        db.collect_pool_metrics(pool, collector)
        assert gauges(collector) == {"active": 0, "idle": 4, "waiting": 0, "max": 4}


def test_a_sustained_saturation_warns_and_again_after_the_interval(
    database: str,
    collector: MetricsCollector,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with (
        ConnectionPool(database, min_size=1, max_size=1) as pool,
        pool.connection(),
        caplog.at_level(logging.WARNING, logger="pg_monitoring.db"),
    ):
        db.collect_pool_metrics(pool, collector)
        assert not warnings(caplog), "saturated once: perhaps connections being opened"
        db.collect_pool_metrics(pool, collector)
        assert len(warnings(caplog)) == 1, "saturated twice in a row"
        db.collect_pool_metrics(pool, collector)
        assert len(warnings(caplog)) == 1, "not again within WARNING_INTERVAL"
        monkeypatch.setattr(db, "WARNING_INTERVAL", 0.0)
        db.collect_pool_metrics(pool, collector)
        assert len(warnings(caplog)) == 2


def test_an_idle_pool_of_fixed_size_is_not_saturated(
    database: str, collector: MetricsCollector, caplog: pytest.LogCaptureFixture
) -> None:
    """The design document's pool_size / max_size would say 100% here."""
    with ConnectionPool(database, min_size=2, max_size=2) as pool:
        pool.wait()
        with caplog.at_level(logging.WARNING, logger="pg_monitoring.db"):
            stats = db.collect_pool_metrics(pool, collector)
        assert stats["pool_size"] == stats["pool_max"] == 2
        assert gauges(collector)["active"] == 0
        assert not warnings(caplog)


def test_a_closed_pool_has_nothing_lent_out(
    database: str, collector: MetricsCollector, caplog: pytest.LogCaptureFixture
) -> None:
    pool = ConnectionPool(database, min_size=2, max_size=2, open=False)
    with caplog.at_level(logging.WARNING, logger="pg_monitoring.db"):
        for _ in range(2):
            stats = db.collect_pool_metrics(pool, collector)
    assert stats["pool_size"] == 2, "psycopg_pool counts min_size before it opened"
    assert gauges(collector) == {"active": 0, "idle": 0, "waiting": 0, "max": 2}
    assert not warnings(caplog)


async def test_async_pool_and_the_periodic_collector(
    database: str, collector: MetricsCollector, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncConnectionPool(database, min_size=3, max_size=3) as pool:
        await pool.wait()
        db.register_db_pool(pool)
        held = [await pool.getconn() for _ in range(3)]
        with caplog.at_level(logging.WARNING, logger="pg_monitoring.db"):
            task = asyncio.create_task(db.metrics_collector(interval=0.01, collector=collector))
            for _ in range(200):
                if gauges(collector)["active"] == 3:
                    break
                await asyncio.sleep(0.01)
            assert gauges(collector) == {"active": 3, "idle": 0, "waiting": 0, "max": 3}
            for _ in range(200):
                if warnings(caplog):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # ten more saturated collections
            for conn in held:
                await pool.putconn(conn)
            for _ in range(200):
                if gauges(collector)["idle"] == 3:
                    break
                await asyncio.sleep(0.01)
            assert gauges(collector)["active"] == 0
        assert len(warnings(caplog)) == 1, "saturated for many collections, warned once"

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()


def test_the_thread_collects_until_stopped(database: str, collector: MetricsCollector) -> None:
    with ConnectionPool(database, min_size=2, max_size=2) as pool:
        pool.wait()
        db.register_db_pool(pool)
        thread = db.PoolMetricsThread(interval=0.01, collector=collector)
        assert thread.daemon
        thread.start()
        with pool.connection():
            assert poll(lambda: gauges(collector)["active"] == 1)
        assert poll(lambda: gauges(collector)["active"] == 0)
        started = time.monotonic()
        thread.stop(timeout=5)
        assert not thread.is_alive()
        assert time.monotonic() - started < 1


def test_the_thread_refuses_an_async_pool(database: str) -> None:
    pool = AsyncConnectionPool(database, open=False)
    with pytest.raises(TypeError, match="metrics_collector"):
        db.PoolMetricsThread(pool=pool)  # type: ignore[arg-type]


def test_a_failing_collection_is_logged_and_the_next_one_runs(
    database: str, collector: MetricsCollector, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    class Flaky(ConnectionPool):  # type: ignore[type-arg]
        def get_stats(self) -> dict[str, int]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("boom")
            return super().get_stats()

    with Flaky(database, min_size=1, max_size=1) as pool:
        pool.wait()
        thread = db.PoolMetricsThread(interval=0.01, pool=pool, collector=collector)
        thread.start()
        assert poll(lambda: gauges(collector)["max"] == 1)
        thread.stop(timeout=5)
    assert any("collecting the pool's metrics failed" in r.getMessage() for r in caplog.records)


def test_the_default_collector_is_the_global_registry(database: str) -> None:
    from prometheus_client import REGISTRY

    with ConnectionPool(database, min_size=1, max_size=5) as pool:
        pool.wait()
        db.register_db_pool(pool)
        db.collect_pool_metrics()
        assert REGISTRY.get_sample_value("pg_monitoring_db_pool_max_connections") == 5


def readme_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Application metrics") :]
    return section[section.index("```python\n") + 10 : section.index("```\n")]


async def test_the_readme_example_runs(database: str) -> None:
    from prometheus_client import REGISTRY

    code = readme_example().replace('"postgresql://app@db/app"', repr(database))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    value = REGISTRY.get_sample_value
    success = {"operation": "GetUser", "status": "success"}
    before = value("pg_monitoring_graphql_requests_total", success) or 0
    await namespace["main"]()  # type: ignore[operator]
    assert value("pg_monitoring_graphql_requests_total", success) == before + 1
    assert value("pg_monitoring_db_pool_max_connections") == 10
    assert db.get_db_pool().closed
