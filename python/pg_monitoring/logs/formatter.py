"""JSON lines for stdout, from python-json-logger (`pip install pg-monitoring[logs]`).

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())

Each line carries python-json-logger's fields (the message, and whatever `extra=` a call
passes) plus `request_id`, `trace_id` and `span_id` when a request or a span is in effect.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from .context import current_ids

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter with the request and trace ids added; its options
    apply (`JsonFormatter("%(message)s", rename_fields={"levelname": "level"})`), and
    the default format is time, level, logger and message, with ISO times in UTC."""

    def __init__(self, fmt: Any = DEFAULT_FORMAT, *args: Any, **kwargs: Any) -> None:
        super().__init__(fmt, *args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        moment = datetime.fromtimestamp(record.created, timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for key, value in current_ids().items():
            log_data.setdefault(key, value)
