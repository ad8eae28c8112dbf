# WARNING: generated from redis_async.py by tools/async_to_sync.py; do not edit.
"""The Redis facade, `Redis`: redis-py's methods over the cache, each one stored-function call.

Shaped like `redis.asyncio.Redis` (awaited) and, generated into redis.py, like
`redis.Redis`. The commands and their encoding are in redis_commands.py; the module users
import is `pg_monitoring.redis_compat` (or `.asyncio`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .._db.breaker import DEFAULT_TIMEOUT, checked_timeout
from .._db.calls import Call
from .._db.connection import Connector, Source
from ..errors import PgMonitoringError
from . import redis_commands as commands


class Redis:
    """The facade; see `pg_monitoring.redis_compat`."""

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
            return self._connector.run(call, self.timeout)
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
            for key in page:
                yield self._codec.reply(key)
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
