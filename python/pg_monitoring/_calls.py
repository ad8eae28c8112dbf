"""Calls, at the path they had before `_db/` (see _db/calls.py); a connector runs them."""

from __future__ import annotations

from typing import Any

from ._db.calls import BULK_TIME, RAISE, Call, Rows, first_value, only_value
from ._db.connection import Connector
from ._db.connection_async import AsyncConnector

__all__ = ["BULK_TIME", "RAISE", "Call", "Rows", "first_value", "only_value", "run", "run_async"]


def run(connector: Connector, call: Call, timeout: float | None = None) -> Any:
    return connector.run(call, timeout)


async def run_async(connector: AsyncConnector, call: Call, timeout: float | None = None) -> Any:
    return await connector.run(call, timeout)
