"""The cache, at the path the design document gives it (it lives in `cache/`)."""

from __future__ import annotations

from .cache import MISS, TTL, PostgresCache, SyncPostgresCache
from .cache.base import REPORT_INTERVAL
from .cache.calls import UNAVAILABLE

__all__ = ["MISS", "REPORT_INTERVAL", "TTL", "UNAVAILABLE", "PostgresCache", "SyncPostgresCache"]
