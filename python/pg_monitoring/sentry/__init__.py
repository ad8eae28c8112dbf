"""The real sentry-sdk (2.x) reporting into PostgreSQL: `PostgresTransport` (transport.py)
queues the SDK's envelopes and stores their items from a worker thread; items.py converts
them to what the stored functions take. Needs `pg-monitoring[sentry]`."""

from __future__ import annotations

from .transport import PostgresTransport

__all__ = ["PostgresTransport"]
