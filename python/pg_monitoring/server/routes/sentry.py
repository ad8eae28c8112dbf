"""POST /api/<project id>/envelope/ and the legacy /api/<project id>/store/: Sentry's ingest
protocol, for any Sentry SDK given a DSN from `pg-monitoring projects add`. Each request is
one call of `monitoring.sentry_ingest`, which checks the key and the project's quota, stores
and counts; envelopes.py reads and sorts the body before it.

Requests that arrive while earlier ones are being stored go in one call of
`monitoring.sentry_ingest_many` (batching.py): one transaction for many, each answered alone.

The DSN's public key comes from `X-Sentry-Auth: Sentry sentry_key=<key>, ...` (or the same
in `Authorization`), the `sentry_key` query parameter, or the envelope header's `dsn`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeAlias

import orjson
from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...errors import InvalidArgumentError, PgMonitoringError, UnavailableError
from .. import envelopes
from ..batching import Batcher
from ..responses import RETRY_AFTER_SECONDS

logger = logging.getLogger("pg_monitoring.server")

INGEST = "SELECT monitoring.sentry_ingest(%s, %s, %s::jsonb)"
INGEST_MANY = "SELECT monitoring.sentry_ingest_many(%s::jsonb)"
# A request to store: (project id, key, sentry_ingest's items as JSON bytes)
Request_: TypeAlias = tuple[int, str | None, bytes]
# Bodies up to this many bytes (decompressed) are parsed on the event loop: ~100 us for an
# event of 5 kB, less than handing it to a thread and back.
INLINE_PARSE = 64 * 1024
# sentry_ingest's status: the HTTP status Sentry answers
STATUSES = {
    "accepted": 200,
    "unauthorized": 401,
    "forbidden": 403,
    "too_large": 413,
    "rate_limited": 429,
}
MESSAGES = {
    "unauthorized": "missing authorization: a DSN's public key (sentry_key) is needed",
    "forbidden": "invalid public key for this project",
    "too_large": "too large",
    "rate_limited": "the project is over its quota",
}


def auth_key(request: Request) -> str | None:
    """The public key from X-Sentry-Auth (or Authorization: Sentry ...), else ?sentry_key=."""
    for header in ("x-sentry-auth", "authorization"):
        value = request.headers.get(header)
        if not value:
            continue
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "sentry":
            continue
        for part in rest.split(","):
            name, _, key = part.strip().partition("=")
            if name.strip() == "sentry_key" and key.strip():
                return key.strip()
    return request.query_params.get("sentry_key") or None


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def make_batcher(database: Any, timeout: float, max_calls: int) -> Batcher[Request_, Any]:
    """The Batcher the Sentry routes store through (the app makes one at startup): at most
    `max_calls` calls at once, each bounded by `timeout` seconds."""

    async def one(request: Request_) -> Any:
        project_id, key, items = request
        return await database.fetch_value(
            INGEST, (project_id, key, Jsonb(items, dumps=bytes)), timeout
        )

    async def many(requests: Sequence[Request_]) -> Any:
        argument = b"[%s]" % b",".join(
            b"[%d,%s,%s]" % (project_id, orjson.dumps(key), items)
            for project_id, key, items in requests
        )
        return await database.fetch_value(INGEST_MANY, (Jsonb(argument, dumps=bytes),), timeout)

    return Batcher(many, one, max_calls=max_calls)


async def _ingest(request: Request, parse: Any) -> Response:
    state = request.app.state
    project_id = request.path_params["project_id"]
    key = auth_key(request)
    event_id = None
    try:
        try:
            body = await envelopes.read_body(
                request.stream(), request.headers.get("content-encoding"), state.config.max_body
            )
            # a large body in a thread (converting a transaction of 1,000 spans takes a
            # while); a small one, most events, here: the hop would cost more than parsing
            if len(body) > INLINE_PARSE:
                parsed = await run_in_threadpool(parse, body)
            else:
                parsed = parse(body)
            del body
            key = key or parsed.key
            event_id = parsed.event_id
            argument = parsed.argument()
        except envelopes.EnvelopeError as error:
            if error.status != 413:
                return _error(error.status, error.message)
            # counted for the project when the key is good; answered 401/403 when it is not
            argument = b'{"too_large": {"%s": 1}}' % error.category.encode()
            key = key or error.key
        result = await state.sentry_batcher.submit((project_id, key, argument), len(argument))
    except UnavailableError:
        return _error(503, "the database is unavailable", {"Retry-After": str(RETRY_AFTER_SECONDS)})
    except InvalidArgumentError as error:
        return _error(400, str(error).splitlines()[0])
    except PgMonitoringError as error:
        logger.error("monitoring.sentry_ingest failed: %s", error)
        return _error(500, str(error).splitlines()[0])
    status = result["status"]
    if status == "accepted":
        return JSONResponse({"id": (event_id or "").replace("-", "") or None})
    headers = None
    if status == "rate_limited":
        headers = {
            "Retry-After": str(result["retry_after"]),
            "X-Sentry-Rate-Limits": result["rate_limits"],
        }
    return _error(STATUSES.get(status, 500), MESSAGES.get(status, status), headers)


async def envelope(request: Request) -> Response:
    return await _ingest(request, envelopes.parse_envelope)


async def store(request: Request) -> Response:
    return await _ingest(request, envelopes.parse_store)


ROUTES = [
    Route("/api/{project_id:int}/envelope/", envelope, methods=["POST"]),
    Route("/api/{project_id:int}/store/", store, methods=["POST"]),
]
