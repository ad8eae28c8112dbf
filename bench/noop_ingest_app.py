"""The floor of one request per event on this machine, for bench/envelope_bench.py: uvicorn
and Starlette as `pg-monitoring serve` runs them, reading the body and answering as the Sentry
ingest does, with no decompression, parsing or database call."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def envelope(request: Request) -> Response:
    await request.body()
    return JSONResponse({"id": None})


app = Starlette(routes=[Route("/api/{project_id:int}/envelope/", envelope, methods=["POST"])])
