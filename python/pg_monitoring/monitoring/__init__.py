"""Error tracking: Sentry's capture API over PostgreSQL.

`tracker = init_error_tracker(pool, environment="production")`, then
`await tracker.capture_exception(error, context={"user_id": user.id})` (no await for a sync
pool). See `tracker.py`.
"""

from __future__ import annotations

from .notifications import (
    EmailNotifier,
    Notifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
)
from .tracker import (
    AsyncErrorTracker,
    Captured,
    ErrorNotificationChannel,
    ErrorTracker,
    init_error_tracker,
)

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
