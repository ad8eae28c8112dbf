"""Error tracking: Sentry's capture API over PostgreSQL.

`tracker = init_error_tracker(pool, environment="production")`, then
`await tracker.capture_exception(error, context={"user_id": user.id})` (no await for a sync
pool).

The rooms: tracker_async.py (AsyncErrorTracker; tracker.py, ErrorTracker, is generated from
it), tracker_base.py (what both share: settings, events, counting), _acompat.py (what they do
differently: a thread or a task), background.py (the queue), events.py (events from
exceptions), triage.py (resolve, ignore, assign...: the one place), notifications.py
(channels).
"""

from __future__ import annotations

from typing import Any, Literal, overload

import psycopg
from psycopg_pool import AsyncConnectionPool

from .._db.connection import Source
from .._db.connection_async import AsyncSource
from .notifications import (
    EmailNotifier,
    Notifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
)
from .tracker import ErrorTracker
from .tracker_async import AsyncErrorTracker
from .tracker_base import Captured, ErrorNotificationChannel

__all__ = [
    "AsyncErrorTracker",
    "Captured",
    "EmailNotifier",
    "ErrorNotificationChannel",
    "ErrorTracker",
    "Notifier",
    "PagerDutyNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "init_error_tracker",
]


@overload
def init_error_tracker(
    pool: AsyncConnectionPool | psycopg.AsyncConnection[Any],
    environment: str | None = None,
    *,
    async_: Literal[True] | None = None,
    **options: Any,
) -> AsyncErrorTracker: ...
@overload
def init_error_tracker(
    pool: str, environment: str | None = None, *, async_: Literal[True], **options: Any
) -> AsyncErrorTracker: ...
@overload
def init_error_tracker(
    pool: Source,
    environment: str | None = None,
    *,
    async_: Literal[False] | None = None,
    **options: Any,
) -> ErrorTracker: ...
def init_error_tracker(
    pool: Source | AsyncSource,
    environment: str | None = None,
    *,
    async_: bool | None = None,
    **options: Any,
) -> ErrorTracker | AsyncErrorTracker:
    """An error tracker over `pool`: AsyncErrorTracker for an AsyncConnectionPool or
    AsyncConnection, ErrorTracker for a ConnectionPool or Connection. For a DSN string it is
    ErrorTracker unless `async_=True`. `options` are the trackers' keyword arguments
    (service, release, notification_channels, background, ...)."""
    asynchronous = isinstance(pool, AsyncConnectionPool | psycopg.AsyncConnection)
    if isinstance(pool, str):
        asynchronous = bool(async_)
    elif async_ is not None and async_ != asynchronous:
        raise TypeError(
            f"async_={async_} does not fit a {type(pool).__name__}: the pool decides; "
            "async_ only chooses for a DSN"
        )
    if asynchronous:
        return AsyncErrorTracker(pool, environment=environment, **options)  # type: ignore[arg-type]
    return ErrorTracker(pool, environment=environment, **options)  # type: ignore[arg-type]
