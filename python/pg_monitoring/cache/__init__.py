"""The cache: `PostgresCache` (asyncio) and `SyncPostgresCache`, over monitoring.cache_*.

```python
cache = PostgresCache(pool)                       # psycopg_pool.AsyncConnectionPool, or a DSN
await cache.set("user:123", user_data, ttl=3600)
value = await cache.get("user:123")               # None on a miss; get(key, MISS) tells apart
await cache.delete_pattern("user:*")
```

Values are JSON (stored as jsonb) or bytes (stored raw); a cached None is JSON null, distinct
from a miss when you pass `default=MISS`. A value JSON can not hold (NaN, a datetime, a
Decimal, a set) is refused before any call, by an error naming its key and the conversion to
make. Every method is one call of one stored function, bounded by `timeout` seconds (0.5;
see _db/breaker.py). While the database is unreachable, calls raise UnavailableError at
once, or with `outage_as_miss=True` reads answer as misses and SETs as not stored.
Hits and misses are counted here, in memory, and reported to monitoring.cache_stats() every
`report_interval` seconds by one extra call (and optionally to Prometheus).

The rooms: values.py (what an entry holds), calls.py (each call), base.py (counts and outage
answers), client_async.py (PostgresCache; client.py, SyncPostgresCache, is generated from it),
redis_async.py (the Redis facade; redis.py generated), redis_commands.py.
"""

from __future__ import annotations

from .client import SyncPostgresCache
from .client_async import PostgresCache
from .values import MISS, TTL

__all__ = ["MISS", "TTL", "PostgresCache", "SyncPostgresCache"]
