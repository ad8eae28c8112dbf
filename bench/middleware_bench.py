"""What MonitoringMiddleware costs a request, with and without it, side by side in one run.

    .venv/bin/python bench/middleware_bench.py [--requests N]

A FastAPI app with one route (`GET /items/{item_id}`, returning a small JSON object) is
called in process, as its ASGI server would call it (no network, no server: what remains is
the app and the middleware), in alternating rounds of the bare app and the app wrapped in
MonitoringMiddleware, which gets what it has in production: the OpenTelemetry SDK (spans
made, ended and queued by BatchSpanProcessor, whose thread discards them: the exporter's
cost is that thread's), prometheus_client metrics, and its log line per request through a
handler that formats the record and drops it (PostgresLogHandler's emit encodes it as JSON
and queues it; storing it is its thread's work). Run by hand. No tracker: an error
capture is the tracker's cost (bench/tracker_latency.py). FastAPI's own telemetry is off in
both, so that only the middleware's span is counted. It prints p50 and p99 per request in
microseconds, the p50 difference, and what each part costs (the middleware without it);
it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from pg_monitoring.integrations.asgi import MonitoringMiddleware


class Discard(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Formatting(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


def make_app() -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/7",
    "raw_path": b"/items/7",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench"), (b"user-agent", b"bench")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
}


async def one_request(app: Any) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    started = time.perf_counter()
    await app(dict(SCOPE), receive, send)
    return time.perf_counter() - started


async def main(requests: int) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)
    logger = logging.getLogger("bench.requests")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(Formatting())
    quiet = logging.getLogger("bench.quiet")
    quiet.setLevel(logging.WARNING)
    quiet.propagate = False
    apps = {
        "bare": make_app(),
        "middleware": MonitoringMiddleware(make_app(), logger=logger),
        # what each part costs: the same without it
        "no span": MonitoringMiddleware(make_app(), logger=logger, tracing=False),
        "no metrics": MonitoringMiddleware(make_app(), logger=logger, metrics=False),
        "no log line": MonitoringMiddleware(make_app(), logger=quiet),
    }
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():  # warm up
        for _ in range(200):
            await one_request(app)
    rounds = 20
    for _ in range(rounds):
        for name, app in apps.items():
            for _ in range(requests // rounds):
                timings[name].append(await one_request(app))
    p50 = {}
    for name, values in timings.items():
        values.sort()
        p50[name] = statistics.median(values) * 1e6
        p99 = values[int(len(values) * 0.99)] * 1e6
        print(f"{name:<12} p50 {p50[name]:7.1f} µs   p99 {p99:7.1f} µs   ({len(values)} requests)")
    print(f"middleware: +{p50['middleware'] - p50['bare']:.1f} µs a request at p50, of which")
    for part in ("span", "metrics", "log line"):
        print(f"  {part:<9} {p50['middleware'] - p50['no ' + part]:6.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    asyncio.run(main(parser.parse_args().requests))
