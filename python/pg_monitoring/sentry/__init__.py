"""The real sentry-sdk (2.x) reporting into PostgreSQL: `PostgresTransport` (transport.py)
queues the SDK's envelopes and stores their items from a worker thread; items.py converts
them to what the stored functions take (serve's Sentry ingest uses it too, without the SDK).
Needs `pg-monitoring[sentry]`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .transport import PostgresTransport

__all__ = ["PostgresTransport", "project_dsn"]


def project_dsn(public_key: str, host: str, project_id: int, scheme: str = "http") -> str:
    """The DSN a Sentry SDK is given for a project of `pg-monitoring serve` (`projects add`
    prints it): <scheme>://<public key>@<host>/<project id>."""
    return f"{scheme}://{public_key}@{host}/{project_id}"


def __getattr__(name: str) -> Any:
    # imported when asked for: items.py needs no sentry-sdk, and serve does not install it
    if name == "PostgresTransport":
        from .transport import PostgresTransport

        return PostgresTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
