"""Reading traces for the CLI: each function is one call of `monitoring.recent_traces` or
`monitoring.trace_tree`, or one lookup in `monitoring.traces` (monitoring_reader)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .._db.connection import Connector

_TRACES = """
SELECT trace_id, start_time, duration_ms, status_code, error, error_count, root_service,
       root_operation, span_count
FROM monitoring.recent_traces(
    %(since)s::interval, %(service)s::text, %(errors)s::boolean,
    %(slow)s::boolean, %(limit)s::integer
)
"""

_TRACE = """
SELECT trace_id, start_time, duration_ms, status_code, error, error_count, root_service,
       root_operation, span_count
FROM monitoring.traces
WHERE trace_id = lower(%s::text)
"""

_TREE = "SELECT * FROM monitoring.trace_tree(%s::text)"


@dataclass(frozen=True)
class TraceFilter:
    service: str | None = None
    since: timedelta | None = None
    errors: bool = False
    slow: bool = False
    limit: int = 20


def list_traces(db: Connector, where: TraceFilter) -> list[dict[str, Any]]:
    """The newest traces (the slowest with `slow`), filtered."""
    return db.fetch_all(
        _TRACES,
        {
            "service": where.service,
            "since": where.since,
            "errors": where.errors,
            "slow": where.slow,
            "limit": where.limit,
        },
    )


def trace(db: Connector, trace_id: str) -> dict[str, Any] | None:
    """The trace's row and its spans in tree order; None when no span of it is stored."""
    rows = db.fetch_all(_TRACE, (trace_id,))
    if not rows:
        return None
    return {"trace": rows[0], "spans": db.fetch_all(_TREE, (trace_id,))}
