"""The asyncio twin of `pg_monitoring.redis_compat`, shaped like `redis.asyncio`.

```python
import pg_monitoring.redis_compat.asyncio as redis    # was: import redis.asyncio as redis
redis_client = redis.from_url("postgresql://app@db/app")
await redis_client.set("key", "value", ex=3600)
value = await redis_client.get("key")
```
"""

from __future__ import annotations

from ..cache.redis_async import Redis, from_url
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
