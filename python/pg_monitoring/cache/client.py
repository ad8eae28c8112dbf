# WARNING: generated from client_async.py by tools/async_to_sync.py; do not edit.
"""The cache client, `SyncPostgresCache`: every method is one call of one stored function.

`source` is a psycopg_pool.ConnectionPool, a psycopg.Connection or a DSN. The
calls are built in calls.py, the counting and the outage answers are in base.py.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._db.breaker import DEFAULT_TIMEOUT
from .._db.calls import Call
from .._db.connection import Connector, Source
from ..errors import UnavailableError
from . import calls
from .base import REPORT_INTERVAL, CacheBase
from .values import TTL


class SyncPostgresCache(CacheBase):
    """The cache over `monitoring.cache_*`, for a psycopg_pool.ConnectionPool, a
    psycopg.Connection or a DSN.

    `prometheus=True` (or a CollectorRegistry) also counts hits and misses there.
    Each call holds its caller at most `timeout` seconds (None: no bound); while the
    database is unreachable calls raise UnavailableError at once, or, with
    `outage_as_miss=True`, reads answer as misses and SETs as not stored (deletes, incr and
    stats still raise).
    """

    def __init__(
        self,
        source: Source,
        *,
        prometheus: Any = False,
        report_interval: float = REPORT_INTERVAL,
        timeout: float | None = DEFAULT_TIMEOUT,
        outage_as_miss: bool = False,
    ) -> None:
        super().__init__(prometheus, report_interval, timeout, outage_as_miss)
        self._connector = Connector(source, name="cache")

    def _run(self, call: Call) -> Any:
        started = time.monotonic()
        try:
            result = self._connector.run(call, self.timeout)
        except UnavailableError as error:
            return self._outage_answer(call, error)
        if (due := self._due_report(started)) is not None:
            with contextlib.suppress(UnavailableError):  # reported with a later call
                self._report(*due)
        return result

    def _report(self, report: Call, timeout: float | None) -> None:
        try:
            self._connector.run(report, timeout)
        except UnavailableError:
            self._counter.restore(report)
            raise

    def get(self, key: str, default: Any = None) -> Any:
        """The value, or `default` on a miss (pass MISS to tell a miss from a cached None)."""
        return self._run(calls.counted_get(self._counter.count, key, default))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """{key: value} for the keys that are cached; misses are left out."""
        return self._run(calls.counted_get_many(self._counter.count, list(keys)))

    def set(
        self,
        key: str,
        value: Any,
        ttl: TTL = None,
        *,
        nx: bool = False,
        xx: bool = False,
        tags: Iterable[str] | None = None,
    ) -> bool:
        """Stores a JSON value (bytes stay bytes) for `ttl` seconds (None: no expiry).

        nx: only when absent; xx: only when present. True when stored. A value JSON can not
        hold (NaN, a datetime, a set...) raises, before any call, naming the key.
        """
        return self._run(calls.store(key, value, ttl, nx, xx, tags))

    def set_many(self, mapping: Mapping[str, Any], ttl: TTL = None) -> int:
        """Stores every JSON value of `mapping` in one round trip; returns how many."""
        return self._run(calls.set_many(mapping, ttl))

    def delete(self, key: str) -> bool:
        return self._run(calls.delete(key))

    def delete_pattern(self, pattern: str) -> int:
        """Deletes the keys matching a Redis glob (`user:*`); returns how many."""
        return self._run(calls.delete_pattern(pattern))

    def delete_tag(self, tag: str) -> int:
        return self._run(calls.delete_tag(tag))

    def exists(self, key: str) -> bool:
        return self._run(calls.exists(key))

    def expire(self, key: str, ttl: TTL) -> bool:
        """New TTL for a cached key (None: none; 0 or less deletes it); False if not cached."""
        return self._run(calls.expire(key, ttl))

    def ttl(self, key: str) -> int:
        """Seconds to expiry, rounded; -1 without expiry, -2 when not cached (Redis TTL)."""
        return self._run(calls.ttl(key))

    def incr(self, key: str, amount: int = 1) -> int:
        """Adds `amount` atomically, from 0 when absent; keeps the TTL."""
        return self._run(calls.incr(key, amount))

    def get_or_set(
        self,
        key: str,
        compute: Callable[[], Any],
        ttl: TTL = None,
        *,
        lock_timeout: float = 30.0,
        wait: float = 5.0,
    ) -> Any:
        """The cached value, or `compute()` stored with `ttl`, computed by one caller at a
        time: the others wait up to `wait` seconds, or get the expired value meanwhile."""
        status, value = self._run(calls.get_or_lock(key, lock_timeout, wait))
        if self._counted_status(status):
            return value
        try:
            value = compute()
            store = calls.store(key, value, ttl, False, False, None)  # may refuse the value
        except BaseException:
            if status == "compute":
                with contextlib.suppress(UnavailableError):  # the lock expires anyway
                    self._run(calls.unlock(key))
            raise
        self._run(store)
        return value

    def stats(self) -> dict[str, Any]:
        """Entries, expired rows, bytes, reported hits and misses, evictions, bounds."""
        self.report_stats()
        return self._run(calls.STATS)

    def report_stats(self) -> None:
        """Reports the hits and misses counted since the last report now."""
        if (report := self._counter.report(force=True)) is not None:
            self._report(report, self.timeout)

    def close(self) -> None:
        """Reports pending counts (unless the database is unreachable); closes the pool made
        from a DSN (a caller's pool stays)."""
        with contextlib.suppress(UnavailableError):
            self.report_stats()
        self._connector.close()
