"""pg_monitoring: error tracking, cache, traces and alerts inside PostgreSQL.

This package is the thin client: every call is one stored function in schema `monitoring`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._db.connection import Connector
from ._db.connection_async import AsyncConnector
from .cache import MISS, PostgresCache, SyncPostgresCache
from .errors import (
    CallTimeoutError,
    InstallError,
    InvalidArgumentError,
    NotFoundError,
    NotInstalledError,
    PermissionDeniedError,
    PgMonitoringError,
    UnavailableError,
)
from .monitoring import (
    AsyncErrorTracker,
    Captured,
    ErrorNotificationChannel,
    ErrorTracker,
    init_error_tracker,
)

try:
    __version__ = version("pg-monitoring")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "MISS",
    "AsyncConnector",
    "AsyncErrorTracker",
    "CallTimeoutError",
    "Captured",
    "Connector",
    "ErrorNotificationChannel",
    "ErrorTracker",
    "InstallError",
    "InvalidArgumentError",
    "NotFoundError",
    "NotInstalledError",
    "PermissionDeniedError",
    "PgMonitoringError",
    "PostgresCache",
    "SyncPostgresCache",
    "UnavailableError",
    "__version__",
    "init_error_tracker",
]
