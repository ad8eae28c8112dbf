"""The error tracker: Sentry's `capture_exception` API, stored by `monitoring.capture_event`.

    tracker = init_error_tracker(pool, environment="production")
    try:
        ...
    except Exception as error:
        tracker.capture_exception(error, context={"user_id": user.id})   # await it when async

Each capture is one call of `monitoring.capture_event` (or, in background mode, part of one
`monitoring.capture_events` batch) and never raises into the application: a failure is
logged on the `pg_monitoring` logger and counted in `failed_captures`. Nor does it hold the
application longer than `timeout` (0.5 s): while the database is unreachable, captures go to
the bounded background queue, which is sent again once a probe finds the database back (see
breaker.py). Issue management
(`resolve_error`, `ignore_error`, `assign_error`...) finds the issue by fingerprint and is one
call of the lifecycle function; those do raise, as any pg_monitoring call does.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
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
from typing import Any, Literal, NamedTuple, overload

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from .. import issues
from ..alerts import queries as alert_queries
from ..breaker import DEFAULT_TIMEOUT, checked_timeout
from ..connection import (
    OWN_POOL_MAX_SIZE,
    OWN_POOL_MIN_SIZE,
    AsyncConnector,
    AsyncSource,
    Connector,
    Source,
)
from ..errors import UnavailableError
from .background import DEFAULT_BATCH_SIZE, DEFAULT_MAX_QUEUE, TaskBatcher, ThreadBatcher
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
RESOLVE = """
    SELECT * FROM monitoring.resolve_issue(
        monitoring.issue_id(%s::text, %s::text, %s::text), %s::text, %s::boolean, %s::text
    )"""
IGNORE = """
    SELECT * FROM monitoring.ignore_issue(
        monitoring.issue_id(%s::text, %s::text, %s::text),
        %s::timestamptz, %s::bigint, %s::bigint, %s::text
    )"""
REOPEN = """
    SELECT * FROM monitoring.reopen_issue(
        monitoring.issue_id(%s::text, %s::text, %s::text), %s::text
    )"""
ASSIGN = """
    SELECT * FROM monitoring.assign_issue(
        monitoring.issue_id(%s::text, %s::text, %s::text), %s::text, %s::text
    )"""
UNASSIGN = """
    SELECT * FROM monitoring.unassign_issue(
        monitoring.issue_id(%s::text, %s::text, %s::text), %s::text
    )"""


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


class _Tracker:
    """What both twins share: settings, building events, counting failures."""

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
    ) -> tuple[str, tuple[Any, ...]]:
        if not isinstance(channel, Notifier):
            channel = from_environment(ErrorNotificationChannel(channel).value)
            replace = False
        call = channel.call(replace=replace)
        return call.query, call.params

    def _rate_limit_call(
        self,
        fingerprint: str,
        notify_on_occurrence: Iterable[int],
        repeat_every: int | None,
        environment: str | None,
        service: str | None,
        channel: str | None,
    ) -> tuple[str, tuple[Any, ...]]:
        fingerprint, environment, service = self._issue(fingerprint, environment, service)
        return alert_queries.SET_OCCURRENCE_ALERTS, (
            fingerprint,
            list(notify_on_occurrence),
            repeat_every,
            environment,
            service,
            channel,
        )

    def _registration_failed(self, error: BaseException) -> None:
        logger.warning(
            "pg_monitoring: could not register the notification channels (%s); a "
            "monitoring_admin can add them: pg-monitoring channels add",
            error,
        )

    def _issue(
        self, fingerprint: str, environment: str | None, service: str | None
    ) -> tuple[str, str | None, str | None]:
        return (
            fingerprint,
            environment if environment is not None else self.environment,
            service if service is not None else self.service,
        )


def _list(items: Iterable[str] | None) -> list[str] | None:
    return None if items is None else list(items)


def _json_array(payloads: list[str]) -> str:
    return "[" + ",".join(payloads) + "]"


def _exc_info_error(error: BaseException | None) -> BaseException | None:
    return error if error is not None else sys.exc_info()[1]


class ErrorTracker(_Tracker):
    """Captures errors into `monitoring.*` from synchronous code.

    `source` is a psycopg_pool.ConnectionPool, a psycopg.Connection or a DSN (the tracker
    then makes a small pool of its own; issue management waits at most `connect_timeout`
    seconds for one of its connections). Prefer a pool: on a connection, a capture joins
    whatever transaction the application has open there, and is lost when it rolls back.

    A capture holds its caller at most `timeout` seconds (None: no bound), the wait for a
    pooled connection included. When the database is unreachable, or does not answer in
    time, the event goes to the background queue and the capture returns
    `Captured(event_id, None)`; the queue's daemon thread sends it again, with backoff,
    until it is stored. With `background=True` every capture is queued (at most
    `max_queue`) and the thread stores them in batches of up to `batch_size`. `flush()`
    waits for the queue, `close()` (also run at exit) sends what is left. A full queue
    drops the event and counts it in `dropped_events`.

    The other options shape the events: `environment`, `service` and `release` go on every
    event (the database's settings fill in what is None), `tags` are merged under each
    call's, `server_name` defaults to the host's name ("" for none), `project_root`,
    `in_app_include` and `in_app_exclude` decide which frames are in-app, and
    `include_locals` adds each frame's local variables (repr'd, cut short).
    `notification_channels` (notifiers, or kinds read from the worker's environment) are
    registered as alert channels when the tracker is made; a failure (no monitoring_admin)
    is logged, not raised.
    """

    def __init__(
        self,
        source: Source,
        *,
        background: bool = False,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._own_pool: ConnectionPool | None = None
        if isinstance(source, str):
            source = self._own_pool = ConnectionPool(
                source,
                min_size=OWN_POOL_MIN_SIZE,
                max_size=OWN_POOL_MAX_SIZE,
                timeout=connect_timeout,
                open=False,
                name="pg_monitoring-errors",
            )
        if background and isinstance(source, psycopg.Connection):
            raise ValueError(
                "background mode needs a pool or a DSN: its thread can not share the "
                "application's connection"
            )
        self._connector = Connector(source, name="error tracker")
        self._background = background
        if not isinstance(source, psycopg.Connection):
            # Its thread starts with the first event queued, if any ever is; only then
            # does the tracker need closing at exit (and atexit keep it alive).
            self._batcher = ThreadBatcher(
                self._send_batch,
                max_queue=max_queue,
                batch_size=batch_size,
                retry_delay=self._connector.breaker.wait_time,
                on_start=lambda: atexit.register(self.close),
            )
        if self._unregistered:
            self._register_channels()

    def __enter__(self) -> ErrorTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Capturing -------------------------------------------------------------------------

    def capture_exception(
        self,
        error: BaseException | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        level: str = "error",
        tags: Mapping[str, str] | None = None,
        user: Mapping[str, Any] | None = None,
        fingerprint: Iterable[str] | str | None = None,
        transaction: str | None = None,
    ) -> Captured | None:
        """Stores `error` (default: the exception being handled) with its chain and frames.

        `context` lands in the event's `context` column; `fingerprint` (Sentry's list of
        strings, "{{ default }}" standing for the default) overrides the grouping. Returns
        None when nothing was captured: no error, or a failure (logged and counted).
        """
        error = _exc_info_error(error)
        if error is None:
            logger.debug("pg_monitoring: capture_exception without an exception")
            return None
        prepared = self._prepare(
            self.exception_event,
            error,
            level=level,
            context=context,
            tags=tags,
            user=user,
            fingerprint=fingerprint,
            transaction=transaction,
        )
        return self._store(prepared)

    def capture_message(
        self,
        message: str,
        *,
        level: str = "info",
        context: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        user: Mapping[str, Any] | None = None,
        fingerprint: Iterable[str] | str | None = None,
        transaction: str | None = None,
    ) -> Captured | None:
        """Stores a message, grouped by its normalised text; None on failure (counted)."""
        prepared = self._prepare(
            self.message_event,
            message,
            level=level,
            context=context,
            tags=tags,
            user=user,
            fingerprint=fingerprint,
            transaction=transaction,
        )
        return self._store(prepared)

    def capture_event(self, event: Mapping[str, Any]) -> Captured | None:
        """Stores an event already in Sentry's shape (the tracker's environment, service
        and release fill in what it lacks); None on failure (counted)."""
        return self._store(self._prepare(self._raw_event, event))

    def _store(self, prepared: tuple[str, uuid.UUID] | None) -> Captured | None:
        if prepared is None:
            return None
        payload, event_id = prepared
        if self._goes_to_queue():
            return self._queued(payload, event_id)
        try:
            row = self._call(CAPTURE_EVENT, (payload,), self.timeout)
        except UnavailableError as error:
            return self._unstored(payload, event_id, error)
        except Exception as error:
            self._count_failed(1, error)
            return None
        return Captured(row["event_id"], row["issue_id"])

    def _send_batch(self, payloads: list[str]) -> list[str]:
        """One capture_events call; when the database refuses it, each event on its own.
        Returns the events left unsent because the database was unreachable."""
        try:
            self._call(CAPTURE_EVENTS, (_json_array(payloads),), BATCH_TIMEOUT)
            return []
        except UnavailableError:
            return payloads
        except Exception as error:
            if not self._resend_each(payloads, error):
                return []
        for sent, payload in enumerate(payloads):
            try:
                self._call(CAPTURE_EVENT, (payload,), BATCH_TIMEOUT)
            except UnavailableError:
                return payloads[sent:]
            except Exception as error:
                self._count_failed(1, error)
        return []

    def _call(
        self, query: str, params: tuple[Any, ...], timeout: float | None = None
    ) -> dict[str, Any]:
        """The first row of one stored-function call, within `timeout` seconds."""
        if self._own_pool is not None:
            self._own_pool.open()  # opened on first use, not where the tracker is made
        return self._connector.fetch_all(query, params, timeout)[0]

    def _triage(self, query: str, params: tuple[Any, ...]) -> dict[str, Any]:
        """`_call` of an issue-lifecycle function; a refusal names the role it needs."""
        with issues.triage():
            return self._call(query, params)

    # Issues ----------------------------------------------------------------------------
    # The fingerprint names the issue within the tracker's environment and service unless
    # others are given (the database's defaults when the tracker has none).

    def resolve_error(
        self,
        fingerprint: str,
        *,
        in_release: str | None = None,
        in_next_release: bool = False,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Resolves the issue, now or in a release; returns its `monitoring.issues` row."""
        return self._triage(
            RESOLVE,
            (*self._issue(fingerprint, environment, service), in_release, in_next_release, actor),
        )

    def ignore_error(
        self,
        fingerprint: str,
        *,
        until: dt.datetime | None = None,
        until_events: int | None = None,
        until_users: int | None = None,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Ignores the issue, forever or until a time, N more events or N more users."""
        return self._triage(
            IGNORE,
            (
                *self._issue(fingerprint, environment, service),
                until,
                until_events,
                until_users,
                actor,
            ),
        )

    def reopen_error(
        self,
        fingerprint: str,
        *,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Sets a resolved or ignored issue back to unresolved."""
        return self._triage(REOPEN, (*self._issue(fingerprint, environment, service), actor))

    def assign_error(
        self,
        fingerprint: str,
        assignee: str,
        *,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Assigns the issue to `assignee` (any text: an email, a team)."""
        return self._triage(
            ASSIGN, (*self._issue(fingerprint, environment, service), assignee, actor)
        )

    def unassign_error(
        self,
        fingerprint: str,
        *,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Removes the issue's assignee."""
        return self._triage(UNASSIGN, (*self._issue(fingerprint, environment, service), actor))

    # Alerts ----------------------------------------------------------------------------

    def add_notification_channel(
        self, channel: Notifier | ErrorNotificationChannel | str, *, replace: bool = True
    ) -> int:
        """Registers an alert channel (`SlackNotifier(webhook_url=...)`, `EmailNotifier(...)`,
        `WebhookNotifier(...)`, `PagerDutyNotifier(...)`, or a bare kind read from the
        worker's environment) through `monitoring.add_channel`; returns its id. A channel of
        the same name is updated (`replace=False` keeps it). Needs monitoring_admin."""
        row = self._call(*self._channel_call(channel, replace))
        return int(next(iter(row.values())))

    def set_notification_rate_limit(
        self,
        fingerprint: str,
        notify_on_occurrence: Iterable[int],
        *,
        repeat_every: int | None = None,
        environment: str | None = None,
        service: str | None = None,
        channel: str | None = None,
    ) -> int:
        """Alerts about the issue `fingerprint` only when its event count reaches one of
        `notify_on_occurrence`, then every `repeat_every` events (default: the list's last
        step, so [1, 100, 200, 300] goes on with 400, 500...). These replace the other
        rules (new issue, regression) for that issue. They fire when the counts are folded
        (`pg-monitoring worker` folds every 5 s). Replaces the previous limit of the issue;
        returns the rule's id. Needs monitoring_admin."""
        row = self._call(
            *self._rate_limit_call(
                fingerprint, notify_on_occurrence, repeat_every, environment, service, channel
            )
        )
        return int(next(iter(row.values())))

    def _register_channels(self) -> None:
        pending, self._unregistered = self._unregistered, []
        try:
            for notifier, replace in pending:
                self._call(*self._channel_call(notifier, replace), self.timeout)
        except Exception as error:
            self._registration_failed(error)

    # Shutting down ---------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until the background queue is sent, trying the database at once should it
        be waiting out a backoff; False on timeout."""
        if self._batcher is None:
            return True
        self._connector.breaker.hurry()
        return self._batcher.flush(timeout)

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Sends what is queued (waiting at most `timeout`), then closes the pool the
        tracker made from a DSN. A caller's pool or connection stays open."""
        if self._closed:
            return
        self._closed = True
        if self._batcher is not None:
            atexit.unregister(self.close)
            self._connector.breaker.hurry()
            left = self._batcher.close(timeout)
            if left:
                self._count_dropped(left, f"not sent within {timeout} s of close")
        if self._own_pool is not None:
            self._own_pool.close()


class AsyncErrorTracker(_Tracker):
    """The asyncio twin of ErrorTracker: the same methods, as coroutines.

    `source` is a psycopg_pool.AsyncConnectionPool, a psycopg.AsyncConnection or a DSN. In
    background mode the sending task runs in the loop of the first capture; `await
    tracker.close()` at shutdown sends what is left (there is no atexit hook for a loop).
    """

    def __init__(
        self,
        source: AsyncSource,
        *,
        background: bool = False,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._own_pool: AsyncConnectionPool | None = None
        if isinstance(source, str):
            source = self._own_pool = AsyncConnectionPool(
                source,
                min_size=OWN_POOL_MIN_SIZE,
                max_size=OWN_POOL_MAX_SIZE,
                timeout=connect_timeout,
                open=False,
                name="pg_monitoring-errors",
            )
        if background and isinstance(source, psycopg.AsyncConnection):
            raise ValueError(
                "background mode needs a pool or a DSN: its task can not share the "
                "application's connection"
            )
        self._connector = AsyncConnector(source, name="error tracker")
        self._background = background
        if not isinstance(source, psycopg.AsyncConnection):
            # Its task starts with the first event queued, if any ever is.
            self._batcher = TaskBatcher(
                self._send_batch,
                max_queue=max_queue,
                batch_size=batch_size,
                retry_delay=self._connector.breaker.wait_time,
            )
        self._tasks: set[asyncio.Task[Any]] = set()
        if self._unregistered:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # no loop yet: the first call of the tracker registers them
            else:
                self._register_channels()

    async def __aenter__(self) -> AsyncErrorTracker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Capturing -------------------------------------------------------------------------

    async def capture_exception(
        self,
        error: BaseException | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        level: str = "error",
        tags: Mapping[str, str] | None = None,
        user: Mapping[str, Any] | None = None,
        fingerprint: Iterable[str] | str | None = None,
        transaction: str | None = None,
    ) -> Captured | None:
        """See ErrorTracker.capture_exception."""
        error = _exc_info_error(error)
        if error is None:
            logger.debug("pg_monitoring: capture_exception without an exception")
            return None
        prepared = self._prepare(
            self.exception_event,
            error,
            level=level,
            context=context,
            tags=tags,
            user=user,
            fingerprint=fingerprint,
            transaction=transaction,
        )
        return await self._store(prepared)

    async def capture_message(
        self,
        message: str,
        *,
        level: str = "info",
        context: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        user: Mapping[str, Any] | None = None,
        fingerprint: Iterable[str] | str | None = None,
        transaction: str | None = None,
    ) -> Captured | None:
        """See ErrorTracker.capture_message."""
        prepared = self._prepare(
            self.message_event,
            message,
            level=level,
            context=context,
            tags=tags,
            user=user,
            fingerprint=fingerprint,
            transaction=transaction,
        )
        return await self._store(prepared)

    async def capture_event(self, event: Mapping[str, Any]) -> Captured | None:
        """See ErrorTracker.capture_event."""
        return await self._store(self._prepare(self._raw_event, event))

    async def _store(self, prepared: tuple[str, uuid.UUID] | None) -> Captured | None:
        if prepared is None:
            return None
        payload, event_id = prepared
        if self._goes_to_queue():
            return self._queued(payload, event_id)
        try:
            row = await self._call(CAPTURE_EVENT, (payload,), self.timeout)
        except UnavailableError as error:
            return self._unstored(payload, event_id, error)
        except Exception as error:
            self._count_failed(1, error)
            return None
        return Captured(row["event_id"], row["issue_id"])

    async def _send_batch(self, payloads: list[str]) -> list[str]:
        """See ErrorTracker._send_batch."""
        try:
            await self._call(CAPTURE_EVENTS, (_json_array(payloads),), BATCH_TIMEOUT)
            return []
        except UnavailableError:
            return payloads
        except Exception as error:
            if not self._resend_each(payloads, error):
                return []
        for sent, payload in enumerate(payloads):
            try:
                await self._call(CAPTURE_EVENT, (payload,), BATCH_TIMEOUT)
            except UnavailableError:
                return payloads[sent:]
            except Exception as error:
                self._count_failed(1, error)
        return []

    async def _call(
        self, query: str, params: tuple[Any, ...], timeout: float | None = None
    ) -> dict[str, Any]:
        """The first row of one stored-function call, within `timeout` seconds (None:
        issue management, which waits for the channels registered on first use; a bounded
        capture does not)."""
        if self._own_pool is not None:
            await self._own_pool.open()  # opened in the loop of first use
        if self._unregistered:
            registration = self._register_channels()
            if timeout is None:
                await registration
        return (await self._connector.fetch_all(query, params, timeout))[0]

    async def _triage(self, query: str, params: tuple[Any, ...]) -> dict[str, Any]:
        """See ErrorTracker._triage."""
        with issues.triage():
            return await self._call(query, params)

    # Issues ----------------------------------------------------------------------------

    async def resolve_error(
        self,
        fingerprint: str,
        *,
        in_release: str | None = None,
        in_next_release: bool = False,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """See ErrorTracker.resolve_error."""
        return await self._triage(
            RESOLVE,
            (*self._issue(fingerprint, environment, service), in_release, in_next_release, actor),
        )

    async def ignore_error(
        self,
        fingerprint: str,
        *,
        until: dt.datetime | None = None,
        until_events: int | None = None,
        until_users: int | None = None,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """See ErrorTracker.ignore_error."""
        return await self._triage(
            IGNORE,
            (
                *self._issue(fingerprint, environment, service),
                until,
                until_events,
                until_users,
                actor,
            ),
        )

    async def reopen_error(
        self,
        fingerprint: str,
        *,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """See ErrorTracker.reopen_error."""
        return await self._triage(REOPEN, (*self._issue(fingerprint, environment, service), actor))

    async def assign_error(
        self,
        fingerprint: str,
        assignee: str,
        *,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """See ErrorTracker.assign_error."""
        return await self._triage(
            ASSIGN, (*self._issue(fingerprint, environment, service), assignee, actor)
        )

    async def unassign_error(
        self,
        fingerprint: str,
        *,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """See ErrorTracker.unassign_error."""
        return await self._triage(
            UNASSIGN, (*self._issue(fingerprint, environment, service), actor)
        )

    # Alerts ----------------------------------------------------------------------------
    # The design document calls these without await. They return a task already running on
    # the event loop: await it for the result and its errors; left alone, it completes
    # anyway and logs a failure.

    def add_notification_channel(
        self, channel: Notifier | ErrorNotificationChannel | str, *, replace: bool = True
    ) -> asyncio.Task[int]:
        """See ErrorTracker.add_notification_channel; returns a running task."""
        return self._spawn(self._first_value(*self._channel_call(channel, replace)))

    def set_notification_rate_limit(
        self,
        fingerprint: str,
        notify_on_occurrence: Iterable[int],
        *,
        repeat_every: int | None = None,
        environment: str | None = None,
        service: str | None = None,
        channel: str | None = None,
    ) -> asyncio.Task[int]:
        """See ErrorTracker.set_notification_rate_limit; returns a running task."""
        return self._spawn(
            self._first_value(
                *self._rate_limit_call(
                    fingerprint, notify_on_occurrence, repeat_every, environment, service, channel
                )
            )
        )

    async def _first_value(self, query: str, params: tuple[Any, ...]) -> int:
        row = await self._call(query, params)
        return int(next(iter(row.values())))

    def _register_channels(self) -> asyncio.Task[None]:
        """Registers the channels given at construction, in a task of their own."""
        pending, self._unregistered = self._unregistered, []
        return self._spawn(self._register(pending))

    async def _register(self, pending: list[tuple[Notifier, bool]]) -> None:
        try:
            for notifier, replace in pending:
                await self._call(*self._channel_call(notifier, replace), self.timeout)
        except Exception as error:
            self._registration_failed(error)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coroutine.close()
            raise RuntimeError(
                "the async tracker configures alerts on its event loop: call this from a "
                "coroutine (or use the sync ErrorTracker)"
            ) from None
        task = loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("pg_monitoring: configuring alerts failed: %s", task.exception())

    # Shutting down ---------------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> bool:
        """See ErrorTracker.flush."""
        if self._batcher is None:
            return True
        self._connector.breaker.hurry()
        return await self._batcher.flush(timeout)

    async def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        """See ErrorTracker.close."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        if self._batcher is not None:
            self._connector.breaker.hurry()
            left = await self._batcher.close(timeout)
            if left:
                self._count_dropped(left, f"not sent within {timeout} s of close")
        if self._own_pool is not None:
            await self._own_pool.close()


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
