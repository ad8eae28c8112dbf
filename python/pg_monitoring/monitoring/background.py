"""Background sending: the request path queues an event and returns; a worker sends batches.

One worker per tracker (a thread, or an asyncio task in the application's loop) takes what
is queued, up to `batch_size` events at once, and hands the batch to the tracker's send
function, which makes one `monitoring.capture_events` call of it. There is no timer: the
worker sends as soon as something is queued, so an idle application's event is stored within
one round trip, and under load events pile up while a batch is in flight and go out together
in the next. The queue is bounded; when it is full `put` refuses at once (the tracker drops
and counts the event) rather than make the application wait.
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

logger = logging.getLogger("pg_monitoring")

DEFAULT_MAX_QUEUE = 1000
DEFAULT_BATCH_SIZE = 100

_thread_batchers: weakref.WeakSet[ThreadBatcher] = weakref.WeakSet()


def _forget_in_child() -> None:
    # A forked child has no worker thread, and its parent sends what was queued.
    for batcher in list(_thread_batchers):
        batcher._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _check(max_queue: int, batch_size: int) -> None:
    if max_queue < 1 or batch_size < 1:
        raise ValueError(
            f"max_queue and batch_size must be positive, not {max_queue} and {batch_size}"
        )


class ThreadBatcher:
    """A bounded queue of JSON events and the daemon thread that sends them in batches."""

    def __init__(
        self,
        send: Callable[[list[str]], None],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        _check(max_queue, batch_size)
        self._send = send
        self.max_queue = max_queue
        self.batch_size = batch_size
        self._reset()
        _thread_batchers.add(self)

    def _reset(self) -> None:
        self._items: deque[str] = deque()
        self._in_flight = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, item: str) -> bool:
        """Queues `item`; False, at once, when the queue is full or closed."""
        with self._changed:
            if self._closed or len(self._items) >= self.max_queue:
                return False
            self._items.append(item)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pg_monitoring-errors", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()
        return True

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._items and not self._closed:
                    self._changed.wait()
                if not self._items:
                    return
                batch = [
                    self._items.popleft() for _ in range(min(self.batch_size, len(self._items)))
                ]
                self._in_flight = len(batch)
            try:
                self._send(batch)
            except Exception:  # the send function reports its own failures; this is a bug
                logger.exception("pg_monitoring: the background sender failed")
            finally:
                with self._changed:
                    self._in_flight = 0
                    self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far is sent (or failed); False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._items and not self._in_flight, timeout=timeout
            )

    def close(self, timeout: float | None = None) -> int:
        """Sends what is queued, waiting at most `timeout`, and stops the worker.

        Returns how many events were still queued at the timeout (they are not sent).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self.flush(timeout)
        with self._changed:
            self._closed = True
            left = len(self._items)
            self._items.clear()
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0))
        return left


class TaskBatcher:
    """The asyncio twin: a bounded queue and a task in the running loop that sends batches."""

    def __init__(
        self,
        send: Callable[[list[str]], Awaitable[None]],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        _check(max_queue, batch_size)
        self._send = send
        self.max_queue = max_queue
        self.batch_size = batch_size
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[str] | None = None
        self._task: asyncio.Task[None] | None = None

    def put(self, item: str) -> bool:
        """Queues `item` (call it in the loop that should send); False when full or closed."""
        if self._closed:
            return False
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            # First use, or a new loop (the old one's task died with it).
            self._loop = loop
            self._queue = asyncio.Queue(self.max_queue)
            self._task = loop.create_task(self._run(self._queue), name="pg_monitoring-errors")
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def _run(self, queue: asyncio.Queue[str]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._send(batch)
            except Exception:  # the send function reports its own failures; this is a bug
                logger.exception("pg_monitoring: the background sender failed")
            finally:
                for _ in batch:
                    queue.task_done()

    async def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far is sent (or failed); False on timeout."""
        if self._queue is None or self._loop is not asyncio.get_running_loop():
            return True
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self, timeout: float | None = None) -> int:
        """Sends what is queued, waiting at most `timeout`, and stops the task.

        Returns how many events were still queued at the timeout (they are not sent).
        """
        await self.flush(timeout)
        self._closed = True
        left = 0
        if self._queue is not None:
            left = self._queue.qsize()
        if self._task is not None:
            self._task.cancel()
            # RuntimeError: the task belongs to another (closed) loop
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
        return left
