"""What both cache clients share: options, hit and miss counts, and what an outage answers.

Hits and misses are counted here, in memory, and reported to monitoring.cache_stats() every
`report_interval` seconds by one extra call (and optionally to Prometheus): counting them in
SQL would turn every read into a write.
"""

from __future__ import annotations

import time
from typing import Any

from .._db.breaker import checked_timeout
from .._db.calls import RAISE, Call
from .._prometheus import family
from ..errors import UnavailableError
from .calls import UNAVAILABLE, record_stats

REPORT_INTERVAL = 10.0


def prometheus_counters(registry: Any) -> tuple[Any, Any]:
    """The hit and miss counters on `registry` (True: prometheus_client's global one), the
    ones pg_monitoring.monitoring.metrics calls cache_hits and cache_misses."""
    return (
        family(registry, "Counter", "pg_monitoring_cache_hits", "Cache hits"),
        family(registry, "Counter", "pg_monitoring_cache_misses", "Cache misses"),
    )


class HitCounter:
    """Hits and misses of one cache object, waiting to be reported, and their Prometheus twins."""

    def __init__(self, prometheus: Any, report_interval: float) -> None:
        self.hits = self.misses = 0
        self._pending_hits = self._pending_misses = 0
        self._interval = report_interval
        self._last_report = time.monotonic()
        self._counters: tuple[Any, Any] | None = None
        if prometheus:
            self._counters = prometheus_counters(prometheus)

    def count(self, hits: int, misses: int) -> None:
        self.hits += hits
        self.misses += misses
        self._pending_hits += hits
        self._pending_misses += misses
        if self._counters is not None:
            self._counters[0].inc(hits)
            self._counters[1].inc(misses)

    def report(self, force: bool = False) -> Call | None:
        """The call that reports what is pending, when it is time (or forced); else None."""
        if not (self._pending_hits or self._pending_misses):
            return None
        if not force and time.monotonic() - self._last_report < self._interval:
            return None
        call = record_stats(self._pending_hits, self._pending_misses)
        self._pending_hits = self._pending_misses = 0
        self._last_report = time.monotonic()
        return call

    def restore(self, report: Call) -> None:
        """Takes back the counts of a report the database did not take, for the next one."""
        self._pending_hits += report.params[0]
        self._pending_misses += report.params[1]


class CacheBase:
    """Options, counts, and what an outage answers, for PostgresCache and SyncPostgresCache."""

    def __init__(
        self,
        prometheus: Any,
        report_interval: float,
        timeout: float | None,
        outage_as_miss: bool,
    ) -> None:
        self._counter = HitCounter(prometheus, report_interval)
        self.timeout = checked_timeout(timeout)
        self.outage_as_miss = outage_as_miss

    @property
    def hits(self) -> int:
        return self._counter.hits

    @property
    def misses(self) -> int:
        return self._counter.misses

    def _outage_answer(self, call: Call, error: UnavailableError) -> Any:
        """The answer to `call` while the database is unreachable, or `error` raised."""
        if not self.outage_as_miss or call.outage_value is RAISE:
            raise error
        return call.outage_value

    def _counted_status(self, status: str) -> bool:
        """Counts get_or_set's lookup (not one the outage answered); True when it found a
        value to return."""
        found = status in ("hit", "stale")
        if status != UNAVAILABLE:
            self._counter.count(found, not found)
        return found

    def _due_report(self, started: float) -> tuple[Call, float | None] | None:
        """The report of the pending counts when one is due, with what is left for it of the
        bound of the call that started at `started`; None when none is due, or when too
        little is left (the next call reports)."""
        left = None
        if self.timeout is not None:
            left = self.timeout - (time.monotonic() - started)
            if left < self.timeout / 2:
                return None
        report = self._counter.report()
        return None if report is None else (report, left)
