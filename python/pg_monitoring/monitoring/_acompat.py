"""What the two trackers do differently, once per flavour, under names the generator maps
(tools/async_to_sync.py: AExitHook -> ExitHook, ATasks -> Tasks; the queues are
background.py's TaskBatcher and ThreadBatcher)."""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger("pg_monitoring")

T = TypeVar("T")


class ExitHook:
    """`close` run at interpreter exit once armed: a sync tracker's queued events are sent
    before the process ends. Armed when its thread starts (only then does the tracker need
    closing, and atexit keep it alive)."""

    def __init__(self, close: Callable[[], object]) -> None:
        self._close = close

    def arm(self) -> None:
        atexit.register(self._close)

    def disarm(self) -> None:
        atexit.unregister(self._close)


class AExitHook:
    """No exit hook can await: an asyncio application awaits `tracker.close()` itself."""

    def __init__(self, close: Callable[[], object]) -> None:
        pass

    def arm(self) -> None:
        pass

    def disarm(self) -> None:
        pass


class Tasks:
    """The sync tracker's alert configuration runs at once: `start` gets its result."""

    def can_start(self) -> bool:
        return True

    def start(self, result: T) -> T:
        return result

    def wait(self, timeout: float | None) -> None:
        pass


class ATasks:
    """The async tracker's alert configuration, which the design document calls without
    await: tasks already running on the event loop. Awaited, they give the result and the
    errors; left alone, they complete anyway and log a failure. close() waits for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def can_start(self) -> bool:
        """Whether a loop runs here (a tracker made outside one registers on first use)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def start(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
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
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("pg_monitoring: configuring alerts failed: %s", task.exception())

    async def wait(self, timeout: float | None) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
