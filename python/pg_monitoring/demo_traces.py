"""The demo's traces part: a small instrumented web application fails a request; its spans
and log lines go over OTLP/HTTP through `pg-monitoring serve`, the middleware captures the
error, and the demo prints the trace's waterfall, its logs and the error joined to its trace
by the design document's query.

It needs what an instrumented application has (the OpenTelemetry SDK and OTLP/HTTP exporter,
Starlette): `pip install 'pg-monitoring[server,otel]' opentelemetry-exporter-otlp-proto-http`.
Without them the demo says so and goes on.
"""

# ruff: noqa: S603 - a fixed argv: this Python running pg_monitoring serve

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from . import render
from .connection import Connector
from .monitoring import ErrorTracker

Echo = Callable[[str], None]

# The design document's query, as written there.
JOINED = """
SELECT e.message, e.context->>'user_id', t.trace_id, t.duration_ms, t.status_code
FROM monitoring.errors e
LEFT JOIN monitoring.traces t ON e.trace_id = t.trace_id
WHERE e.fingerprint = %s
ORDER BY e.occurred_at DESC
"""


def traces_through_serve(conn: psycopg.Connection[Any], echo: Echo) -> None:
    try:
        import httpx
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from starlette.applications import Starlette
        from starlette.routing import Route

        from .integrations.asgi import MonitoringMiddleware
        from .logs import reads as log_reads
        from .logs import render as log_render
        from .traces import reads as trace_reads
        from .traces import render as trace_render
    except ImportError as missing:
        echo(
            f"  skipped: {missing.name} is not installed (pip install "
            "'pg-monitoring[server,otel]' opentelemetry-exporter-otlp-proto-http)"
        )
        return

    key = conn.execute("SELECT monitoring.add_ingest_key('demo', ARRAY['traces', 'logs'])")
    key = key.fetchone()[0]  # type: ignore[index]
    conn.commit()
    dsn = make_conninfo(conn.info.dsn, password=conn.info.password or None)
    with _serve(dsn) as url:
        echo(f"  pg-monitoring serve listens on {url}; the app's exporters send it OTLP/HTTP")
        headers = {"Authorization": f"Bearer {key}"}
        resource = Resource.create({"service.name": "storefront", "service.version": "2.1.0"})
        spans = TracerProvider(resource=resource)
        spans.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers))
        )
        trace.set_tracer_provider(spans)
        records = LoggerProvider(resource=resource)
        records.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs", headers=headers))
        )
        log = logging.getLogger("storefront")
        log.setLevel(logging.INFO)
        log.propagate = False
        log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=records))
        tracker = ErrorTracker(conn, environment="production", service="storefront")
        tracer = trace.get_tracer("storefront")

        async def checkout(request: Any) -> Any:
            order = request.path_params["order"]
            log.info("checkout started for order %s", order)
            with tracer.start_as_current_span("SELECT cart", kind=trace.SpanKind.CLIENT):
                await asyncio.sleep(0.004)
            with tracer.start_as_current_span("POST payments/charge", kind=trace.SpanKind.CLIENT):
                await asyncio.sleep(0.012)
                log.warning("payment gateway answered 402 for order %s", order)
            raise PaymentDeclined(f"card declined for order {order}")

        app = MonitoringMiddleware(
            Starlette(routes=[Route("/checkout/{order}", checkout, methods=["POST"])]),
            tracker=tracker,
            context=lambda scope: {"user_id": "user-42"},
            logger=log,
        )

        async def one_request() -> httpx.Response:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                return await client.post("/checkout/7001")

        response = asyncio.run(one_request())
        echo(
            f"  POST /checkout/7001 -> {response.status_code}"
            f" (X-Request-ID {response.headers.get('x-request-id')})"
        )
        spans.force_flush()
        records.force_flush()
        tracker.close()
        spans.shutdown()
        records.shutdown()

    db = Connector(conn)
    fingerprint, trace_id = conn.execute(
        "SELECT fingerprint, trace_id FROM monitoring.errors WHERE service = 'storefront' "
        "ORDER BY occurred_at DESC LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    echo(f"\n`pg-monitoring trace {trace_id}`:")
    detail = trace_reads.trace(db, trace_id)
    assert detail is not None, "the trace's spans were not stored"
    trace_render.print_waterfall(render.console(), detail)
    echo(f"\n`pg-monitoring logs --trace {trace_id}`:")
    rows = log_reads.search_logs(db, log_reads.LogFilter(trace_id=trace_id))
    log_render.print_records(render.console(soft_wrap=True), list(reversed(rows)))
    echo("\nThe design document's query, errors joined to their traces:")
    for message, user, joined, duration, status in conn.execute(JOINED, (fingerprint,)):
        echo(f"  {message} | user {user} | trace {joined} | {duration} ms | {status}")
    conn.commit()  # the reads' transaction ends here, before the alerts part writes


class PaymentDeclined(Exception):
    pass


@contextmanager
def _serve(dsn: str) -> Iterator[str]:
    """`pg-monitoring serve` on a free port of 127.0.0.1, until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "pg_monitoring", "serve", "--dsn", dsn, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pg-monitoring serve did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
