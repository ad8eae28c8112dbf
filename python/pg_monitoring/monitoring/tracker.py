# WARNING: generated from tracker_async.py by tools/async_to_sync.py; do not edit.
"""The error tracker: Sentry's `capture_exception` API, stored by `monitoring.capture_event`.

    tracker = init_error_tracker(pool, environment="production")
    try:
        ...
    except Exception as error:
        tracker.capture_exception(error, context={"user_id": user.id})  # await it if async

The sync tracker is the asyncio one without await, generated from it by
tools/async_to_sync.py. Each capture is one call of `monitoring.capture_event` (or, in
background mode, part of one `monitoring.capture_events` batch) and never raises into the
application: a failure is logged on the `pg_monitoring` logger and counted in
`failed_captures`. Nor does it hold the application longer than `timeout` (0.5 s): while the
database is unreachable, captures go to the bounded background queue, which is sent again
once a probe finds the database back (see _db/breaker.py). Issue management
(`resolve_error`, `ignore_error`, `assign_error`...) finds the issue by fingerprint and is one
call of the lifecycle function (triage.py); those do raise, as any pg_monitoring call does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from .._db.calls import Call
from .._db.connection import OWN_POOL_MAX_SIZE, OWN_POOL_MIN_SIZE, Connector, Source
from ..errors import UnavailableError
from . import triage
from ._acompat import ExitHook, Tasks
from .background import DEFAULT_BATCH_SIZE, DEFAULT_MAX_QUEUE, ThreadBatcher
from .notifications import Notifier
from .tracker_base import (
    BATCH_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    Captured,
    ErrorNotificationChannel,
    TrackerBase,
    capture_batch_call,
    capture_call,
    exc_info_error,
    logger,
)


class ErrorTracker(TrackerBase):
    """Captures errors into `monitoring.*`.

    `source` is a psycopg_pool.ConnectionPool, a psycopg.Connection or a DSN (the
    tracker then makes a small pool of its own; issue management waits at most
    `connect_timeout` seconds for one of its connections). Prefer a pool: on a connection, a
    capture joins whatever transaction the application has open there, and is lost when it
    rolls back.

    A capture holds its caller at most `timeout` seconds (None: no bound), the wait for a
    pooled connection included. When the database is unreachable, or does not answer in
    time, the event goes to the background queue and the capture returns
    `Captured(event_id, None)`; the queue's worker sends it again, with backoff, until it is
    stored. With `background=True` every capture is queued (at most `max_queue`) and the
    worker stores them in batches of up to `batch_size`. `flush()` waits for the queue,
    `close()` sends what is left. A full queue drops the event and counts it in
    `dropped_events`. The worker is a task in the loop of the first capture for the asyncio
    tracker (`await tracker.close()` at shutdown: no exit hook can await), and a daemon
    thread for the sync one, whose close() also runs at exit.

    The other options shape the events: `environment`, `service` and `release` go on every
    event (the database's settings fill in what is None), `tags` are merged under each
    call's, `server_name` defaults to the host's name ("" for none), `project_root`,
    `in_app_include` and `in_app_exclude` decide which frames are in-app, and
    `include_locals` adds each frame's local variables (repr'd, cut short).
    `notification_channels` (notifiers, or kinds read from the worker's environment) are
    registered as alert channels when the tracker is made (an asyncio tracker made outside a
    running loop: at its first call); a failure (no monitoring_admin) is logged, not raised.
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
                "background mode needs a pool or a DSN: its worker can not share the "
                "application's connection"
            )
        self._connector = Connector(source, name="error tracker")
        self._background = background
        self._tasks = Tasks()
        self._exit_hook = ExitHook(self.close)
        if not isinstance(source, psycopg.Connection):
            # Its worker starts with the first event queued, if any ever is.
            self._batcher = ThreadBatcher(
                self._send_batch,
                max_queue=max_queue,
                batch_size=batch_size,
                retry_delay=self._connector.breaker.wait_time,
                on_start=self._exit_hook.arm,
            )
        if self._unregistered and self._tasks.can_start():
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
        error = exc_info_error(error)
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
            row = self._call(capture_call(payload), self.timeout)
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
            self._call(capture_batch_call(payloads), BATCH_TIMEOUT)
            return []
        except UnavailableError:
            return payloads
        except Exception as error:
            if not self._resend_each(payloads, error):
                return []
        for sent, payload in enumerate(payloads):
            try:
                self._call(capture_call(payload), BATCH_TIMEOUT)
            except UnavailableError:
                return payloads[sent:]
            except Exception as error:
                self._count_failed(1, error)
        return []

    def _call(self, call: Call, timeout: float | None = None) -> Any:
        """One stored-function call, within `timeout` seconds (None: issue management)."""
        if self._own_pool is not None:
            self._own_pool.open()  # opened on first use, not where the tracker is made
        return self._connector.run(call, timeout)

    def _triage(self, call: Call) -> dict[str, Any]:
        """`_call` of an issue-lifecycle function; a refusal names the role it needs."""
        with triage.needs_admin():
            return self._call(call)

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
        issue = self._issue(fingerprint, environment, service)
        return self._triage(triage.resolve(issue, in_release, in_next_release, actor))

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
        issue = self._issue(fingerprint, environment, service)
        return self._triage(triage.ignore(issue, until, until_events, until_users, actor))

    def reopen_error(
        self,
        fingerprint: str,
        *,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Sets a resolved or ignored issue back to unresolved."""
        issue = self._issue(fingerprint, environment, service)
        return self._triage(triage.reopen(issue, actor))

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
        issue = self._issue(fingerprint, environment, service)
        return self._triage(triage.assign(issue, assignee, actor))

    def unassign_error(
        self,
        fingerprint: str,
        *,
        actor: str | None = None,
        environment: str | None = None,
        service: str | None = None,
    ) -> dict[str, Any]:
        """Removes the issue's assignee."""
        issue = self._issue(fingerprint, environment, service)
        return self._triage(triage.unassign(issue, actor))

    # Alerts ----------------------------------------------------------------------------
    # The design document calls these without await. The asyncio tracker returns a task
    # already running on the event loop: await it for the result and its errors; left alone,
    # it completes anyway and logs a failure. The sync tracker returns the result.

    def add_notification_channel(
        self, channel: Notifier | ErrorNotificationChannel | str, *, replace: bool = True
    ) -> int:
        """Registers an alert channel (`SlackNotifier(webhook_url=...)`, `EmailNotifier(...)`,
        `WebhookNotifier(...)`, `PagerDutyNotifier(...)`, or a bare kind read from the
        worker's environment) through `monitoring.add_channel`; its id. A channel of the
        same name is updated (`replace=False` keeps it). Needs monitoring_admin."""
        return self._tasks.start(self._id_of(self._channel_call(channel, replace)))

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
        the rule's id. Needs monitoring_admin."""
        call = self._rate_limit_call(
            fingerprint, notify_on_occurrence, repeat_every, environment, service, channel
        )
        return self._tasks.start(self._id_of(call))

    def _id_of(self, call: Call) -> int:
        return int(self._call(call))

    def _register_channels(self) -> None:
        """Registers the channels given at construction (the asyncio tracker: in a task)."""
        pending, self._unregistered = self._unregistered, []
        return self._tasks.start(self._register(pending))

    def _register(self, pending: list[tuple[Notifier, bool]]) -> None:
        try:
            for notifier, replace in pending:
                self._call(self._channel_call(notifier, replace), self.timeout)
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
        self._tasks.wait(timeout)
        if self._batcher is not None:
            self._exit_hook.disarm()
            self._connector.breaker.hurry()
            left = self._batcher.close(timeout)
            if left:
                self._count_dropped(left, f"not sent within {timeout} s of close")
        if self._own_pool is not None:
            self._own_pool.close()
