"""Background sending: the request path queues an event and returns; a worker sends batches.

One worker per tracker (a thread, or an asyncio task in the application's loop) takes what
is queued, up to `batch_size` events at once, and hands the batch to the tracker's send
function, which makes one `monitoring.capture_events` call of it. There is no timer: the
worker sends as soon as something is queued, so an idle application's event is stored within
one round trip, and under load events pile up while a batch is in flight and go out together
in the next. The queue is bounded; when it is full `put` refuses at once (the tracker drops
and counts the event) rather than make the application wait.

The send function returns the events it could not send because the database was
unreachable: they go back to the head of the queue, in order, and the worker tries again
when `retry_delay()` (the breaker's backoff) says. An event keeps its encoded JSON while it
waits, so a resend after an uncertain commit is byte for byte the same event, which the SQL
stores once (it deduplicates on event id and timestamp).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger("pg_monitoring")

DEFAULT_MAX_QUEUE = 1000
DEFAULT_BATCH_SIZE = 100

# What waits in a queue: an event's JSON for the trackers, a Sentry envelope for the transport.
T = TypeVar("T")

_thread_batchers: weakref.WeakSet[ThreadBatcher[object]] = weakref.WeakSet()


def _forget_in_child() -> None:
    # A forked child has no worker thread, and its parent sends what was queued.
    for batcher in list(_thread_batchers):
        batcher._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _no_delay() -> float:
    return 0.0


class Backlog(Generic[T]):
    """The queue both workers share: bounded, oldest first, and the batch in flight."""

    def __init__(self, max_queue: int, batch_size: int) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError(
                f"max_queue and batch_size must be positive, not {max_queue} and {batch_size}"
            )
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.items: deque[T] = deque()
        self.in_flight = 0

    def put(self, item: T) -> bool:
        """Queues `item`; False when the queue is full. A batch sent back after a failure
        may fill it beyond `max_queue`: those events were accepted already."""
        if len(self.items) >= self.max_queue:
            return False
        self.items.append(item)
        return True

    def take(self) -> list[T]:
        batch = [self.items.popleft() for _ in range(min(self.batch_size, len(self.items)))]
        self.in_flight = len(batch)
        return batch

    def settle(self, unsent: list[T]) -> None:
        """The batch in flight is done; its `unsent` events go back to the head."""
        self.items.extendleft(reversed(unsent))
        self.in_flight = 0

    @property
    def settled(self) -> bool:
        return not self.items and not self.in_flight

    def __len__(self) -> int:
        """Events not known to be stored: queued and in flight."""
        return len(self.items) + self.in_flight

    def clear(self) -> int:
        """Forgets every event (at close); returns how many."""
        left = len(self)
        self.items.clear()
        return left

    def drain(self) -> list[T]:
        """Takes every queued event (not the batch in flight)."""
        queued = list(self.items)
        self.items.clear()
        return queued


class ThreadBatcher(Generic[T]):
    """A bounded queue of JSON events and the daemon thread that sends them in batches.

    The thread starts with the first event queued, and then calls `on_start`.
    """

    def __init__(
        self,
        send: Callable[[list[T]], list[T]],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry_delay: Callable[[], float] = _no_delay,
        on_start: Callable[[], object] | None = None,
        name: str = "pg_monitoring-errors",
    ) -> None:
        self._backlog: Backlog[T] = Backlog(max_queue, batch_size)
        self._send = send
        self._retry_delay = retry_delay
        self._on_start = on_start
        self._name = name
        self._reset()
        _thread_batchers.add(self)

    def _reset(self) -> None:
        self._backlog.clear()
        self._backlog.settle([])
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, item: T) -> bool:
        """Queues `item`; False, at once, when the queue is full or closed."""
        with self._changed:
            if self._closed or not self._backlog.put(item):
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
                if self._on_start is not None:
                    self._on_start()
            self._changed.notify_all()
        return True

    def __len__(self) -> int:
        return len(self._backlog)

    def _run(self) -> None:
        while True:
            with self._changed:
                batch = self._next_batch()
            if batch is None:
                return
            unsent: list[T] = []
            try:
                unsent = self._send(batch)
            except Exception:  # the send function reports its own failures; this is a bug
                logger.exception("pg_monitoring: the background sender failed")
            finally:
                with self._changed:
                    self._backlog.settle(unsent)
                    self._changed.notify_all()

    def _next_batch(self) -> list[T] | None:
        """The next batch once one is due (the lock held); None when closed."""
        while not self._closed:
            if not self._backlog.items:
                self._changed.wait()
            elif (delay := self._retry_delay()) > 0:
                self._changed.wait(delay)
            else:
                return self._backlog.take()
        return None

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far is sent (or failed for good); False on
        timeout. A worker waiting out a backoff looks at `retry_delay()` again at once."""
        with self._changed:
            self._changed.notify_all()
            return self._changed.wait_for(lambda: self._backlog.settled, timeout=timeout)

    def close(self, timeout: float | None = None) -> int:
        """Sends what is queued, waiting at most `timeout`, and stops the worker.

        Returns how many events were not sent by then (queued, or in a batch whose outcome
        is unknown); the queued ones are forgotten.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self.flush(timeout)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.join(None if deadline is None else max(deadline - time.monotonic(), 0))
        with self._changed:
            return self._backlog.clear()

    def stop(self) -> list[T]:
        """Stops the worker without waiting (a batch in flight is still sent; what it leaves
        unsent goes back to the queue, for another stop() once it has ended: `join`);
        returns what was queued."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            return self._backlog.drain()

    def join(self, timeout: float | None = None) -> None:
        """Waits at most `timeout` seconds for the worker to end, once closed or stopped."""
        with self._changed:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


class TaskBatcher:
    """The asyncio twin: a bounded queue and a task in the running loop that sends batches.

    The task starts with the first event queued (again in a new loop), and then calls
    `on_start`.
    """

    def __init__(
        self,
        send: Callable[[list[str]], Awaitable[list[str]]],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry_delay: Callable[[], float] = _no_delay,
        on_start: Callable[[], object] | None = None,
    ) -> None:
        self._backlog: Backlog[str] = Backlog(max_queue, batch_size)
        self._send = send
        self._retry_delay = retry_delay
        self._on_start = on_start
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = self._settled = asyncio.Event()

    def put(self, item: str) -> bool:
        """Queues `item` (call it in the loop that should send); False when full or closed."""
        if self._closed:
            return False
        loop = asyncio.get_running_loop()
        if self._task is None or self._loop is not loop:
            # First use, or a new loop (the old one's task, and its batch, died with it).
            self._loop = loop
            self._backlog.settle([])
            self._wake, self._settled = asyncio.Event(), asyncio.Event()
            self._task = loop.create_task(self._run(), name="pg_monitoring-errors")
            if self._on_start is not None:
                self._on_start()
        if not self._backlog.put(item):
            return False
        self._settled.clear()
        self._wake.set()
        return True

    def __len__(self) -> int:
        return len(self._backlog)

    async def _run(self) -> None:
        wake, settled = self._wake, self._settled
        while True:
            batch = await self._next_batch(wake)
            unsent: list[str] = []
            try:
                unsent = await self._send(batch)
            except Exception:  # the send function reports its own failures; this is a bug
                logger.exception("pg_monitoring: the background sender failed")
            finally:
                self._backlog.settle(unsent)
                if self._backlog.settled:
                    settled.set()

    async def _next_batch(self, wake: asyncio.Event) -> list[str]:
        while True:
            wake.clear()
            if not self._backlog.items:
                await wake.wait()
            elif (delay := self._retry_delay()) > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
            else:
                return self._backlog.take()

    async def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far is sent (or failed for good); False on
        timeout. A worker waiting out a backoff looks at `retry_delay()` again at once."""
        if self._task is None or self._loop is not asyncio.get_running_loop():
            return True
        self._wake.set()
        try:
            await asyncio.wait_for(self._settled.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self, timeout: float | None = None) -> int:
        """Sends what is queued, waiting at most `timeout`, and stops the task.

        Returns how many events were not sent by then (queued, or in a batch whose outcome
        is unknown); they are forgotten.
        """
        await self.flush(timeout)
        self._closed = True
        left = self._backlog.clear()
        if self._task is not None:
            self._task.cancel()
            # RuntimeError: the task belongs to another (closed) loop
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
        return left
