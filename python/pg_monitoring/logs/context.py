"""What a request shares with the log records it writes: its id (set by the ASGI middleware,
read by the log handler and the JSON formatter) and which exceptions were captured already.

The trace and span ids are OpenTelemetry's own context (`monitoring.events.trace_context`).
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any

from ..monitoring.events import trace_context

request_id: ContextVar[str | None] = ContextVar("pg_monitoring_request_id", default=None)

# Set on an exception once it is in the error tracker: the middleware captures a request's
# exception, then the server logs it with exc_info, and the log handler must not capture it
# again (as Sentry's dedupe integration does).
_CAPTURED = "__pg_monitoring_captured__"


def current_ids() -> dict[str, str]:
    """The request id, trace id and span id in effect, those that are set."""
    ids: dict[str, str] = {}
    rid = request_id.get()
    if rid is not None:
        ids["request_id"] = rid
    trace = trace_context()
    if trace is not None:
        ids["trace_id"] = trace["trace_id"]
        ids["span_id"] = trace["span_id"]
    return ids


def mark_captured(error: BaseException) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # an exception type with __slots__
        setattr(error, _CAPTURED, True)


def was_captured(error: Any) -> bool:
    return bool(getattr(error, _CAPTURED, False))
