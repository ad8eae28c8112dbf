"""Concurrent clients for the benchmarks: one thread each, timed together."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

Share = TypeVar("Share")


def at_once(shares: Sequence[Share], client: Callable[[Share, Callable[[], None]], None]) -> float:
    """Runs `client(share, ready)` for each share in a thread of its own, each calling
    `ready()` once set up (connected); returns the seconds from all ready to all done. The
    first client's exception is raised again here."""
    barrier = threading.Barrier(len(shares) + 1)
    errors: list[BaseException] = []

    def run(share: Share) -> None:
        try:
            client(share, barrier.wait)
        except BaseException as error:  # raised below, in the caller's thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    # a client that fails before it is ready breaks the barrier: its error is raised below
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started
