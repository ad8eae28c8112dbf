"""Traces from Python: `PostgresSpanExporter`, the OpenTelemetry SDK's exporter into
`monitoring.spans` (exporter.py, which needs `pg-monitoring[otel]`); what the CLI reads and
draws (reads.py, render.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exporter import PostgresSpanExporter

__all__ = ["PostgresSpanExporter"]


def __getattr__(name: str) -> Any:
    # Imported when asked for: the CLI's modules here must import without opentelemetry-sdk.
    if name == "PostgresSpanExporter":
        from .exporter import PostgresSpanExporter

        return PostgresSpanExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
