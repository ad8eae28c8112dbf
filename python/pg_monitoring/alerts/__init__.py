"""Alert delivery: the worker that drains `monitoring.alert_outbox`, and its senders.

Whether an alert fires is decided in SQL (sql/alerts.sql); this package renders and sends.
Receivers of webhooks check signatures with `verify_signature`. Imported lazily, so that
`import pg_monitoring` does not load the HTTP client.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DeliveryError": "senders",
    "Notification": "senders",
    "verify_signature": "senders",
    "Outcome": "worker",
    "Worker": "worker",
    "WorkerOptions": "worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
