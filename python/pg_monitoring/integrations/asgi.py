"""MonitoringMiddleware: what every request of an ASGI application (FastAPI, Starlette...)
should leave behind, in one pure ASGI middleware.

    app = FastAPI()
    app.add_middleware(MonitoringMiddleware, tracker=tracker)
    # or, outermost, so that the server's own 500 responses carry the request id too:
    app = MonitoringMiddleware(app, tracker=tracker)

For each HTTP request:

- a request id: the `X-Request-ID` header when the client sent a usable one (at most 200
  printable ASCII characters), else a new one; echoed in the response's `X-Request-ID` and
  set in `pg_monitoring.logs.request_id` (a contextvar) for the log handler and formatter;
- a server span, when opentelemetry is installed and no span is active yet, continuing the
  caller's trace from `traceparent`, named `METHOD route` once routed. When a span is
  active already, made by an instrumentation outside (FastAPI's own telemetry, which wraps
  the middleware that `add_middleware` adds, or opentelemetry-instrumentation-asgi), that
  span is the request's: it gains the request id, and its instrumentation records the rest.
  Wrapped outside a FastAPI application whose own tracing is on, the middleware's span and
  FastAPI's would be two traces: then create the app with `telemetry={"tracing": False}`;
- one log line when it ends (`GET /items/{item_id} 200 in 12.3 ms`, INFO, with the fields as
  `extra=`), a WARNING instead over `slow_request_seconds`, an ERROR with the exception when
  it failed;
- the exception, with `tracker`, captured with the request (method, route, path, query
  string, headers as [name, value] pairs, client) in its context; the SQL scrubs secrets out
  of them (`Authorization`, cookies, `password=` in the query) as it does for every event;
- with prometheus_client installed, the design document's metrics
  (pg_monitoring.monitoring.metrics): `pg_monitoring_graphql_requests_total{operation,
  status}` ("success" below 400, else "error") and
  `pg_monitoring_graphql_request_duration_seconds{operation}`, where the operation is the client's
  `X-Operation-Name` (as the document reads it) or else the route's template, never the
  raw path.

WebSocket and lifespan messages pass through untouched.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from ..logs.context import mark_captured, request_id

try:
    from opentelemetry import context as _otel_context
    from opentelemetry import propagate as _otel_propagate
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - exercised where opentelemetry is absent
    _otel_trace = None  # type: ignore[assignment]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "x-request-id"
OPERATION_HEADER = "x-operation-name"
DEFAULT_SLOW_REQUEST_SECONDS = 1.0
_MAX_ID = 200
_MAX_OPERATION = 100


class MonitoringMiddleware:
    """See the module's documentation. Options:

    `tracker`: an ErrorTracker (prefer `background=True`: a capture then never holds the
    event loop) or an AsyncErrorTracker; None captures nothing. `logger`: where the request
    lines go (default `pg_monitoring.requests`). `slow_request_seconds`: the WARNING's
    threshold (None: never). `tracing`, `metrics`: False turns them off (default: on when
    opentelemetry, resp. prometheus_client, is installed); `registry`: the metrics'
    CollectorRegistry (default: prometheus_client's). `context`: a function of the ASGI
    scope returning more context for a captured error (`{"user_id": ...}`), called after
    the application ran, so it sees what the application put in `scope["state"]`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracker: Any = None,
        logger: logging.Logger | None = None,
        slow_request_seconds: float | None = DEFAULT_SLOW_REQUEST_SECONDS,
        tracing: bool | None = None,
        metrics: bool | None = None,
        registry: Any = None,
        context: Callable[[Scope], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.app = app
        self.tracker = tracker
        self.logger = logger or logging.getLogger("pg_monitoring.requests")
        self.slow_request_seconds = slow_request_seconds
        self.context = context
        self._tracer = None
        if _otel_trace is not None and tracing is not False:
            self._tracer = _otel_trace.get_tracer("pg_monitoring.asgi")
        elif tracing:
            raise RuntimeError("tracing=True needs opentelemetry (pg-monitoring[otel])")
        self._metrics = None
        if metrics is not False:
            try:
                self._metrics = request_metrics(registry)
            except ImportError:
                if metrics:
                    raise

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(scope)
        rid_token = request_id.set(request.id)
        span, span_token = self._start_span(request)
        status: int | None = None
        error: BaseException | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _value in headers):
                    headers.append((b"x-request-id", request.id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            error = exc
            await self._capture(request, exc)
            raise
        finally:
            # An exception before the response: the server answers 500.
            final = status if status is not None else 500
            request.finish()
            self._log(request, final, error)  # in the span, so the line carries its ids
            self._end_span(span, span_token, request, final, error)
            if self._metrics is not None:
                self._observe(request, final)
            request_id.reset(rid_token)

    # The parts, each on its own -------------------------------------------------------

    def _start_span(self, request: _Request) -> tuple[Any, Any]:
        if self._tracer is None:
            return None, None
        current = _otel_trace.get_current_span()
        if current.get_span_context().is_valid:  # an instrumentation outside made it
            current.set_attribute("request.id", request.id)
            return current, None
        parent = _otel_propagate.extract(request.header_map())
        span = self._tracer.start_span(
            f"{request.method} {request.path}",
            context=parent,
            kind=_otel_trace.SpanKind.SERVER,
            attributes=request.span_attributes(),
        )
        token = _otel_context.attach(_otel_trace.set_span_in_context(span, parent))
        return span, token

    def _end_span(
        self, span: Any, token: Any, request: _Request, status: int, error: BaseException | None
    ) -> None:
        if token is None:
            return  # not ours: its instrumentation records the outcome
        span.set_attribute("http.response.status_code", status)
        if request.route is not None:
            span.set_attribute("http.route", request.route)
        if error is not None:
            span.record_exception(error)
        if error is not None or status >= 500:
            description = f"{type(error).__name__}: {error}" if error is not None else None
            span.set_status(_otel_trace.Status(_otel_trace.StatusCode.ERROR, description))
        span.update_name(request.name)
        span.end()
        _otel_context.detach(token)

    async def _capture(self, request: _Request, error: BaseException) -> None:
        if self.tracker is None:
            return
        mark_captured(error)  # the server's log line of it must not capture it again
        context: dict[str, Any] = {"request_id": request.id, "request": request.as_context()}
        if self.context is not None:
            try:
                context.update(self.context(request.scope) or {})
            except Exception:
                self.logger.exception("pg_monitoring: the middleware's context function failed")
        outcome = self.tracker.capture_exception(error, context=context, transaction=request.name)
        if inspect.isawaitable(outcome):
            await outcome

    def _log(self, request: _Request, status: int, error: BaseException | None) -> None:
        fields = request.log_fields(status)
        line = f"{request.name} {status} in {request.duration_ms:.1f} ms"
        if error is not None:
            self.logger.error(
                "request failed: %s: %s", line, type(error).__name__, extra=fields, exc_info=error
            )
        elif (
            self.slow_request_seconds is not None
            and request.duration_ms >= self.slow_request_seconds * 1000
        ):
            self.logger.warning(
                "slow request: %s (over %s s)", line, self.slow_request_seconds, extra=fields
            )
        else:
            self.logger.info("%s", line, extra=fields)

    def _observe(self, request: _Request, status: int) -> None:
        assert self._metrics is not None
        total, duration = self._metrics
        operation = request.operation()
        total.labels(operation=operation, status="success" if status < 400 else "error").inc()
        duration.labels(operation=operation).observe(request.duration_ms / 1000)


class _Request:
    """What the middleware reads of one request's scope."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.started = time.perf_counter()
        self.method: str = scope.get("method", "")
        self.path: str = scope.get("path", "")
        self.headers: list[tuple[str, str]] = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in scope.get("headers", [])
        ]
        sent = self.header(REQUEST_ID_HEADER)
        self.id = sent if _usable_id(sent) else uuid.uuid4().hex
        self.duration_ms = 0.0

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def header_map(self) -> dict[str, str]:
        return dict(self.headers)

    @property
    def name(self) -> str:
        """METHOD and route template (the path until routed, or when no route matched)."""
        return f"{self.method} {self.route or self.path}"

    @property
    def query_string(self) -> str:
        return bytes(self.scope.get("query_string", b"")).decode("latin-1")

    @property
    def client(self) -> str | None:
        client = self.scope.get("client")
        return None if not client else str(client[0])

    @property
    def route(self) -> str | None:
        """The route's template once routed: Starlette's and FastAPI's routers set it."""
        route = self.scope.get("route")
        return getattr(route, "path", None) or (route if isinstance(route, str) else None)

    def finish(self) -> None:
        self.duration_ms = (time.perf_counter() - self.started) * 1000

    def operation(self) -> str:
        sent = self.header(OPERATION_HEADER)
        if sent:
            return sent[:_MAX_OPERATION]
        return self.route or "unknown"

    def span_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "http.request.method": self.method,
            "url.path": self.path,
            "url.scheme": self.scope.get("scheme", "http"),
            "request.id": self.id,
        }
        if self.query_string:
            attributes["url.query"] = self.query_string
        if self.client:
            attributes["client.address"] = self.client
        agent = self.header("user-agent")
        if agent:
            attributes["user_agent.original"] = agent
        return attributes

    def as_context(self) -> dict[str, Any]:
        """The request as an error's context holds it; secrets are the SQL's to scrub."""
        return {
            "method": self.method,
            "url": self.path,
            "route": self.route,
            "query_string": self.query_string,
            "headers": [[name, value] for name, value in self.headers],
            "client": self.client,
        }

    def log_fields(self, status: int) -> dict[str, Any]:
        return {
            "request_id": self.id,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "status_code": status,
            "duration_ms": round(self.duration_ms, 3),
            "client_ip": self.client,
            "user_agent": self.header("user-agent"),
        }


def _usable_id(value: str | None) -> bool:
    return bool(value) and len(value) <= _MAX_ID and value.isascii() and value.isprintable()  # type: ignore[union-attr]


def request_metrics(registry: Any = None) -> tuple[Any, Any]:
    """The design document's request counter and histogram on `registry` (default:
    prometheus_client's): pg_monitoring.monitoring.metrics's families, made once per
    registry."""
    from ..monitoring.metrics import MetricsCollector

    collector = MetricsCollector(registry)
    return collector.graphql_requests_total, collector.graphql_request_duration
