"""GET /metrics: Prometheus's text exposition. `monitoring.prometheus_metrics()` (what the
database knows) followed by this process's own prometheus_client registry, when that
package is installed. Needs a key with the scrape scope (unless --allow-anonymous), and
serve's database role needs monitoring_reader: a writer reads nothing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ...errors import PermissionDeniedError, PgMonitoringError, UnavailableError
from ..auth import bearer_key
from ..responses import RETRY_AFTER_SECONDS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCOPE = "scrape"
# a scrape that takes longer is one Prometheus has given up on (its default timeout: 10 s)
TIMEOUT = 10.0

try:
    from prometheus_client import REGISTRY, generate_latest
except ImportError:  # the prometheus extra is not installed: the database's metrics only
    REGISTRY = None


def _failure(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


async def metrics(request: Request) -> Response:
    state = request.app.state
    try:
        if not state.config.allow_anonymous and not await state.keys.allows(
            bearer_key(request.headers.get("authorization")), SCOPE
        ):
            return _failure(
                401,
                f"a valid key with scope {SCOPE} is needed (Authorization: Bearer <key>)",
                {"WWW-Authenticate": "Bearer"},
            )
        page = await state.database.fetch_value(
            "SELECT monitoring.prometheus_metrics()", (), TIMEOUT
        )
    except UnavailableError:
        return _failure(
            503, "the database is unavailable", {"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    except PermissionDeniedError:
        return _failure(
            500,
            "serve's database role may not read the metrics: GRANT monitoring_reader to it",
        )
    except PgMonitoringError as error:
        return _failure(500, str(error).splitlines()[0])
    if REGISTRY is not None:
        page += generate_latest(REGISTRY).decode()
    return Response(page, media_type=CONTENT_TYPE)


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
