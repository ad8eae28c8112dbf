"""The connectors, at the path they had before `_db/` (where they live now)."""

from __future__ import annotations

from ._db.connection import IDLE, OWN_POOL_MAX_SIZE, OWN_POOL_MIN_SIZE, Connector, Params, Source
from ._db.connection_async import AsyncConnector, AsyncSource

__all__ = [
    "IDLE",
    "OWN_POOL_MAX_SIZE",
    "OWN_POOL_MIN_SIZE",
    "AsyncConnector",
    "AsyncSource",
    "Connector",
    "Params",
    "Source",
]
