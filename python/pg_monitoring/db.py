"""The application's connection pool, and its Prometheus gauges.

    from pg_monitoring.db import register_db_pool, metrics_collector

    register_db_pool(pool)                   # an AsyncConnectionPool or a ConnectionPool
    task = asyncio.create_task(metrics_collector())    # every 15 s, until cancelled
    # a sync application: PoolMetricsThread().start(), and .stop() at shutdown

Each collection reads `pool.get_stats()` (psycopg_pool's counters, read without a lock and
without a connection: it never waits on a busy pool) into
`pg_monitoring_db_pool_connections{state}` (active: lent out, idle: in the pool, waiting:
requests queued for one) and `pg_monitoring_db_pool_max_connections`. The gauges have no
pool label: they describe the one pool the application registered (or the one passed).

It logs the design document's warning, "Database pool highly utilized", when more than 90%
of `max_size` is lent out at two collections in a row, or requests wait for a connection; at
most once per `WARNING_INTERVAL` seconds per pool. (psycopg_pool counts connections being
opened in `pool_size`: one collection just after the pool opened sees them lent out.) The
document divides `pool_size` (every connection the pool holds, idle ones too) by `max_size`,
which reads 100% for any pool opened with `min_size == max_size`, psycopg_pool's default,
however idle; the lent-out share is the saturation the warning is about.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from .errors import PgMonitoringError

__all__ = [
    "DEFAULT_INTERVAL",
    "SATURATION_PCT",
    "WARNING_INTERVAL",
    "NoPoolRegisteredError",
    "PoolMetricsThread",
    "PoolStats",
    "collect_pool_metrics",
    "get_db_pool",
    "metrics_collector",
    "register_db_pool",
]

Pool = ConnectionPool[Any] | AsyncConnectionPool[Any]
PoolStats = dict[str, int]

DEFAULT_INTERVAL = 15.0
SATURATION_PCT = 90.0
# the saturation warning, at most this often per pool: a saturated pool stays so for minutes
WARNING_INTERVAL = 300.0

logger = logging.getLogger("pg_monitoring.db")

_pool: Pool | None = None


@dataclass
class _Watch:
    """What the saturation warning remembers of a pool."""

    saturated: bool = False  # at the last collection
    warned: float | None = None  # time.monotonic() of the last warning


_watches: weakref.WeakKeyDictionary[Any, _Watch] = weakref.WeakKeyDictionary()
_warning_lock = threading.Lock()


class NoPoolRegisteredError(PgMonitoringError, LookupError):
    """get_db_pool() was called before register_db_pool()."""


def register_db_pool(pool: Pool) -> Pool:
    """Makes `pool` the one get_db_pool() returns (replacing any registered before);
    returns it."""
    if not isinstance(pool, ConnectionPool | AsyncConnectionPool):
        raise TypeError(
            f"register_db_pool takes a psycopg_pool ConnectionPool or AsyncConnectionPool, "
            f"not {type(pool).__name__}"
        )
    global _pool
    _pool = pool
    return pool


def get_db_pool() -> Pool:
    """The pool the application registered with register_db_pool()."""
    if _pool is None:
        raise NoPoolRegisteredError(
            "no database pool registered: call pg_monitoring.db.register_db_pool(pool) "
            "when the application opens it"
        )
    return _pool


def collect_pool_metrics(pool: Pool | None = None, collector: Any = None) -> PoolStats:
    """Sets the pool gauges of `collector` (a MetricsCollector; default: the global
    registry's) from `pool` (default: get_db_pool()); logs the saturation warning when due.
    Returns the stats read. Never blocks: get_stats() reads counters only."""
    collector = _collector(collector)
    pool = get_db_pool() if pool is None else pool
    stats = pool.get_stats()
    size, available = stats["pool_size"], stats["pool_available"]
    max_size = stats["pool_max"]
    waiting = stats.get("requests_waiting", 0)
    # psycopg_pool counts a closed (or not yet opened) pool's min_size in pool_size
    active = 0 if pool.closed else max(size - available, 0)
    gauges = collector.db_pool_connections
    gauges.labels(state="active").set(active)
    gauges.labels(state="idle").set(available)
    gauges.labels(state="waiting").set(waiting)
    collector.db_pool_max_connections.set(max_size)

    utilization = active / max_size * 100 if max_size else 0.0
    if _warning_due(pool, utilization > SATURATION_PCT, waiting > 0):
        logger.warning(
            "Database pool highly utilized",
            extra={
                "pool_size": size,
                "max_size": max_size,
                "utilization_pct": utilization,
                "active": active,
                "waiting": waiting,
            },
        )
    return stats


def _collector(collector: Any) -> Any:
    if collector is not None:
        return collector
    from .monitoring.metrics import MetricsCollector

    return MetricsCollector()


def _warning_due(pool: Pool, saturated: bool, waiting: bool) -> bool:
    """Whether to warn now: requests are waiting, or the pool was saturated at this
    collection and the one before (connections still being opened count as lent out, so a
    pool just opened looks saturated once); and no warning for it in WARNING_INTERVAL."""
    now = time.monotonic()
    with _warning_lock:
        watch = _watches.setdefault(pool, _Watch())
        sustained = saturated and watch.saturated
        watch.saturated = saturated
        if not (waiting or sustained):
            return False
        if watch.warned is not None and now - watch.warned < WARNING_INTERVAL:
            return False
        watch.warned = now
        return True


def _collect_logged(pool: Pool, collector: Any) -> None:
    # a collection that fails (a bug, a pool replaced by something odd) is logged, and the
    # next one tries again: metrics must never take the application down
    try:
        collect_pool_metrics(pool, collector)
    except Exception:
        logger.exception("pg_monitoring: collecting the pool's metrics failed")


async def metrics_collector(
    interval: float = DEFAULT_INTERVAL, pool: Pool | None = None, collector: Any = None
) -> None:
    """Collects the pool's metrics every `interval` seconds until cancelled, as the design
    document's loop: `asyncio.create_task(metrics_collector())`, `task.cancel()` at
    shutdown. The pool (default: get_db_pool(), looked up once, now) may be sync or async."""
    pool = get_db_pool() if pool is None else pool
    collector = _collector(collector)
    while True:
        _collect_logged(pool, collector)
        await asyncio.sleep(interval)


class PoolMetricsThread(threading.Thread):
    """metrics_collector for applications without an event loop: a daemon thread collecting
    every `interval` seconds from `start()` until `stop()`. For a sync ConnectionPool (an
    AsyncConnectionPool belongs to its event loop: use metrics_collector there)."""

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        pool: ConnectionPool[Any] | None = None,
        collector: Any = None,
    ) -> None:
        super().__init__(name="pg_monitoring-pool-metrics", daemon=True)
        self.pool = get_db_pool() if pool is None else pool
        if not isinstance(self.pool, ConnectionPool):
            raise TypeError(
                "PoolMetricsThread reads a sync ConnectionPool; for an AsyncConnectionPool "
                "run metrics_collector() as a task of its event loop"
            )
        self.interval = interval
        self.collector = _collector(collector)
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            _collect_logged(self.pool, self.collector)
            self._stopping.wait(self.interval)

    def stop(self, timeout: float | None = None) -> None:
        """Stops collecting and waits for the thread (at most `timeout` seconds)."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)
