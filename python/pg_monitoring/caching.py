"""The cache: `PostgresCache` (asyncio) and `SyncPostgresCache`, over monitoring.cache_*.

```python
cache = PostgresCache(pool)                       # psycopg_pool.AsyncConnectionPool, or a DSN
await cache.set("user:123", user_data, ttl=3600)
value = await cache.get("user:123")               # None on a miss; get(key, MISS) tells apart
await cache.delete_pattern("user:*")
```

Values are JSON (stored as jsonb) or bytes (stored raw); a cached None is JSON null, distinct
from a miss when you pass `default=MISS`. Every method is one call of one stored function,
bounded by `timeout` seconds (0.5; see breaker.py). While the database is unreachable, calls
raise UnavailableError at once, or with `outage_as_miss=True` reads answer as misses and SETs
as not stored.
Hits and misses are counted here, in memory, and reported to monitoring.cache_stats() every
`report_interval` seconds by one extra call (and optionally to Prometheus): counting them in
SQL would turn every read into a write.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Final, TypeAlias

from ._calls import BULK_TIME, RAISE, Call, Rows, only_value, run, run_async
from .breaker import DEFAULT_TIMEOUT, checked_timeout
from .connection import AsyncConnector, AsyncSource, Connector, Source
from .errors import InvalidArgumentError, UnavailableError

TTL: TypeAlias = float | int | timedelta | None


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()
"""Pass as `default` to `get` to tell a miss from a cached None."""

REPORT_INTERVAL = 10.0
# get_or_set's status while the database is unreachable (outage_as_miss): compute, store
# nothing.
UNAVAILABLE = "unavailable"


def _seconds(ttl: TTL) -> float | None:
    return ttl.total_seconds() if isinstance(ttl, timedelta) else ttl


def _value(row: dict[str, Any]) -> Any:
    return row["value_bytes"] if row["value_bytes"] is not None else row["value"]


def _row_value(row: tuple[Any, Any] | None) -> Any:
    """A (value, value_bytes) row as the cached value; MISS when there is no row."""
    if row is None:
        return MISS
    return row[1] if row[1] is not None else row[0]


# How to turn what JSON can not hold into what it can, by type name; bytes hold anything.
_CONVERSIONS = {
    "datetime": ".isoformat()",
    "date": ".isoformat()",
    "time": ".isoformat()",
    "timedelta": ".total_seconds()",
    "Decimal": "str() or float()",
    "UUID": "str()",
    "set": "list() or sorted()",
    "frozenset": "list() or sorted()",
    "bytes": "base64 or .hex() (bytes are stored raw only as the whole value)",
    "bytearray": "base64 or .hex() (bytes are stored raw only as the whole value)",
}


class _NotJson(TypeError):
    def __init__(self, value: object) -> None:
        super().__init__(type(value).__name__)


def _refuse(value: object) -> Any:
    raise _NotJson(value)


def _json(key: str, value: Any) -> str:
    """`value` as the JSON text of a cache entry, or an error naming the key and the way out.

    The values are JSON so that SQL can read them; psycopg's own dumper would pass NaN on
    for the database to refuse, and leave other types to a bare TypeError.
    """
    try:
        return json.dumps(value, allow_nan=False, default=_refuse)
    except _NotJson as error:
        kind = str(error)
        conversion = _CONVERSIONS.get(kind, "str(), or a dict or list of JSON values")
        raise TypeError(
            f"the cache value for {key!r} is not JSON: a {kind} is not a JSON type. "
            f"Convert it first ({conversion}), or store bytes you encode yourself "
            "(pickle.dumps(value), for one)"
        ) from None
    except ValueError as error:
        if "ircular" in str(error):
            raise InvalidArgumentError(
                f"the cache value for {key!r} is not JSON: it contains itself"
            ) from None
        raise InvalidArgumentError(
            f"the cache value for {key!r} is not JSON: JSON has no NaN or Infinity, and the "
            "value holds a float that is one. Store None or a string in its place"
        ) from None
    except TypeError as error:  # a dict key JSON can not name
        raise TypeError(f"the cache value for {key!r} is not JSON: {error}") from None


def _json_object(mapping: Mapping[str, Any]) -> str:
    """set_many's mapping as one JSON object; a bad value's error names its key."""
    try:
        return json.dumps(dict(mapping), allow_nan=False, default=_refuse)
    except (TypeError, ValueError):
        for key, value in mapping.items():
            _json(key, value)
        raise


def _store(key: str, value: Any, ttl: TTL, nx: bool, xx: bool, tags: Iterable[str] | None) -> Call:
    raw = isinstance(value, (bytes, bytearray, memoryview))
    function = "cache_set_bytes" if raw else "cache_set"
    cast = "bytea" if raw else "jsonb"
    return Call(
        f"SELECT monitoring.{function}(%s::text, %s::{cast}, %s::float8, %s, %s, %s::text[])",
        (key, bytes(value) if raw else _json(key, value), _seconds(ttl), nx, xx, _list(tags)),
        only_value,
        one_row=True,
        outage_value=False,
    )


def _list(items: Iterable[str] | None) -> list[str] | None:
    return None if items is None else list(items)


def _get(key: str) -> Call:
    return Call(
        "SELECT value, value_bytes FROM monitoring.cache_get(%s::text)",
        (key,),
        _row_value,
        one_row=True,
    )


def _get_many(keys: Iterable[str]) -> Call:
    return Call(
        "SELECT key, value, value_bytes FROM monitoring.cache_get_many(%s::text[])",
        (list(keys),),
        lambda rows: {row["key"]: _value(row) for row in rows},
    )


def _value_call(
    query: str,
    *params: Any,
    read: Callable[[Any], Any] = lambda v: v,
    extra_time: float = 0.0,
    outage_value: Any = RAISE,
) -> Call:
    return Call(
        query,
        params,
        lambda row: read(only_value(row)),
        one_row=True,
        extra_time=extra_time,
        outage_value=outage_value,
    )


def _set_many(mapping: Mapping[str, Any], ttl: TTL) -> Call:
    return _value_call(
        "SELECT monitoring.cache_set_many(%s::jsonb, %s::float8)",
        _json_object(mapping),
        _seconds(ttl),
        outage_value=0,
    )


def _delete(key: str) -> Call:
    return _value_call("SELECT monitoring.cache_delete(VARIADIC %s::text[])", [key], read=bool)


def _delete_pattern(pattern: str) -> Call:
    return _value_call(
        "SELECT monitoring.cache_delete_pattern(%s::text)", pattern, extra_time=BULK_TIME
    )


def _delete_tag(tag: str) -> Call:
    return _value_call("SELECT monitoring.cache_delete_tag(%s::text)", tag, extra_time=BULK_TIME)


def _exists(key: str) -> Call:
    return _value_call(
        "SELECT monitoring.cache_exists(VARIADIC %s::text[])",
        [key],
        read=bool,
        outage_value=False,
    )


def _expire(key: str, ttl: TTL) -> Call:
    return _value_call("SELECT monitoring.cache_expire(%s::text, %s::float8)", key, _seconds(ttl))


def _ttl(key: str) -> Call:
    return _value_call("SELECT monitoring.cache_ttl(%s::text)", key, outage_value=-2)


def _incr(key: str, amount: int) -> Call:
    return _value_call("SELECT monitoring.cache_incr(%s::text, %s::int8)", key, amount)


def _get_or_lock(key: str, lock_timeout: float, wait: float) -> Call:
    return Call(
        "SELECT status, value, value_bytes "
        "FROM monitoring.cache_get_or_lock(%s::text, %s::float8, %s::float8)",
        (key, lock_timeout, wait),
        lambda rows: (rows[0]["status"], _value(rows[0])),
        extra_time=wait,  # it waits in the server, by design, for another caller's value
        outage_value=(UNAVAILABLE, None),
    )


def _unlock(key: str) -> Call:
    return _value_call("SELECT monitoring.cache_unlock(%s::text)", key)


_STATS = Call(
    "SELECT * FROM monitoring.cache_stats()", (), lambda rows: rows[0], extra_time=BULK_TIME
)


class _HitCounter:
    """Hits and misses of one cache object, waiting to be reported, and their Prometheus twins."""

    # A registry refuses a second counter of the same name: one pair per registry.
    _prometheus: ClassVar[dict[int, tuple[Any, Any]]] = {}

    def __init__(self, prometheus: Any, report_interval: float) -> None:
        self.hits = self.misses = 0
        self._pending_hits = self._pending_misses = 0
        self._interval = report_interval
        self._last_report = time.monotonic()
        self._counters: tuple[Any, Any] | None = None
        if prometheus:
            self._counters = self._prometheus_counters(prometheus)

    @classmethod
    def _prometheus_counters(cls, prometheus: Any) -> tuple[Any, Any]:
        from prometheus_client import REGISTRY, Counter

        registry = REGISTRY if prometheus is True else prometheus
        if id(registry) not in cls._prometheus:
            cls._prometheus[id(registry)] = (
                Counter("pg_monitoring_cache_hits", "Cache hits", registry=registry),
                Counter("pg_monitoring_cache_misses", "Cache misses", registry=registry),
            )
        return cls._prometheus[id(registry)]

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
        call = Call(
            "SELECT monitoring.cache_record_stats(%s::int8, %s::int8)",
            (self._pending_hits, self._pending_misses),
            lambda rows: None,
        )
        self._pending_hits = self._pending_misses = 0
        self._last_report = time.monotonic()
        return call

    def restore(self, report: Call) -> None:
        """Takes back the counts of a report the database did not take, for the next one."""
        self._pending_hits += report.params[0]
        self._pending_misses += report.params[1]


def _counted_get(counter: _HitCounter, call: Call, default: Any) -> Call:
    def read(row: Any) -> Any:
        value = call.read(row)
        counter.count(value is not MISS, value is MISS)
        return default if value is MISS else value

    return Call(call.query, call.params, read, call.one_row, outage_value=default)


def _counted_get_many(counter: _HitCounter, keys: list[str]) -> Call:
    call = _get_many(keys)

    def read(rows: Rows) -> Any:
        found = call.read(rows)
        counter.count(len(found), len(keys) - len(found))
        return found

    return Call(call.query, call.params, read, outage_value={})


class _Cache:
    """What both twins share: options, counts, and what an outage answers."""

    def __init__(
        self,
        prometheus: Any,
        report_interval: float,
        timeout: float | None,
        outage_as_miss: bool,
    ) -> None:
        self._counter = _HitCounter(prometheus, report_interval)
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


class PostgresCache(_Cache):
    """The cache, asyncio flavour: `await cache.get(key)`.

    `source` is a psycopg_pool.AsyncConnectionPool, a psycopg.AsyncConnection or a DSN.
    `prometheus=True` (or a CollectorRegistry) also counts hits and misses there.
    Each call holds its caller at most `timeout` seconds (None: no bound); while the
    database is unreachable calls raise UnavailableError at once, or, with
    `outage_as_miss=True`, reads answer as misses and SETs as not stored (deletes, incr and
    stats still raise).
    """

    def __init__(
        self,
        source: AsyncSource,
        *,
        prometheus: Any = False,
        report_interval: float = REPORT_INTERVAL,
        timeout: float | None = DEFAULT_TIMEOUT,
        outage_as_miss: bool = False,
    ) -> None:
        super().__init__(prometheus, report_interval, timeout, outage_as_miss)
        self._connector = AsyncConnector(source, name="cache")

    async def _run(self, call: Call) -> Any:
        started = time.monotonic()
        try:
            result = await run_async(self._connector, call, self.timeout)
        except UnavailableError as error:
            return self._outage_answer(call, error)
        if (due := self._due_report(started)) is not None:
            with contextlib.suppress(UnavailableError):  # reported with a later call
                await self._report(*due)
        return result

    async def _report(self, report: Call, timeout: float | None) -> None:
        try:
            await run_async(self._connector, report, timeout)
        except UnavailableError:
            self._counter.restore(report)
            raise

    async def get(self, key: str, default: Any = None) -> Any:
        """The value, or `default` on a miss (pass MISS to tell a miss from a cached None)."""
        return await self._run(_counted_get(self._counter, _get(key), default))

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """{key: value} for the keys that are cached; misses are left out."""
        return await self._run(_counted_get_many(self._counter, list(keys)))

    async def set(
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

        nx: only when absent; xx: only when present. True when stored.
        """
        return await self._run(_store(key, value, ttl, nx, xx, tags))

    async def set_many(self, mapping: Mapping[str, Any], ttl: TTL = None) -> int:
        """Stores every JSON value of `mapping` in one round trip; returns how many."""
        return await self._run(_set_many(mapping, ttl))

    async def delete(self, key: str) -> bool:
        return await self._run(_delete(key))

    async def delete_pattern(self, pattern: str) -> int:
        """Deletes the keys matching a Redis glob (`user:*`); returns how many."""
        return await self._run(_delete_pattern(pattern))

    async def delete_tag(self, tag: str) -> int:
        return await self._run(_delete_tag(tag))

    async def exists(self, key: str) -> bool:
        return await self._run(_exists(key))

    async def expire(self, key: str, ttl: TTL) -> bool:
        """New TTL for a cached key (None: none; 0 or less deletes it); False if not cached."""
        return await self._run(_expire(key, ttl))

    async def ttl(self, key: str) -> int:
        """Seconds to expiry, rounded; -1 without expiry, -2 when not cached (Redis TTL)."""
        return await self._run(_ttl(key))

    async def incr(self, key: str, amount: int = 1) -> int:
        """Adds `amount` atomically, from 0 when absent; keeps the TTL."""
        return await self._run(_incr(key, amount))

    async def get_or_set(
        self,
        key: str,
        compute: Callable[[], Awaitable[Any]],
        ttl: TTL = None,
        *,
        lock_timeout: float = 30.0,
        wait: float = 5.0,
    ) -> Any:
        """The cached value, or `await compute()` stored with `ttl`, computed by one caller
        at a time: the others wait up to `wait` seconds, or get the expired value meanwhile."""
        status, value = await self._run(_get_or_lock(key, lock_timeout, wait))
        if self._counted_status(status):
            return value
        try:
            value = await compute()
            store = _store(key, value, ttl, False, False, None)  # a value JSON can not hold
        except BaseException:
            if status == "compute":
                with contextlib.suppress(UnavailableError):  # the lock expires anyway
                    await self._run(_unlock(key))
            raise
        await self._run(store)
        return value

    async def stats(self) -> dict[str, Any]:
        """Entries, expired rows, bytes, reported hits and misses, evictions, bounds."""
        await self.report_stats()
        return await self._run(_STATS)

    async def report_stats(self) -> None:
        """Reports the hits and misses counted since the last report now."""
        if (report := self._counter.report(force=True)) is not None:
            await self._report(report, self.timeout)

    async def close(self) -> None:
        """Reports pending counts (unless the database is unreachable); closes the pool made
        from a DSN (a caller's pool stays)."""
        with contextlib.suppress(UnavailableError):
            await self.report_stats()
        await self._connector.close()


class SyncPostgresCache(_Cache):
    """The cache without asyncio: the same methods as `PostgresCache`, not awaited.

    `source` is a psycopg_pool.ConnectionPool, a psycopg.Connection or a DSN.
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
            result = run(self._connector, call, self.timeout)
        except UnavailableError as error:
            return self._outage_answer(call, error)
        if (due := self._due_report(started)) is not None:
            with contextlib.suppress(UnavailableError):  # reported with a later call
                self._report(*due)
        return result

    def _report(self, report: Call, timeout: float | None) -> None:
        try:
            run(self._connector, report, timeout)
        except UnavailableError:
            self._counter.restore(report)
            raise

    def get(self, key: str, default: Any = None) -> Any:
        return self._run(_counted_get(self._counter, _get(key), default))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return self._run(_counted_get_many(self._counter, list(keys)))

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
        return self._run(_store(key, value, ttl, nx, xx, tags))

    def set_many(self, mapping: Mapping[str, Any], ttl: TTL = None) -> int:
        return self._run(_set_many(mapping, ttl))

    def delete(self, key: str) -> bool:
        return self._run(_delete(key))

    def delete_pattern(self, pattern: str) -> int:
        return self._run(_delete_pattern(pattern))

    def delete_tag(self, tag: str) -> int:
        return self._run(_delete_tag(tag))

    def exists(self, key: str) -> bool:
        return self._run(_exists(key))

    def expire(self, key: str, ttl: TTL) -> bool:
        return self._run(_expire(key, ttl))

    def ttl(self, key: str) -> int:
        return self._run(_ttl(key))

    def incr(self, key: str, amount: int = 1) -> int:
        return self._run(_incr(key, amount))

    def get_or_set(
        self,
        key: str,
        compute: Callable[[], Any],
        ttl: TTL = None,
        *,
        lock_timeout: float = 30.0,
        wait: float = 5.0,
    ) -> Any:
        status, value = self._run(_get_or_lock(key, lock_timeout, wait))
        if self._counted_status(status):
            return value
        try:
            value = compute()
            store = _store(key, value, ttl, False, False, None)  # a value JSON can not hold
        except BaseException:
            if status == "compute":
                with contextlib.suppress(UnavailableError):  # the lock expires anyway
                    self._run(_unlock(key))
            raise
        self._run(store)
        return value

    def stats(self) -> dict[str, Any]:
        self.report_stats()
        return self._run(_STATS)

    def report_stats(self) -> None:
        if (report := self._counter.report(force=True)) is not None:
            self._report(report, self.timeout)

    def close(self) -> None:
        with contextlib.suppress(UnavailableError):
            self.report_stats()
        self._connector.close()
