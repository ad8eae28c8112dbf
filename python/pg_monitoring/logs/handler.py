"""PostgresLogHandler: log records into `monitoring.logs` through `monitoring.record_logs`.

    handler = PostgresLogHandler(pool, service="checkout", tracker=tracker)
    logging.getLogger().addHandler(handler)

`emit` encodes the record as an OTLP LogRecord (its message as the body, the active trace
and span ids, the request id, code location and `extra=` fields as attributes) and queues
it; a daemon thread stores the queue in batches, one `record_logs` call each. The
application never waits: a full queue drops the record (`dropped_records`), and while the
database is unreachable the batch waits at the head of the queue and is sent again when the
connector's breaker admits a probe. `flush()` waits for the queue; `close()` (which
`logging.shutdown` runs at exit) sends what is left.

With a `tracker`, an ERROR (or `capture_level`) record carrying an exception is captured as
an error event too, as Sentry's logging integration does, unless the ASGI middleware
captured that exception already.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from typing import Any

from .._db.calls import Call, first_value
from .._db.connection import Connector, Source
from ..errors import UnavailableError
from ..monitoring.background import ThreadBatcher
from . import otlp_json
from .context import current_ids, mark_captured, request_id, was_captured

logger = logging.getLogger("pg_monitoring")

RECORD_LOGS = "SELECT monitoring.record_logs(%s::jsonb)"
DEFAULT_MAX_QUEUE = 10000
DEFAULT_BATCH_SIZE = 500
# One batch may take this long (it holds no caller); close() waits this long by default.
DEFAULT_TIMEOUT = 10.0
DEFAULT_CLOSE_TIMEOUT = 5.0
LOG_INTERVAL = 10.0

# What every LogRecord has; anything else in its __dict__ came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def severity_number(levelno: int) -> int:
    """OTLP's SeverityNumber for a logging level, as OpenTelemetry's own handler maps it:
    DEBUG 5, INFO 9, WARNING 13, ERROR 17, CRITICAL 21, levels between them in the steps
    (DEBUG2...) up to the next name's; below DEBUG, unspecified."""
    if levelno < logging.DEBUG:
        return 0
    name, step = divmod(min(levelno, 53) - logging.DEBUG, 10)
    return 5 + 4 * name + min(step, 3)


def record_logs_call(payload: str) -> Call:
    """record_logs' answer: {"stored", "rejected", "error_message"}."""
    return Call(RECORD_LOGS, (payload,), first_value)


class PostgresLogHandler(logging.Handler):
    """A logging handler storing records in `monitoring.logs` (needs monitoring_writer).

    `source`: a DSN (a small pool of its own), a psycopg_pool.ConnectionPool, or a
    psycopg.Connection used by the handler's thread alone. `service` is the resource's
    `service.name` (default: OTEL_SERVICE_NAME, else the tracker's service, else
    "unknown_service:python"); `resource` adds resource attributes. At most `max_queue`
    records wait; a batch holds up to `batch_size` and may take `timeout` seconds.

    Counters: `stored_records`, `rejected_records` (refused one by one by the SQL, reason
    logged), `dropped_records` (the queue full, a batch refused whole, or left at close).
    """

    def __init__(
        self,
        source: Source,
        *,
        level: int = logging.NOTSET,
        service: str | None = None,
        resource: Mapping[str, Any] | None = None,
        tracker: Any = None,
        capture_level: int = logging.ERROR,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(level)
        self.tracker = tracker
        self.capture_level = capture_level
        self.timeout = timeout
        self.service = (
            service
            or os.environ.get("OTEL_SERVICE_NAME")
            or getattr(tracker, "service", None)
            or "unknown_service:python"
        )
        self._connector = Connector(source, name="log handler")
        self._batcher = ThreadBatcher(
            self._send,
            max_queue=max_queue,
            batch_size=batch_size,
            retry_delay=self._connector.breaker.wait_time,
            name="pg_monitoring-logs",
        )
        head = {
            **otlp_json.resource({**(resource or {}), "service.name": self.service}),
            "scopeLogs": [{"scope": otlp_json.scope("pg_monitoring.logs"), "logRecords": []}],
        }
        # The request around a batch: its records are JSON already, joined in between.
        text = json.dumps({"resourceLogs": [head]})
        self._prefix, self._suffix = text.split('"logRecords": []')
        self._prefix += '"logRecords": ['
        self._suffix = "]" + self._suffix
        self._sending = threading.local()
        self._counts = threading.Lock()
        self._logged_at: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stored_records = 0
        self.rejected_records = 0
        self.dropped_records = 0

    @property
    def breaker(self) -> Any:
        return self._connector.breaker

    @property
    def queued_records(self) -> int:
        """Records not known to be stored yet: queued, and in the batch being sent."""
        return len(self._batcher)

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._sending, "active", False):
            return  # the handler's own thread (the breaker's warnings): no feedback loop
        try:
            payload = json.dumps(self.encode(record), allow_nan=False, default=str)
            if not self._batcher.put(payload):
                self._count("dropped", 1, "the log queue is full (or the handler closed)")
            if (
                self.tracker is not None
                and record.levelno >= self.capture_level
                and record.exc_info
                and record.exc_info[1] is not None
                and not was_captured(record.exc_info[1])
            ):
                self._capture(record)
        except Exception:
            self.handleError(record)

    def encode(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as an OTLP LogRecord (JSON mapping)."""
        ids = current_ids()
        attributes: dict[str, Any] = {
            # OpenTelemetry's record id: record_logs stores a batch sent again once
            "log.record.uid": uuid.uuid4().hex,
            "logger.name": record.name,
            "code.filepath": record.pathname,
            "code.function": record.funcName,
            "code.lineno": record.lineno,
            "thread.name": record.threadName,
        }
        if "request_id" in ids:
            attributes["request.id"] = ids["request_id"]
        attributes.update(extra_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            kind, value, tb = record.exc_info
            attributes["exception.type"] = kind.__qualname__
            attributes["exception.message"] = str(value)
            attributes["exception.stacktrace"] = "".join(
                traceback.format_exception(kind, value, tb)
            )
        elif record.stack_info:
            attributes["code.stacktrace"] = record.stack_info
        encoded: dict[str, Any] = {
            "timeUnixNano": str(int(record.created * 1e9)),
            "observedTimeUnixNano": str(time.time_ns()),
            "severityNumber": severity_number(record.levelno),
            "severityText": record.levelname,
            "body": {"stringValue": record.getMessage()},
            "attributes": otlp_json.attributes(attributes),
        }
        if "trace_id" in ids:
            encoded["traceId"] = ids["trace_id"]
            encoded["spanId"] = ids["span_id"]
        return encoded

    def _capture(self, record: logging.LogRecord) -> None:
        assert record.exc_info is not None
        error = record.exc_info[1]
        assert error is not None
        mark_captured(error)
        context = {"logger": record.name, "log_message": record.getMessage()}
        rid = request_id.get()
        if rid is not None:
            context["request_id"] = rid
        context.update(extra_fields(record))
        outcome = self.tracker.capture_exception(
            error, level=record.levelname.lower(), context=context, tags={"logger": record.name}
        )
        if inspect.isawaitable(outcome):  # an AsyncErrorTracker: in the running loop
            try:
                task = asyncio.get_running_loop().create_task(outcome)  # type: ignore[arg-type]
            except RuntimeError:  # no loop here: the coroutine can not run
                outcome.close()  # type: ignore[union-attr]
            else:
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _send(self, batch: list[str]) -> list[str]:
        """One record_logs call; returns the batch to send again when the database was
        not reached."""
        self._sending.active = True
        try:
            result = self._connector.run(
                record_logs_call(self._prefix + ",".join(batch) + self._suffix), self.timeout
            )
        except UnavailableError:
            return batch
        except Exception as error:
            self._count("dropped", len(batch), f"record_logs failed: {error}")
            return []
        finally:
            self._sending.active = False
        with self._counts:
            self.stored_records += result["stored"]
        if result["rejected"]:
            self._count("rejected", result["rejected"], result["error_message"])
        return []

    def flush(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> bool:  # type: ignore[override]
        """Waits until the queue is stored (trying the database at once, should it be
        waiting out a backoff); False on timeout."""
        self._connector.breaker.hurry()
        return self._batcher.flush(timeout)

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:  # type: ignore[override]
        """Sends what is queued (waiting at most `timeout`), counts the rest as dropped and
        closes the pool made from a DSN."""
        self._connector.breaker.hurry()
        left = self._batcher.close(timeout)
        if left:
            self._count("dropped", left, f"not stored within {timeout} s of close")
        self._connector.close()
        super().close()

    def _count(self, kind: str, count: int, why: str) -> None:
        with self._counts:
            setattr(self, f"{kind}_records", getattr(self, f"{kind}_records") + count)
            now = time.monotonic()
            if now - self._logged_at.get(kind, -LOG_INTERVAL) < LOG_INTERVAL:
                return
            self._logged_at[kind] = now
        self._sending.active = True  # our own warning is not stored through ourselves
        try:
            logger.warning("pg_monitoring: log handler: %s %s records: %s", kind, count, why)
        finally:
            self._sending.active = False


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What `extra=` put on the record."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }
