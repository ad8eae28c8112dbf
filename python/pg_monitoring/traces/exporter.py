"""PostgresSpanExporter: the OpenTelemetry SDK's spans into `monitoring.spans`.

    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(BatchSpanProcessor(PostgresSpanExporter(pool)))

Each export is one call of `monitoring.record_spans` with the batch in OTLP's JSON mapping,
as OpenTelemetry's own encoder (opentelemetry-exporter-otlp-json-common) writes it.
Behind `BatchSpanProcessor` (on its thread) an export never raises and never holds longer
than `timeout`: while the database is away the connector's circuit breaker refuses at once,
the export returns FAILURE and its spans are counted in `dropped_spans` (the SDK drops a
failed batch). The SQL stores a span once by its trace id, span id and start, so a batch
sent again (an uncertain commit, another exporter) adds nothing: `duplicate_spans` counts
them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._db.connection import Connector, Source
from .._db.warnings import QuietWarnings
from ..errors import UnavailableError
from .calls import record_spans_call

# One batch of BatchSpanProcessor (512 spans by default) is stored in tens of milliseconds;
# this bounds the wait for a pooled connection and a server that hangs.
DEFAULT_EXPORT_TIMEOUT = 5.0


class PostgresSpanExporter(SpanExporter):
    """Exports spans through `monitoring.record_spans` (needs monitoring_writer).

    `source` is a DSN (the exporter then makes a small pool of its own, opened at the first
    export), a psycopg_pool.ConnectionPool or a psycopg.Connection. Give it a pool or a DSN of
    its own: an export commits on its own, and on an application's connection it would join
    whatever transaction is open there.

    Counters, read at any time: `exported_spans` (stored now), `duplicate_spans` (stored
    before), `rejected_spans` (refused by the SQL one by one, with a reason logged as a
    warning at most every 10 s), `dropped_spans` (in a batch that failed: the database
    unreachable, no answer within `timeout`, or the call refused whole).
    """

    def __init__(self, source: Source, *, timeout: float = DEFAULT_EXPORT_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
        self.timeout = timeout
        self._connector = Connector(source, name="span exporter")
        self._shutdown = False
        self._counts = threading.Lock()
        self._warn = QuietWarnings("span exporter").warn
        self.exported_spans = 0
        self.duplicate_spans = 0
        self.rejected_spans = 0
        self.dropped_spans = 0

    @property
    def breaker(self) -> Any:
        """The connector's circuit breaker (`breaker.closed`: the database reachable)."""
        return self._connector.breaker

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            payload = encode_spans(spans).to_json()
            result = self._connector.run(record_spans_call(payload), self.timeout)
        except UnavailableError as error:
            self._dropped(len(spans), "unreachable", f"the database is unreachable ({error})")
            return SpanExportResult.FAILURE
        except Exception as error:
            self._dropped(len(spans), "failed", f"record_spans failed: {error}")
            return SpanExportResult.FAILURE
        with self._counts:
            self.exported_spans += result["stored"]
            self.duplicate_spans += result.get("duplicates", 0)
            self.rejected_spans += result["rejected"]
        if result["rejected"]:
            self._warn("rejected", f"record_spans refused spans: {result['error_message']}")
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing waits here: each export is stored, or failed, before it returns."""
        return True

    def shutdown(self) -> None:
        """Later exports fail at once; closes the pool made from a DSN (a caller's stays)."""
        if self._shutdown:
            return
        self._shutdown = True
        self._connector.close()

    def _dropped(self, count: int, kind: str, message: str) -> None:
        with self._counts:
            self.dropped_spans += count
        self._warn(kind, f"{message}; {count} spans dropped ({self.dropped_spans} so far)")
