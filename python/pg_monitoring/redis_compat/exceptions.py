"""redis-py's exception names, so that migrated `except` clauses keep their meaning.

They are pg_monitoring's own classes (redis need not be installed): replace
`from redis.exceptions import ResponseError` with
`from pg_monitoring.redis_compat.exceptions import ResponseError`. They live in
cache/redis_exceptions.py.
"""

from __future__ import annotations

from ..cache.redis_exceptions import (
    ConnectionError,
    DataError,
    RedisError,
    ResponseError,
    TimeoutError,
)

__all__ = ["ConnectionError", "DataError", "RedisError", "ResponseError", "TimeoutError"]
