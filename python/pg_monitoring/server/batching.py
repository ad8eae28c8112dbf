"""Requests that arrive together stored together: one database call, one transaction and
one commit for all that came in while the previous calls ran (group commit, as PostgreSQL
does for WAL flushes). Idle, a request is sent at once, alone; under load each call takes
what has queued since. Nothing waits on a timer.

The clients' background sending (monitoring/background.py's ThreadBatcher and TaskBatcher)
batches the same way, but fire and forget: nobody waits there for an item's own answer, and
an item the database could not take goes back to the queue. Here each submitter waits for
its answer (its HTTP status), and an error is answered, not retried.

The Sentry ingest sends through a `Batcher`: its requests are one event each, as SDKs send
them, and each request's own transaction cost the database more than its event (BENCHMARKS.md,
"Stop 22").
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger("pg_monitoring.server")

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """`submit(item)` answers `call_one(item)`'s result, computed by `call_many` together with
    the items submitted around it.

    - `call_many(items)` returns one result per item, in order; if it raises, each item of the
      call is sent alone through `call_one`, so that an item's error is its own (and a
      database that is away fails each, as it would have alone).
    - At most `max_calls` calls run at once (below the pool's size: other routes share it);
      each takes at most `max_items` items and, past its first, `max_bytes` of their sizes.
    """

    def __init__(
        self,
        call_many: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        call_one: Callable[[Item], Awaitable[Result]],
        *,
        max_calls: int = 2,
        max_items: int = 64,
        max_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        if max_calls < 1 or max_items < 1:
            raise ValueError("max_calls and max_items must be at least 1")
        self._call_many = call_many
        self._call_one = call_one
        self._max_calls = max_calls
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._queue: deque[tuple[Item, int, asyncio.Future[Result]]] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # calls made and items sent, for the benchmarks and tests
        self.calls = 0
        self.items = 0

    async def submit(self, item: Item, size: int = 0) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append((item, size, future))
        if self._running < self._max_calls:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)  # a task nothing refers to may be collected mid-way
            task.add_done_callback(self._tasks.discard)
        # A request whose client went away still has its item stored: it may be in a call
        # with others already (and an SDK's retry is recognised by its event id).
        return await asyncio.shield(future)

    def _take(self) -> list[tuple[Item, int, asyncio.Future[Result]]]:
        batch: list[tuple[Item, int, asyncio.Future[Result]]] = []
        size = 0
        while self._queue and len(batch) < self._max_items:
            if batch and size + self._queue[0][1] > self._max_bytes:
                break
            entry = self._queue.popleft()
            size += entry[1]
            batch.append(entry)
        return batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                self.calls += 1
                self.items += len(batch)
                try:
                    await self._send(batch)
                except BaseException as error:  # cancelled (shutdown): no submitter waits forever
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    raise
        finally:
            self._running -= 1

    async def _send(self, batch: list[tuple[Item, int, asyncio.Future[Result]]]) -> None:
        if len(batch) > 1:
            try:
                results = await self._call_many([item for item, _, _ in batch])
                if len(results) != len(batch):
                    raise ValueError(f"{len(results)} answers for {len(batch)} items")
            except Exception as error:  # each alone: an item's error is its own
                logger.debug("a call of %s failed (%s); sending each alone", len(batch), error)
            else:
                for (_, _, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                return
        for item, _, future in batch:
            try:
                result = await self._call_one(item)
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)
