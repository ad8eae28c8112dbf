"""One stored-function call, described once and run by a sync or an async client.

The cache and the Redis facade come in sync and asyncio twins. Each public method builds a
`Call` (its SQL, its parameters, how to read the result) in one shared place, and the twins
only differ in whether they await the connector: the behaviour exists once.

A call that returns one row (a GET, a SET, any single value) says `one_row=True` and reads
that row as a tuple, or None: it runs on the connector's fast path, which is what a cache call
costs on top of the server's work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .connection import AsyncConnector, Connector

Rows = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Call:
    query: str
    params: tuple[Any, ...]
    read: Callable[[Any], Any]
    one_row: bool = False


def run(connector: Connector, call: Call) -> Any:
    if call.one_row:
        return call.read(connector.fetch_row(call.query, call.params))
    return call.read(connector.fetch_all(call.query, call.params))


async def run_async(connector: AsyncConnector, call: Call) -> Any:
    if call.one_row:
        return call.read(await connector.fetch_row(call.query, call.params))
    return call.read(await connector.fetch_all(call.query, call.params))


def first_value(rows: Rows) -> Any:
    """The only column of the only row."""
    return next(iter(rows[0].values()))


def only_value(row: tuple[Any, ...] | None) -> Any:
    """The only column of a one-row call's row."""
    return None if row is None else row[0]
