"""The answers every route shares: OTLP's error body and the 503 an outage gets."""

from __future__ import annotations

from starlette.responses import Response

from .otlp import PROTOBUF, encode_status

# What a 503 asks the client to wait: the connector probes the database again within 2 s
# (its breaker's longest backoff), so a few seconds find it back.
RETRY_AFTER_SECONDS = 5


def status_response(
    http_status: int, message: str, kind: str | None, headers: dict[str, str] | None = None
) -> Response:
    """An error as OTLP answers one: a google.rpc.Status in the request's content type."""
    return Response(
        encode_status(http_status, message, kind),
        status_code=http_status,
        media_type=kind or PROTOBUF,
        headers=headers,
    )


def unavailable(kind: str | None, message: str = "the database is unavailable") -> Response:
    """503 with Retry-After: OTLP clients retry it, after the time it names."""
    return status_response(503, message, kind, {"Retry-After": str(RETRY_AFTER_SECONDS)})
