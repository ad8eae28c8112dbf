"""The circuit breaker and bounded calls, at the path they had before `_db/` (see
_db/breaker.py)."""

from __future__ import annotations

from ._db.breaker import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    DEFAULT_TIMEOUT,
    Attempt,
    Breaker,
    Watchdog,
    checked_timeout,
)

__all__ = [
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "DEFAULT_TIMEOUT",
    "Attempt",
    "Breaker",
    "Watchdog",
    "checked_timeout",
]
