"""The span ingest call, shared by the OpenTelemetry exporter and the Sentry transport
(here, not in exporter.py, so that the transport needs no opentelemetry-sdk)."""

from __future__ import annotations

from .._db.calls import Call, first_value

RECORD_SPANS = "SELECT monitoring.record_spans(%s::jsonb)"


def record_spans_call(payload: str) -> Call:
    """record_spans' answer: {"stored", "duplicates", "rejected", "error_message"}."""
    return Call(RECORD_SPANS, (payload,), first_value)
