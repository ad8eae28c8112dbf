"""Reading logs for the CLI: one call of `monitoring.search_logs` (monitoring_reader)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._db.connection import Connector

_SEARCH = """
SELECT time, severity, service, body, trace_id, span_id, attributes
FROM monitoring.search_logs(
    p_words => %(words)s::text, p_trace_id => %(trace_id)s::text,
    p_min_severity => %(level)s::text, p_since => %(since)s::timestamptz,
    p_service => %(service)s::text, p_limit => %(limit)s::integer)
"""


@dataclass(frozen=True)
class LogFilter:
    words: str | None = None
    trace_id: str | None = None
    level: str | None = None
    since: datetime | None = None
    service: str | None = None
    limit: int = 100


def search_logs(db: Connector, where: LogFilter) -> list[dict[str, Any]]:
    """Records, newest first."""
    return db.fetch_all(
        _SEARCH,
        {
            "words": where.words,
            "trace_id": where.trace_id,
            "level": where.level,
            "since": where.since,
            "service": where.service,
            "limit": where.limit,
        },
    )
