"""Traces from Python: `PostgresSpanExporter`, the OpenTelemetry SDK's exporter into
`monitoring.spans` (exporter.py, which needs `pg-monitoring[otel]`), and the OTLP JSON
encoding it sends (otlp_json.py, which the log handler shares and needs nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exporter import PostgresSpanExporter

__all__ = ["PostgresSpanExporter"]


def __getattr__(name: str) -> Any:
    # Imported when asked for: `traces.otlp_json` must import without opentelemetry-sdk.
    if name == "PostgresSpanExporter":
        from .exporter import PostgresSpanExporter

        return PostgresSpanExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
