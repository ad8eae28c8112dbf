"""POST /v1/traces, /v1/logs and /v1/metrics: OTLP/HTTP, each request one call of
`monitoring.record_spans`, `record_logs` or `record_metrics` per batch of items (of metrics'
data points), in one transaction.

One transaction: a request is stored whole or not at all, so the retry a 503 asks for
stores nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..._db.connection_async import AsyncConnector
from ...errors import InvalidArgumentError, PgMonitoringError, UnavailableError
from .. import decompress, jsonb, otlp
from ..auth import bearer_key
from ..responses import status_response, unavailable

logger = logging.getLogger("pg_monitoring.server")

# The longest error_message a partial success carries.
MAX_ERROR_MESSAGE = 1000


async def export(request: Request, signal: otlp.Signal) -> Response:
    state = request.app.state
    kind = otlp.media_type(request.headers.get("content-type"))
    if kind is None:
        return status_response(415, f"Content-Type must be {otlp.PROTOBUF} or {otlp.JSON}", None)
    if not state.config.allow_anonymous:
        try:
            allowed = await state.keys.allows(
                bearer_key(request.headers.get("authorization")), signal.scope
            )
        except UnavailableError:
            return unavailable(kind)
        if not allowed:
            return status_response(
                401,
                f"a valid ingest key with scope {signal.scope} is needed "
                "(Authorization: Bearer <key>)",
                kind,
                {"WWW-Authenticate": "Bearer"},
            )
    try:
        body = await decompress.read_body(
            request.stream(), request.headers.get("content-encoding"), state.config.max_body
        )
        # a thread: decoding 16 MiB takes seconds, which the event loop's other requests
        # (a health check, a 401) should not wait
        payload = await run_in_threadpool(otlp.decode, body, kind, signal)
        del body
        rejected, error_message = await record(
            state.database, signal, payload, state.config.db_timeout
        )
    except decompress.BodyError as error:  # otlp.decode's too
        return status_response(error.status, error.message, kind)
    except UnavailableError:
        return unavailable(kind)
    except InvalidArgumentError as error:
        return status_response(400, str(error), kind)
    except PgMonitoringError as error:
        logger.error("%s failed: %s", signal.function, error)
        return status_response(500, str(error).splitlines()[0], kind)
    return Response(otlp.encode_response(signal, kind, rejected, error_message), media_type=kind)


async def record(
    database: AsyncConnector, signal: otlp.Signal, payload: dict[str, Any], timeout: float
) -> tuple[int, str]:
    """Stores `payload` in batches; (items rejected, why) as the SQL said."""
    rejected = 0
    messages: list[str] = []
    parts = otlp.batches(payload, signal)
    first = next(parts, None)
    if first is None:
        return 0, ""
    async with database.transaction(timeout) as conn:
        for batch, _count in (first, *parts):
            # orjson: a fifth of json's time, on the event loop's thread (NaN and infinities,
            # which JSON has no numbers for, are strings already: otlp.decode); a NUL,
            # which jsonb refuses, made U+FFFD
            cursor = await conn.execute(signal.query, (Jsonb(batch, dumps=jsonb.dumps),))
            row = await cursor.fetchone()
            result = (row[0] if row else None) or {}
            rejected += int(result.get("rejected") or 0)
            message = result.get("error_message")
            if message and message not in messages:
                messages.append(message)
    return rejected, "; ".join(messages)[:MAX_ERROR_MESSAGE]


async def traces(request: Request) -> Response:
    return await export(request, otlp.TRACES)


async def logs(request: Request) -> Response:
    return await export(request, otlp.LOGS)


async def metrics(request: Request) -> Response:
    return await export(request, otlp.METRICS)


ROUTES = [
    Route("/v1/traces", traces, methods=["POST"]),
    Route("/v1/logs", logs, methods=["POST"]),
    Route("/v1/metrics", metrics, methods=["POST"]),
]
