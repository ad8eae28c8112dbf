"""serve's Batcher (server/batching.py): what arrives while a call runs goes into the next,
each submitter gets its own answer, and a failing call is retried item by item so that one
item's error is its own. The database side is tested through serve in
test_sentry_ingest.py; here the calls are plain coroutines, to reach the failure paths."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from pg_monitoring.server.batching import Batcher


class Store:
    """Doubles each item; refuses item 13, alone or in a call with others."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.started: asyncio.Queue[None] = asyncio.Queue()  # one put per call begun
        self.gate = asyncio.Event()

    async def many(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        self.started.put_nowait(None)
        await self.gate.wait()
        if 13 in items:
            raise ValueError("13 refused")
        return [2 * item for item in items]

    async def one(self, item: int) -> int:
        self.calls.append([item])
        self.started.put_nowait(None)
        await self.gate.wait()
        if item == 13:
            raise ValueError("13 refused")
        return 2 * item


async def submit_all(
    batcher: Batcher[int, int], store: Store, items: list[int], first: int = 1
) -> list[object]:
    """Submits the `first` items one by one, each once the call of the one before has begun
    (they wait at the gate), then the rest at once, then opens the gate."""
    tasks = []
    for item in items[:first]:
        tasks.append(asyncio.create_task(batcher.submit(item, 10)))
        await store.started.get()
    tasks += [asyncio.create_task(batcher.submit(item, 10)) for item in items[first:]]
    await asyncio.sleep(0)
    store.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_what_arrives_during_a_call_goes_into_the_next() -> None:
    store = Store()
    batcher = Batcher(store.many, store.one, max_calls=1, max_items=4)
    answers = asyncio.run(submit_all(batcher, store, list(range(10))))
    assert answers == [2 * n for n in range(10)]
    # the first alone (nothing was waiting), then the rest in calls of at most 4
    assert store.calls == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert (batcher.calls, batcher.items) == (4, 10)


def test_a_failing_call_is_retried_item_by_item() -> None:
    store = Store()
    batcher = Batcher(store.many, store.one, max_calls=1)
    answers = asyncio.run(submit_all(batcher, store, [1, 12, 13, 14]))
    assert answers[:2] == [2, 24]
    assert isinstance(answers[2], ValueError)
    assert answers[3] == 28
    assert store.calls == [[1], [12, 13, 14], [12], [13], [14]]


def test_bytes_bound_a_call_but_never_refuse_an_item() -> None:
    store = Store()
    batcher = Batcher(store.many, store.one, max_calls=1, max_bytes=25)
    answers = asyncio.run(submit_all(batcher, store, list(range(6))))
    assert answers == [2 * n for n in range(6)]
    assert store.calls == [[0], [1, 2], [3, 4], [5]]


def test_what_is_queued_together_goes_in_one_call() -> None:
    store = Store()
    batcher = Batcher(store.many, store.one, max_calls=3)
    answers = asyncio.run(submit_all(batcher, store, list(range(5)), first=0))
    assert answers == [2 * n for n in range(5)]
    assert store.calls == [[0, 1, 2, 3, 4]]


def test_calls_run_side_by_side_up_to_max_calls() -> None:
    store = Store()
    batcher = Batcher(store.many, store.one, max_calls=3)
    answers = asyncio.run(submit_all(batcher, store, list(range(7)), first=3))
    assert answers == [2 * n for n in range(7)]
    # three started one after the other, the other four waited for one of them to end
    assert store.calls[:3] == [[0], [1], [2]]
    assert store.calls[3:] == [[3, 4, 5, 6]]
    assert sorted(item for call in store.calls for item in call) == list(range(7))


def test_a_cancelled_call_fails_its_submitters_rather_than_leave_them_waiting() -> None:
    async def run() -> list[object]:
        store = Store()
        batcher = Batcher(store.many, store.one, max_calls=1)
        tasks = [asyncio.create_task(batcher.submit(n)) for n in range(3)]
        await asyncio.sleep(0.01)
        for task in list(batcher._tasks):
            task.cancel()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)

    answers = asyncio.run(run())
    assert all(isinstance(a, asyncio.CancelledError) for a in answers), answers


def test_limits_are_checked() -> None:
    async def nothing(_: object) -> None:
        return None

    with pytest.raises(ValueError, match="at least 1"):
        Batcher(nothing, nothing, max_calls=0)
