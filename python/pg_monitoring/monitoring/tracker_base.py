"""What both error trackers share (tracker_async.py and the generated tracker.py): settings,
building and encoding events, counting failures without raising, and the calls they make.
"""

from __future__ import annotations

import enum
import json
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NamedTuple

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from .._db.breaker import DEFAULT_TIMEOUT, checked_timeout
from .._db.calls import Call, first_row, first_value
from ..alerts import queries as alert_queries
from ..errors import UnavailableError
from . import triage
from .background import TaskBatcher, ThreadBatcher
from .events import Event, FrameOptions, exception_chain, new_event
from .notifications import Notifier, from_environment

logger = logging.getLogger("pg_monitoring")

try:
    SDK = {"name": "pg_monitoring.python", "version": version("pg-monitoring")}
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    SDK = {"name": "pg_monitoring.python", "version": "0+unknown"}

# How long issue management waits for a connection from a pool the tracker made from a DSN
# (captures wait at most their `timeout`). psycopg's default is 30 s; an error tracker whose
# database is down should give up sooner.
DEFAULT_CONNECT_TIMEOUT = 5.0
# How long one background batch may take: it holds no caller, but a server that hangs must
# not hold the queue forever.
BATCH_TIMEOUT = 10.0
# How long close() (and so the atexit hook) waits for queued events to be sent.
DEFAULT_CLOSE_TIMEOUT = 5.0
# At most one warning per kind (failed, dropped) in this many seconds; the counts keep all.
LOG_INTERVAL = 10.0

CAPTURE_EVENT = "SELECT event_id, issue_id FROM monitoring.capture_event(%s::text)"
CAPTURE_EVENTS = "SELECT event_id, issue_id FROM monitoring.capture_events(%s::text)"


class ErrorNotificationChannel(str, enum.Enum):
    """A kind of alert channel, configured from the delivery worker's environment.

    `notification_channels=[ErrorNotificationChannel.SLACK]` registers a channel named
    "slack" (unless one exists) whose fields the worker reads from environment variables
    (notifications.ENVIRONMENT: PG_MONITORING_SLACK_WEBHOOK_URL...). Pass a notifier
    (`SlackNotifier(webhook_url=...)`) instead to store the configuration.
    """

    EMAIL = "email"
    SLACK = "slack"
    WEBHOOK = "webhook"
    PAGERDUTY = "pagerduty"


class Captured(NamedTuple):
    """What a capture returns: the event's id, and its issue's id once it is stored (None
    while the event waits in the background queue)."""

    event_id: uuid.UUID
    issue_id: int | None


class TrackerBase:
    """What both trackers share: settings, building and encoding events, counting failures,
    and the calls they make."""

    def __init__(
        self,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        environment: str | None = None,
        service: str | None = None,
        release: str | None = None,
        server_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        notification_channels: Iterable[ErrorNotificationChannel | str | Notifier] | None = None,
        project_root: str | None = None,
        in_app_include: Iterable[str] = (),
        in_app_exclude: Iterable[str] = (),
        include_locals: bool = False,
    ) -> None:
        self.timeout = checked_timeout(timeout)
        self.environment = environment
        self.service = service
        self.release = release
        self.tags = dict(tags or {})
        self.notification_channels = tuple(
            channel if isinstance(channel, Notifier) else ErrorNotificationChannel(channel)
            for channel in notification_channels or ()
        )
        # Registered when the tracker can reach the database: a notifier as given, a bare
        # kind only when no channel of that name exists yet.
        self._unregistered: list[tuple[Notifier, bool]] = [
            (channel, True)
            if isinstance(channel, Notifier)
            else (from_environment(channel.value), False)
            for channel in self.notification_channels
        ]
        self.frame_options = FrameOptions.make(
            project_root, in_app_include, in_app_exclude, include_locals
        )
        self._defaults = {
            key: value
            for key, value in {
                "environment": environment,
                "service": service,
                "release": release,
                "server_name": socket.gethostname() if server_name is None else server_name or None,
                "sdk": SDK,
            }.items()
            if value is not None
        }
        self.failed_captures = 0
        self.dropped_events = 0
        self._counts = threading.Lock()
        self._logged_at: dict[str, float] = {}
        self._closed = False
        self._background = False
        self._batcher: ThreadBatcher | TaskBatcher | None = None
        self._own_pool: ConnectionPool | AsyncConnectionPool | None = None

    @property
    def background(self) -> bool:
        return self._background

    @property
    def queued_events(self) -> int:
        """Events waiting in the background queue, or in flight from it."""
        return len(self._batcher) if self._batcher is not None else 0

    # Events ----------------------------------------------------------------------------

    def exception_event(
        self,
        error: BaseException,
        *,
        level: str = "error",
        context: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        user: Mapping[str, Any] | None = None,
        fingerprint: Iterable[str] | str | None = None,
        transaction: str | None = None,
    ) -> Event:
        """The Sentry-shaped event `capture_exception` sends (useful to see what is sent)."""
        return self._event(
            level,
            {"exception": {"values": exception_chain(error, self.frame_options)}},
            context,
            tags,
            user,
            fingerprint,
            transaction,
        )

    def message_event(
        self,
        message: str,
        *,
        level: str = "info",
        context: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        user: Mapping[str, Any] | None = None,
        fingerprint: Iterable[str] | str | None = None,
        transaction: str | None = None,
    ) -> Event:
        """The Sentry-shaped event `capture_message` sends."""
        return self._event(
            level, {"message": message}, context, tags, user, fingerprint, transaction
        )

    def _event(
        self,
        level: str,
        body: Event,
        context: Mapping[str, Any] | None,
        tags: Mapping[str, str] | None,
        user: Mapping[str, Any] | None,
        fingerprint: Iterable[str] | str | None,
        transaction: str | None,
    ) -> Event:
        return new_event(
            level,
            self._defaults,
            **body,
            context=context,
            tags={**self.tags, **(tags or {})} or None,
            user=user,
            fingerprint=[fingerprint] if isinstance(fingerprint, str) else _list(fingerprint),
            transaction=transaction,
        )

    def _encode(self, event: Mapping[str, Any]) -> str:
        # ensure_ascii (the default) writes a lone surrogate as \udXXX, which the SQL
        # sanitises; raw, it would fail the encoding to UTF-8.
        return json.dumps(dict(event), default=str, allow_nan=False)

    def _prepare(
        self, build: Callable[..., Event], *args: Any, **kwargs: Any
    ) -> tuple[str, uuid.UUID] | None:
        """`build(*args, **kwargs)` encoded, with its event id; None (counted) on failure."""
        if self._closed:
            self._count_dropped(1, "the tracker is closed")
            return None
        try:
            event = build(*args, **kwargs)
            return self._encode(event), uuid.UUID(str(event["event_id"]))
        except Exception as error:
            self._count_failed(1, error)
            return None

    def _raw_event(self, event: Mapping[str, Any]) -> Event:
        raw = {"event_id": uuid.uuid4().hex, **self._defaults, **event}
        if raw.get("timestamp") is None:
            # A resent event is deduplicated by id and timestamp: it needs one of its own.
            raw["timestamp"] = time.time()
        return raw

    def _queued(self, payload: str, event_id: uuid.UUID) -> Captured | None:
        """Queues an event for the background worker; None (counted) when the queue is full."""
        if self._batcher is not None and self._batcher.put(payload):
            return Captured(event_id, None)
        self._count_dropped(1, "the background queue is full")
        return None

    def _goes_to_queue(self) -> bool:
        """Whether a capture joins the queue instead of calling the database: in background
        mode, and while events wait there to be sent again (the worker probes the database,
        not the application's request)."""
        return self._background or self.queued_events > 0

    def _unstored(
        self, payload: str, event_id: uuid.UUID, error: UnavailableError
    ) -> Captured | None:
        """A capture the database could not take: queued to be sent again, except on the
        application's connection, which the worker can not share."""
        if self._batcher is None:
            self._count_failed(1, error)
            return None
        return self._queued(payload, event_id)

    def _resend_each(self, payloads: list[str], error: BaseException) -> bool:
        """Whether a batch the database refused is worth resending event by event (else
        its one event is counted as failed)."""
        if self._closed:
            return False  # a batch close() gave up waiting for: counted as dropped
        if len(payloads) == 1:
            self._count_failed(1, error)
            return False
        logger.warning(
            "pg_monitoring: a batch of %d events failed (%s); sending them one by one",
            len(payloads),
            error,
        )
        return True

    def _count_failed(self, count: int, error: BaseException) -> None:
        with self._counts:
            self.failed_captures += count
            total = self.failed_captures
            quiet = self._quiet("failed")
        if not quiet:
            logger.warning(
                "pg_monitoring: could not store %d error event(s) (%d so far): %s",
                count,
                total,
                error,
            )

    def _count_dropped(self, count: int, why: str) -> None:
        with self._counts:
            self.dropped_events += count
            total = self.dropped_events
            quiet = self._quiet("dropped")
        if not quiet:
            logger.warning(
                "pg_monitoring: dropped %d error event(s) (%d so far): %s", count, total, why
            )

    def _quiet(self, kind: str) -> bool:
        """Whether a warning of this kind was logged less than LOG_INTERVAL ago: a database
        that is down, or a full queue, would otherwise write one line per request."""
        now = time.monotonic()
        last = self._logged_at.get(kind)
        if last is not None and now - last < LOG_INTERVAL:
            return True
        self._logged_at[kind] = now
        return False

    def _channel_call(
        self, channel: Notifier | ErrorNotificationChannel | str, replace: bool
    ) -> Call:
        """The call that registers `channel` (a bare kind: only if no channel of its name
        exists); it returns the channel's id."""
        if not isinstance(channel, Notifier):
            channel = from_environment(ErrorNotificationChannel(channel).value)
            replace = False
        return channel.call(replace=replace)

    def _rate_limit_call(
        self,
        fingerprint: str,
        notify_on_occurrence: Iterable[int],
        repeat_every: int | None,
        environment: str | None,
        service: str | None,
        channel: str | None,
    ) -> Call:
        """The call that sets an issue's occurrence alerts; it returns the rule's id."""
        issue = self._issue(fingerprint, environment, service)
        return Call(
            alert_queries.SET_OCCURRENCE_ALERTS,
            (
                issue.fingerprint,
                list(notify_on_occurrence),
                repeat_every,
                issue.environment,
                issue.service,
                channel,
            ),
            first_value,
        )

    def _registration_failed(self, error: BaseException) -> None:
        logger.warning(
            "pg_monitoring: could not register the notification channels (%s); a "
            "monitoring_admin can add them: pg-monitoring channels add",
            error,
        )

    def _issue(
        self, fingerprint: str, environment: str | None, service: str | None
    ) -> triage.Fingerprint:
        """The issue `fingerprint` names, within the tracker's environment and service
        unless others are given (the database's defaults when the tracker has none)."""
        return triage.Fingerprint(
            fingerprint,
            environment if environment is not None else self.environment,
            service if service is not None else self.service,
        )


def _list(items: Iterable[str] | None) -> list[str] | None:
    return None if items is None else list(items)


def capture_call(payload: str) -> Call:
    """One event stored; its row has the event's id and its issue's."""
    return Call(CAPTURE_EVENT, (payload,), first_row)


def capture_batch_call(payloads: list[str]) -> Call:
    """Events stored in one call, as a JSON array of the events' JSON."""
    return Call(CAPTURE_EVENTS, ("[" + ",".join(payloads) + "]",), first_row)


def exc_info_error(error: BaseException | None) -> BaseException | None:
    """`error`, or the exception being handled."""
    return error if error is not None else sys.exc_info()[1]
