"""One stored-function call, described once and run by a sync or an async client.

The cache and the Redis facade come in sync and asyncio twins. Each public method builds a
`Call` (its SQL, its parameters, how to read the rows) in one shared place, and the twins only
differ in whether they await the connector: the behaviour exists once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .connection import AsyncConnector, Connector

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Call:
    query: str
    params: tuple[Any, ...]
    read: Callable[[Rows], Any]


def run(connector: Connector, call: Call) -> Any:
    return call.read(connector.fetch_all(call.query, call.params))


async def run_async(connector: AsyncConnector, call: Call) -> Any:
    return call.read(await connector.fetch_all(call.query, call.params))


def first_value(rows: Rows) -> Any:
    """The only column of the only row."""
    return next(iter(rows[0].values()))
