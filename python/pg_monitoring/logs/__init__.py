"""Logs from Python: `PostgresLogHandler` (handler.py) stores log records in
`monitoring.logs` with the active trace and span ids, and hands ERROR records with an
exception to the error tracker; `JsonFormatter` (formatter.py, needs
`pg-monitoring[logs]`) prints records as JSON lines carrying the request id and trace id;
context.py holds the request id the ASGI middleware sets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import current_ids, request_id
from .handler import PostgresLogHandler

if TYPE_CHECKING:
    from .formatter import JsonFormatter

__all__ = ["JsonFormatter", "PostgresLogHandler", "current_ids", "request_id"]


def __getattr__(name: str) -> Any:
    # Imported when asked for: python-json-logger is an optional dependency.
    if name == "JsonFormatter":
        from .formatter import JsonFormatter

        return JsonFormatter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
