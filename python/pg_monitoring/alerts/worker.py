"""The delivery worker: drains the alert outbox (`pg-monitoring worker`).

    worker = Worker("postgresql://alerts@db/app")   # a role granted monitoring_admin
    worker.run()                                     # until worker.stop() (SIGTERM in the CLI)

A listener thread LISTENs on pg_monitoring_alerts and wakes the main loop; the loop also
wakes when the next retry falls due and at least every `poll_interval` seconds, since
NOTIFY is lost while nobody listens (a restart, a dropped connection). Each wake claims as
many due notifications as there are idle senders (`monitoring.claim_notifications`: FOR
UPDATE SKIP LOCKED under a lease, so any number of workers can run) and hands them to a
thread pool, which sends and records the outcome. Delivery is at least once: a worker that
dies mid-send leaves its claims to run out, and they are sent again with the same
idempotency key. A housekeeping thread folds event counts every `fold_every` seconds (that
is when threshold rules fire) and runs the full maintenance every `maintenance_every`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ..errors import in_callers_words
from . import queries
from .senders import DeliveryError, Notification, Timeouts, send

logger = logging.getLogger("pg_monitoring.worker")

LISTEN_CHANNEL = "pg_monitoring_alerts"
# How long an outcome is retried while the database is unreachable; after that the claim
# runs out and the notification is sent again (at least once).
RECORD_ATTEMPTS = 5


# The arguments of the stored functions the worker calls, as WorkerOptions names them: the
# worker's errors say these words (the CLI passes its flags instead).
OPTION_WORDS = {
    "p_lease_seconds": "lease",
    "p_max_attempts": "max_attempts",
    "p_retry_base_seconds": "retry_base",
    "p_retry_max_seconds": "retry_max",
    "p_worker": "name",
}


@dataclass(frozen=True)
class WorkerOptions:
    """`max_attempts`, `retry_base` and `retry_max` default to the database's settings
    alerts.max_attempts, alerts.retry_base_seconds and alerts.retry_max_seconds."""

    concurrency: int = 4
    poll_interval: float = 5.0
    lease: float = 120.0
    max_attempts: int | None = None
    retry_base: float | None = None
    retry_max: float | None = None
    fold_every: float = 5.0
    maintenance_every: float = 60.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be 1 or more")
        if self.lease <= max(self.timeouts.http, self.timeouts.smtp):
            raise ValueError(
                "the lease must outlast a send: make it longer than the HTTP and SMTP timeouts"
            )


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery attempt: status sent, failed or dead (None: the claim
    ran out before the outcome was recorded), and the error if any."""

    id: int
    channel: str
    status: str | None
    error: str | None = None


class Worker:
    def __init__(
        self,
        dsn: str,
        options: WorkerOptions | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        words: Mapping[str, str] = OPTION_WORDS,
    ) -> None:
        """`words` spell the stored functions' arguments in the worker's errors, as
        errors.in_callers_words takes them."""
        self.dsn = dsn
        self.options = options or WorkerOptions()
        self.environ = os.environ if environ is None else environ
        self.words = words
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._pool: ConnectionPool | None = None
        self._client: httpx.Client | None = None

    # Lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops claiming; `run` returns once the sends in flight are done and recorded."""
        self._stopping.set()
        self._wake.set()

    def __enter__(self) -> Worker:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        if self._pool is None:
            self._pool = ConnectionPool(
                self.dsn,
                min_size=1,
                max_size=self.options.concurrency + 1,
                kwargs={"autocommit": True},
                name="pg_monitoring-worker",
                open=True,
            )
        if self._client is None:
            self._client = httpx.Client(timeout=self.options.timeouts.http, follow_redirects=False)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def run(self) -> None:
        """Delivers until `stop()`; then finishes the sends in flight and returns."""
        self._open()
        threads = [
            threading.Thread(target=self._listen, name="pg_monitoring-listen", daemon=True),
            threading.Thread(target=self._housekeep, name="pg_monitoring-fold", daemon=True),
        ]
        for thread in threads:
            thread.start()
        logger.info(
            "worker %s delivering (%d senders, lease %.0f s)",
            self.options.name,
            self.options.concurrency,
            self.options.lease,
        )
        try:
            with ThreadPoolExecutor(
                self.options.concurrency, thread_name_prefix="pg_monitoring-send"
            ) as senders:
                self._deliver_loop(senders)
                logger.info("stopping: finishing the sends in flight")
        finally:
            self._stopping.set()
            for thread in threads:
                thread.join(timeout=5)
            self.close()
        logger.info("worker %s stopped", self.options.name)

    def _deliver_loop(self, senders: ThreadPoolExecutor) -> None:
        in_flight: set[Future[Outcome]] = set()
        failures = 0
        while not self._stopping.is_set():
            # Cleared before claiming: a wake-up that arrives meanwhile is kept for the wait.
            self._wake.clear()
            in_flight = {future for future in in_flight if not future.done()}
            free = self.options.concurrency - len(in_flight)
            try:
                claimed = self._claim(free) if free > 0 else []
                failures = 0
            except psycopg.Error as error:
                failures += 1
                pause = min(30.0, 0.5 * 2**failures)
                logger.warning(
                    "cannot claim notifications (%s); again in %.0f s", self.said(error), pause
                )
                self._stopping.wait(pause)
                continue
            for notification in claimed:
                future = senders.submit(self._deliver, notification)
                future.add_done_callback(lambda _future: self._wake.set())
                in_flight.add(future)
            if claimed and len(claimed) == free:
                # there may be more: claim again as soon as a sender is free
                wait(in_flight, timeout=self.options.poll_interval, return_when=FIRST_COMPLETED)
                continue
            self._wake.wait(self._until_due())
        wait(in_flight)

    def _until_due(self) -> float:
        """Seconds to sleep without a wake-up: until the next retry, at most poll_interval."""
        try:
            due = self._fetch_value(queries.NEXT_DUE)
        except psycopg.Error:
            return self.options.poll_interval
        if due is None:
            return self.options.poll_interval
        return min(max(due, 0.05), self.options.poll_interval)

    # Background threads ---------------------------------------------------------------

    def _listen(self) -> None:
        """Sets the wake event on every NOTIFY; reconnects when the connection drops."""
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {LISTEN_CHANNEL}")
                    failures = 0
                    # wake-ups sent while nobody listened are lost: look at the outbox now
                    self._wake.set()
                    while not self._stopping.is_set():
                        for _notify in conn.notifies(timeout=1.0):
                            self._wake.set()
            except psycopg.Error as error:
                failures += 1
                pause = min(30.0, 0.5 * 2**failures)
                logger.warning("LISTEN connection lost (%s); again in %.0f s", error, pause)
                self._stopping.wait(pause)

    def _housekeeping(self) -> list[tuple[str, float]]:
        """The housekeeping statements whose timers are on, with their periods in seconds:
        folding counts (threshold alerts fire there), then the full maintenance."""
        jobs = [
            (queries.FOLD, self.options.fold_every),
            (queries.MAINTAIN, self.options.maintenance_every),
        ]
        return [(query, every) for query, every in jobs if every > 0]

    def _housekeep_step(self, query: str) -> None:
        try:
            report = self._fetch_value(query)
            logger.debug("%s: %s", query, report)
        except psycopg.Error as error:
            logger.warning("%s failed: %s", query.strip(), self.said(error))

    def _housekeep(self) -> None:
        """Runs the housekeeping statements on their timers, each at once to begin with."""
        jobs = self._housekeeping()
        if not jobs:
            return
        due = {query: time.monotonic() for query, _every in jobs}
        while not self._stopping.is_set():
            now = time.monotonic()
            for query, every in jobs:
                if due[query] <= now:
                    due[query] = now + every
                    self._housekeep_step(query)
            self._stopping.wait(max(min(due.values()) - time.monotonic(), 0.05))

    # Claiming and delivering ------------------------------------------------------------

    def _fetch_value(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        assert self._pool is not None
        with self._pool.connection() as conn:
            row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def _claim(self, limit: int, ids: Iterable[int] | None = None) -> list[Notification]:
        assert self._pool is not None
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                queries.CLAIM,
                (
                    limit,
                    self.options.lease,
                    self.options.name,
                    None if ids is None else list(ids),
                    self.options.max_attempts,
                ),
            ).fetchall()
        return [Notification(**row) for row in rows]

    def _deliver(self, notification: Notification) -> Outcome:
        assert self._client is not None
        try:
            send(notification, self._settings(notification), self._client, self.options.timeouts)
        except DeliveryError as error:
            return self._record_failure(
                notification, str(error), error.permanent, error.retry_after
            )
        except Exception as error:  # a bug or a surprise: retried like any failure
            logger.exception("sending notification %d failed unexpectedly", notification.id)
            return self._record_failure(
                notification, f"{type(error).__name__}: {error}", False, None
            )
        recorded = self._record(queries.COMPLETE, (notification.id, notification.claim_token))
        if not recorded:
            logger.warning(
                "notification %d was sent, but its claim ran out first: it may be sent again "
                "(same idempotency key)",
                notification.id,
            )
        logger.info("sent notification %d to %s", notification.id, notification.channel_name)
        return Outcome(notification.id, notification.channel_name, "sent" if recorded else None)

    def _settings(self, notification: Notification) -> dict[str, Any]:
        """The channel's settings with each FIELD_env read from the worker's environment;
        SQL checks and converts those values as it checks any other (the channel rule)."""
        stored = {**notification.config, **notification.secrets}
        variables = [value for key, value in stored.items() if key.endswith("_env")]
        if not variables:
            return stored
        environment = {name: self.environ[name] for name in variables if name in self.environ}
        try:
            return self._fetch_value(
                queries.CHANNEL_ENVIRONMENT,
                (
                    notification.channel_kind,
                    Jsonb(notification.config),
                    Jsonb(notification.secrets),
                    Jsonb(environment),
                ),
            )
        except psycopg.errors.DataException as error:
            raise DeliveryError(self.said(error)) from None

    def _record_failure(
        self,
        notification: Notification,
        error: str,
        permanent: bool,
        retry_after: float | None,
    ) -> Outcome:
        status = self._record(
            queries.FAIL,
            (
                notification.id,
                notification.claim_token,
                error,
                permanent,
                retry_after,
                self.options.max_attempts,
                self.options.retry_base,
                self.options.retry_max,
            ),
        )
        log = logger.error if status == "dead" else logger.warning
        log(
            "notification %d to %s, attempt %d: %s -> %s",
            notification.id,
            notification.channel_name,
            notification.attempt,
            error,
            status or "claim lost",
        )
        return Outcome(notification.id, notification.channel_name, status or None, error)

    def _record(self, query: str, params: tuple[Any, ...]) -> Any:
        """Records an outcome, retrying while the database is unreachable; None when it
        could not (the claim runs out, and the notification is sent again)."""
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                return self._fetch_value(query, params)
            except psycopg.Error as error:
                if attempt == RECORD_ATTEMPTS or not isinstance(error, psycopg.OperationalError):
                    logger.error(
                        "cannot record an outcome (%s): the claim will run out", self.said(error)
                    )
                    return None
                time.sleep(min(2.0**attempt, 10.0))
        return None

    def said(self, error: psycopg.Error) -> str:
        """What the database said, in the worker's `words` rather than SQL's arguments."""
        return in_callers_words(error.diag.message_primary or str(error), self.words)

    def run_once(self) -> list[Outcome]:
        """What `run` does first, in this thread, then returns (`pg-monitoring worker --once`):
        the housekeeping whose timers are on (so threshold rules fire), then the delivery of
        what is due."""
        self._open()
        for query, _every in self._housekeeping():
            self._housekeep_step(query)
        return self.deliver_once()

    def deliver_once(self, ids: Iterable[int] | None = None, limit: int = 100) -> list[Outcome]:
        """Claims what is due now (or the notifications `ids`), sends it in this thread and
        returns the outcomes: for `pg-monitoring channels test`, the demo and tests."""
        self._open()
        return [self._deliver(notification) for notification in self._claim(limit, ids)]
