"""One stored-function call, described once and run by a sync or an async client.

Each public method of a client builds a `Call` (its SQL, its parameters, how to read the
result) in one shared place, and hands it to its connector's `run`: the sync and asyncio
twins differ only in whether they await it, so the behaviour exists once.

A call that returns one row (a GET, a SET, any single value) says `one_row=True` and reads
that row as a tuple, or None: it runs on the connector's fast path, which is what a cache call
costs on top of the server's work.

Each runs within the client's `timeout` plus its own `extra_time`: the seconds it may wait
in the server by design (get_or_set's wait for another caller's value), or may need for
work proportional to the data (a pattern delete over a million keys).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Rows = list[dict[str, Any]]

RAISE: Any = object()


@dataclass(frozen=True, slots=True)
class Call:
    query: str
    params: tuple[Any, ...]
    read: Callable[[Any], Any]
    one_row: bool = False
    extra_time: float = 0.0
    # What PostgresCache(outage_as_miss=True) answers while the database is unreachable;
    # RAISE: the error, for calls with no honest answer (a delete must not be lost quietly).
    outage_value: Any = RAISE


# The extra time of calls whose work grows with the data: they must not fail on a large
# cache, and still end should the server hang.
BULK_TIME = 30.0


def bound(call: Call, timeout: float | None) -> float | None:
    """The seconds `call` may take, given the client's `timeout` (None: no bound)."""
    return None if timeout is None else timeout + call.extra_time


def first_row(rows: Rows) -> dict[str, Any]:
    """The only row."""
    return rows[0]


def first_value(rows: Rows) -> Any:
    """The only column of the only row."""
    return next(iter(rows[0].values()))


def only_value(row: tuple[Any, ...] | None) -> Any:
    """The only column of a one-row call's row."""
    return None if row is None else row[0]
