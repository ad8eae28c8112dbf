"""Failing fast while the database is unreachable: a circuit breaker and bounded calls.

Every client (error tracker, cache, Redis facade) makes its calls through a connector, and
each call is one `Attempt`:

- the client's `Breaker` admits it, or refuses at once with `UnavailableError` while the
  database is known to be unreachable. After a connection-level failure (`is_outage`) the
  breaker opens; after a backoff (0.25 s, doubling up to 2 s, each a random 50-100% of that)
  it admits one call, the probe; the probe's success closes it, its failure backs off again.
  A call the database refuses (a bad argument, a missing grant) proves it reachable.
- a deadline bounds the whole call: the wait for a pooled connection (`getconn(timeout=)`)
  and the statement. A statement still running at the deadline is ended by the `Watchdog`
  thread, which shuts the connection's socket, so the waiting caller gets an error at once
  however the server or the network hangs, and asks the server to cancel the statement.
  The connection is then closed; the pool replaces it.

The logic is plain code shared by the sync and asyncio connectors, which differ only in
awaiting the pool and the connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from typing import Any

import psycopg

from ..errors import CallTimeoutError, PgMonitoringError, UnavailableError, is_outage, translate

logger = logging.getLogger("pg_monitoring")

# How long a capture or a cache call may hold its caller by default, all included: a
# healthy server answers in milliseconds, and an application would rather lose a cache hit
# than wait longer.
DEFAULT_TIMEOUT = 0.5
# A probe is a caller's call, which may wait its bound for the pool: a cap of a few seconds
# costs one such call every 1-2 s of an outage, and finds the database back that soon.
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 2.0


def checked_timeout(timeout: float | None) -> float | None:
    """`timeout` as a client option: seconds above zero, or None for no bound."""
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be positive seconds or None, not {timeout!r}")
    return timeout


class Breaker:
    """The circuit breaker of one client; thread-safe, shared by its threads and tasks.

    `admit()` hands out the state's epoch with each call and the outcome is reported with
    it, so that the calls already in flight when the database went away, which all fail,
    open the breaker once instead of each doubling the backoff.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._epoch = 0  # changes when the breaker opens or closes
        self._failures = 0  # failed attempts since it opened; 0 while closed
        self._retry_at = 0.0
        self._opened_at = 0.0
        self._error = ""

    @property
    def closed(self) -> bool:
        return not self._failures

    def admit(self) -> tuple[int, bool]:
        """(epoch, whether this call is the probe); raises UnavailableError when open."""
        if not self._failures:  # the common case, without the lock
            return self._epoch, False
        with self._lock:
            if not self._failures:
                return self._epoch, False
            now = time.monotonic()
            if now < self._retry_at:
                raise UnavailableError(
                    f"{self.name}: the database is unreachable (since "
                    f"{now - self._opened_at:.1f} s: {self._error}); next try in "
                    f"{self._retry_at - now:.2f} s"
                )
            # One probe per backoff: the calls after it wait for its outcome, or for the
            # next backoff should it never report one.
            self._retry_at = now + _backoff(self._failures + 1)
            return self._epoch, True

    def succeeded(self, epoch: int) -> None:
        if not self._failures:
            return
        with self._lock:
            if not self._failures or epoch != self._epoch:
                return
            logger.warning(
                "pg_monitoring: %s: the database is reachable again after %.1f s",
                self.name,
                time.monotonic() - self._opened_at,
            )
            self._failures = 0
            self._epoch += 1

    def failed(self, epoch: int, error: BaseException) -> None:
        with self._lock:
            if epoch != self._epoch:
                return  # in flight when another failure opened the breaker: counted then
            now = time.monotonic()
            self._error = _first_line(error)
            if not self._failures:
                self._epoch += 1
                self._opened_at = now
                logger.warning(
                    "pg_monitoring: %s: the database is unreachable (%s); calls fail at "
                    "once until a retry succeeds",
                    self.name,
                    self._error,
                )
            self._failures += 1
            self._retry_at = now + _backoff(self._failures)

    def wait_time(self) -> float:
        """Seconds until the breaker admits a probe; 0 when it would admit a call now."""
        if not self._failures:
            return 0.0
        return max(self._retry_at - time.monotonic(), 0.0)

    def hurry(self) -> None:
        """Lets the next call probe at once (a flush or close should not sit out a backoff)."""
        with self._lock:
            if self._failures:
                self._retry_at = time.monotonic()


def _first_line(error: BaseException) -> str:
    """libpq's messages go on with hints over several lines."""
    return next(iter(str(error).splitlines()), "") or type(error).__name__


def _backoff(failures: int) -> float:
    step = min(BACKOFF_FIRST * 2 ** min(failures - 1, 30), BACKOFF_MAX)
    return step * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrecy


class Attempt:
    """One call through a breaker, bounded by `timeout` seconds (None: unbounded).

    The connector takes its connection within `remaining()`, `watch`es it while the
    statement runs, and reports the outcome with `succeeded()` or `failure(error)`.
    """

    __slots__ = ("_breaker", "deadline", "epoch", "probe", "timed_out", "timeout")

    def __init__(self, breaker: Breaker, timeout: float | None) -> None:
        self._breaker = breaker
        self.epoch, self.probe = breaker.admit()
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timed_out = False

    def remaining(self) -> float | None:
        """Seconds left (at least 0), None without a bound: the `timeout` of `getconn`."""
        if self.deadline is None:
            return None
        return max(self.deadline - time.monotonic(), 0.0)

    def watch(self, conn: Any) -> None:
        if self.deadline is not None:
            WATCHDOG.watch(conn, self.deadline)

    def unwatch(self, conn: Any) -> None:
        """Stops watching; a connection the watchdog interrupted is closed, since its socket
        is shut even when the statement finished just in time."""
        if self.deadline is not None and WATCHDOG.release(conn):
            self.timed_out = True
            with contextlib.suppress(Exception):
                conn.pgconn.finish()

    def succeeded(self) -> None:
        self._breaker.succeeded(self.epoch)

    def failure(self, error: psycopg.Error) -> PgMonitoringError:
        """The exception to raise for `error`, reported to the breaker."""
        if self.timed_out:
            failure: PgMonitoringError = CallTimeoutError(
                f"{self._breaker.name}: no answer within {self.timeout} s; the call was "
                "abandoned and its statement cancelled"
            )
        elif is_outage(error):
            failure = translate(error)
        else:
            if error.sqlstate is not None:  # refused by the server, which was reached
                self._breaker.succeeded(self.epoch)
            return translate(error)
        self._breaker.failed(self.epoch, failure)
        return failure


class Watchdog:
    """One daemon thread that interrupts statements running past their deadline.

    While calls are being made it wakes every TICK (and at the nearest deadline); after
    IDLE seconds without any it sleeps until the next, so a busy application pays a dict
    insert and delete per call, not a thread wake-up.
    """

    TICK = 0.02
    IDLE = 2.0
    _FIRED = -1.0

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._calls: dict[Any, float] = {}  # connection -> deadline, or _FIRED
        self._asleep = True
        self._thread: threading.Thread | None = None

    def watch(self, conn: Any, deadline: float) -> None:
        with self._lock:
            self._calls[conn] = deadline
            if self._asleep:
                self._asleep = False
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="pg_monitoring-watchdog", daemon=True
                    )
                    self._thread.start()
                else:
                    self._wake.notify()

    def release(self, conn: Any) -> bool:
        """Forgets `conn`; True when the watchdog interrupted it. Once this returns the
        watchdog no longer touches the connection, which may go back to its pool."""
        with self._lock:
            return self._calls.pop(conn, None) == self._FIRED

    def _run(self) -> None:
        busy_at = time.monotonic()
        with self._lock:
            while True:
                now = time.monotonic()
                wake_at = now + self.TICK
                for conn, deadline in self._calls.items():
                    if deadline == self._FIRED:
                        continue
                    if deadline <= now:
                        self._calls[conn] = self._FIRED
                        _interrupt(conn)
                    else:
                        wake_at = min(wake_at, deadline)
                if self._calls:
                    busy_at = now
                elif now - busy_at > self.IDLE:
                    self._asleep = True
                    self._wake.wait()
                    busy_at = time.monotonic()
                    continue
                self._wake.wait(wake_at - now)


def _interrupt(conn: Any) -> None:
    """Cancels the statement in the server (from a thread: a partitioned network would hold
    the cancel request's connect) and shuts the socket, so the caller's wait ends now."""
    try:
        cancel = conn.pgconn.get_cancel()
        fd = conn.pgconn.socket
    except psycopg.Error:
        return  # already broken: the caller has its error
    threading.Thread(
        target=_cancel, args=(cancel,), name="pg_monitoring-cancel", daemon=True
    ).start()
    # A duplicate descriptor: shutdown acts on the socket both share, and closing the
    # duplicate leaves libpq's own descriptor to libpq.
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        with sock:
            sock.shutdown(socket.SHUT_RDWR)


def _cancel(cancel: Any) -> None:
    with contextlib.suppress(Exception):
        cancel.cancel()


WATCHDOG = Watchdog()

if hasattr(os, "register_at_fork"):
    # A forked child has no watchdog thread, and its parent's calls are not its own.
    os.register_at_fork(after_in_child=WATCHDOG._reset)
