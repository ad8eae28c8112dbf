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

from ..cache.redis import Redis, from_url
from .exceptions import ConnectionError, DataError, RedisError, ResponseError, TimeoutError

__all__ = [
    "ConnectionError",
    "DataError",
    "Redis",
    "RedisError",
    "ResponseError",
    "TimeoutError",
    "from_url",
]
