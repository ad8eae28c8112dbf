"""GET /healthz: 200 while the database answers and the server's role may use the schema
(monitoring.ingest_scopes(), which every monitoring_* role may call; version() reads a table
writers may not), else 503 (unreachable) or 500 (not installed, no grant)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...errors import PgMonitoringError, UnavailableError
from ..responses import RETRY_AFTER_SECONDS

TIMEOUT = 2.0


async def healthz(request: Request) -> Response:
    try:
        await request.app.state.database.fetch_value(
            "SELECT monitoring.ingest_scopes()", (), TIMEOUT
        )
    except UnavailableError as error:
        return JSONResponse(
            {"status": "unavailable", "error": str(error).splitlines()[0]},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except PgMonitoringError as error:
        return JSONResponse({"status": "error", "error": str(error)}, status_code=500)
    return JSONResponse({"status": "ok"})


ROUTES = [Route("/healthz", healthz, methods=["GET"])]
