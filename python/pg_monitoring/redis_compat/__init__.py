"""A redis-py shaped client over the PostgreSQL cache, for migrating off Redis in one line.

```python
import pg_monitoring.redis_compat as redis            # was: import redis
r = redis.from_url("postgresql://app@db/app")         # a DSN or a psycopg_pool.ConnectionPool
r.set("key", "value", ex=3600)
r.get("key")                                          # b'value'
```

`pg_monitoring.redis_compat.asyncio` is the twin of `redis.asyncio`. The commands are those
a cache uses: get, set (ex, px, nx, xx), delete, exists, expire, ttl, incr, incrby, mget,
mset, keys, scan_iter, flushdb (needs monitoring_admin). Values are stored as raw bytes;
replies and errors are redis-py's (exceptions in `.exceptions`). A command holds its caller
at most `timeout` seconds (0.5; TimeoutError past it), and while the database is away
commands raise ConnectionError at once, as redis-py does when Redis is down (see breaker.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .._calls import Call, run
from ..breaker import DEFAULT_TIMEOUT, checked_timeout
from ..connection import Connector, Source
from ..errors import PgMonitoringError
from . import _commands as commands
from .exceptions import ConnectionError, DataError, RedisError, ResponseError, TimeoutError


class Redis:
    """The sync facade; see the module docstring."""

    def __init__(
        self,
        source: Source,
        *,
        decode_responses: bool = False,
        encoding: str = "utf-8",
        encoding_errors: str = "strict",
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self._connector = Connector(source, name="redis_compat")
        self._codec = commands.Codec(decode_responses, encoding, encoding_errors)
        self.timeout = checked_timeout(timeout)

    def _run(self, command: str, call: Call) -> Any:
        try:
            return run(self._connector, call, self.timeout)
        except PgMonitoringError as error:
            raise commands.translate(error, command) from error

    def get(self, name: Any) -> Any:
        return self._run("get", commands.get(self._codec, name))

    def set(
        self,
        name: Any,
        value: Any,
        ex: Any = None,
        px: Any = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool | None:
        return self._run("set", commands.set_(self._codec, name, value, ex, px, nx, xx))

    def delete(self, *names: Any) -> int:
        return self._run("del", commands.delete(self._codec, names))

    def exists(self, *names: Any) -> int:
        return self._run("exists", commands.exists(self._codec, names))

    def expire(self, name: Any, time: Any) -> bool:
        return self._run("expire", commands.expire(self._codec, name, time))

    def ttl(self, name: Any) -> int:
        return self._run("ttl", commands.ttl(self._codec, name))

    def incrby(self, name: Any, amount: Any = 1) -> int:
        return self._run("incrby", commands.incrby(self._codec, name, amount))

    incr = incrby

    def mget(self, keys: Any, *args: Any) -> list[Any]:
        return self._run("mget", commands.mget(self._codec, keys, args))

    def mset(self, mapping: Mapping[Any, Any]) -> bool:
        return self._run("mset", commands.mset(self._codec, mapping))

    def keys(self, pattern: Any = "*") -> list[Any]:
        found = self._run("keys", commands.keys(self._codec, pattern))
        return [self._codec.reply(key) for key in found]

    def scan_iter(self, match: Any = None, count: int | None = None) -> Iterator[Any]:
        """Every key matching `match`, fetched `count` (default 100) at a time."""
        after = None
        while page := self._run("scan", commands.scan_page(self._codec, match, after, count)):
            yield from (self._codec.reply(key) for key in page)
            after = page[-1]

    def flushdb(self) -> bool:
        return self._run("flushdb", commands.flushdb(self._codec))

    def close(self) -> None:
        self._connector.close()

    def __enter__(self) -> Redis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def from_url(url: Source, **kwargs: Any) -> Redis:
    """A `Redis` on a PostgreSQL DSN (not a redis:// URL), a pool or a connection."""
    return Redis(url, **kwargs)


__all__ = [
    "ConnectionError",
    "DataError",
    "Redis",
    "RedisError",
    "ResponseError",
    "TimeoutError",
    "from_url",
]
