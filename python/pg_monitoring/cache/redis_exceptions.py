"""redis-py's exception names, so that migrated `except` clauses keep their meaning.

They are pg_monitoring's own classes (redis need not be installed): replace
`from redis.exceptions import ResponseError` with
`from pg_monitoring.redis_compat.exceptions import ResponseError`.
"""

from __future__ import annotations

from ..errors import PgMonitoringError


class RedisError(PgMonitoringError):
    """Base class, as redis.exceptions.RedisError."""


class ConnectionError(RedisError):
    """The database could not be reached or the connection broke; raised at once, without
    trying, while the client's circuit breaker is open after such a failure."""


class TimeoutError(RedisError):  # redis-py's name, shadowing the builtin
    """The command got no answer within the client's `timeout` and was abandoned."""


class ResponseError(RedisError):
    """The command failed, with Redis's message (e.g. INCR on a non-integer)."""


class DataError(RedisError):
    """The client refused the arguments before sending them, as redis-py does."""
