"""A small FastAPI application instrumented as the README says, served by uvicorn in the
tests (tests/test_asgi_middleware.py): the OpenTelemetry SDK exporting through
PostgresSpanExporter, PostgresLogHandler on the root logger with the error tracker, JSON
lines on stdout, and MonitoringMiddleware outermost.

Configured by environment: PGM_APP_DSN (a monitoring_writer), PGM_APP_SLOW (the slow-request
threshold in seconds), PGM_APP_MODE (see MODE), and PGM_APP_OTLP with PGM_APP_KEY: then the
spans go over OTLP/HTTP through `pg-monitoring serve` at that URL, with OpenTelemetry's own
exporter, rather than through PostgresSpanExporter.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import generate_latest

from pg_monitoring import ErrorTracker
from pg_monitoring.integrations.asgi import MonitoringMiddleware
from pg_monitoring.logs import JsonFormatter, PostgresLogHandler
from pg_monitoring.traces import PostgresSpanExporter

DSN = os.environ["PGM_APP_DSN"]

OTLP = os.environ.get("PGM_APP_OTLP")
if OTLP:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter: Any = OTLPSpanExporter(
        endpoint=f"{OTLP}/v1/traces",
        headers={"Authorization": f"Bearer {os.environ['PGM_APP_KEY']}"},
    )
else:
    exporter = PostgresSpanExporter(DSN, timeout=1.0)
provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("shop")

tracker = ErrorTracker(DSN, service="shop", environment="test", background=True)
log_handler = PostgresLogHandler(DSN, service="shop", tracker=tracker)
stdout = logging.StreamHandler(sys.stdout)
stdout.setFormatter(JsonFormatter())
logging.basicConfig(level=logging.INFO, handlers=[log_handler, stdout], force=True)
logger = logging.getLogger("shop")


class PaymentTimeout(Exception):
    pass


# "inside": added with add_middleware, inside FastAPI's own telemetry, whose server span the
# middleware then annotates; "outside": wrapped around the app, making the span itself.
MODE = os.environ.get("PGM_APP_MODE", "inside")
api = FastAPI(telemetry={"tracing": MODE == "inside"})


@api.get("/items/{item_id}")
def item(item_id: int) -> dict[str, int]:
    logger.info("item %s looked up", item_id)
    return {"id": item_id}


@api.get("/pay")
def pay(request: Request, order: int = 1234) -> dict[str, str]:
    request.state.user_id = "7"
    with tracer.start_as_current_span("charge", attributes={"order.id": order}):
        logger.warning("charging order %s", order)
        raise PaymentTimeout(f"gateway timed out after 30s for order {order}")


@api.get("/slow")
def slow() -> dict[str, str]:
    time.sleep(0.3)
    return {"ok": "slowly"}


@api.get("/stats")
def stats() -> dict[str, int]:
    return {
        # OpenTelemetry's exporter keeps no counts: serve's answer is its record
        "exported_spans": getattr(exporter, "exported_spans", -1),
        "dropped_spans": getattr(exporter, "dropped_spans", -1),
        "stored_records": log_handler.stored_records,
        "dropped_records": log_handler.dropped_records,
        "queued_records": log_handler.queued_records,
        "queued_events": tracker.queued_events,
    }


@api.get("/metrics")
def metrics() -> PlainTextResponse:
    return PlainTextResponse(generate_latest().decode())


options = {
    "tracker": tracker,
    "slow_request_seconds": float(os.environ.get("PGM_APP_SLOW", "0.2")),
    "context": lambda scope: {"user_id": scope.get("state", {}).get("user_id")},
}
if MODE == "inside":
    api.add_middleware(MonitoringMiddleware, **options)
    app: Any = api
else:
    app = MonitoringMiddleware(api, **options)
