"""`make bench-otlp`: spans end to end over OTLP/HTTP, from OpenTelemetry's own exporter
(opentelemetry-exporter-otlp-proto-http, protobuf) through `pg-monitoring serve` into
`monitoring.record_spans`, as an instrumented application sends them.

The spans are made first by the real SDK (a TracerProvider, 5-span traces like
bench/spans_bench.py's, recorded in memory), then BENCH_CLIENTS exporters (default 4, each
its own thread and HTTP connection, as 4 application processes would) export them in the
SDK's batches of 512. Spans/s = spans stored / wall time, median of BENCH_RUNS rounds. Then
the same with the exporter's encoding done beforehand: serve and the database alone.
Goal (issue 13): >= 10,000 spans/s on this 2-core machine (the server, the database and the
exporters share it).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clients import at_once, start_serve

from pg_monitoring import installer

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
ROUNDS = int(os.environ.get("BENCH_RUNS", "3"))
SPANS = int(os.environ.get("BENCH_OTLP_SPANS", "40000"))  # per round
BATCH = 512
DATABASE = "pgm_bench_otlp"


def make_spans(count: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "checkout", "service.version": "2.4.1"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for n in range(count // 5):
        route = ("/pay", "/cart", "/items/{id}", "/orders/{id}")[n % 4]
        with tracer.start_as_current_span(
            f"POST {route}",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "POST",
                "http.route": route,
                "http.response.status_code": 200,
                "url.path": route.replace("{id}", str(n)),
                "url.scheme": "https",
                "server.address": "shop.example.com",
                "client.address": f"10.0.{n % 256}.{n % 251}",
                "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0",
                "network.protocol.version": "1.1",
                # random, as request ids are: a counter's 16 decimal digits would look like a
                # card number, and every span would take the scrubbing path (see BENCHMARKS.md)
                "request.id": f"{random.getrandbits(64):016x}",
            },
        ) as root:
            for name, kind in (
                ("SELECT shop.orders", SpanKind.CLIENT),
                ("GET payments", SpanKind.CLIENT),
                ("render", SpanKind.INTERNAL),
                ("validate", SpanKind.INTERNAL),
            ):
                with tracer.start_as_current_span(name, kind=kind):
                    pass
            if n % 50 == 0:
                root.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return list(memory.get_finished_spans())


def export_all(url: str, spans: list[ReadableSpan]) -> float:
    def client(share: list[ReadableSpan], ready: Callable[[], None]) -> None:
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=60)
        ready()
        for i in range(0, len(share), BATCH):
            if exporter.export(share[i : i + BATCH]) is not SpanExportResult.SUCCESS:
                raise RuntimeError("an export failed")
        exporter.shutdown()

    return at_once([spans[i::CLIENTS] for i in range(CLIENTS)], client)


def post_all(url: str, spans: list[ReadableSpan]) -> float:
    """The same exports with the exporter's work done beforehand: its encoder's bodies,
    posted as it posts them. What serve and the database take, without the exporters' share
    of the same two cores."""

    def client(bodies: list[bytes], ready: Callable[[], None]) -> None:
        with requests.Session() as session:
            ready()
            for body in bodies:
                response = session.post(
                    f"{url}/v1/traces",
                    data=body,
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=60,
                )
                if response.status_code != 200:
                    raise RuntimeError(f"a post failed: {response.status_code}")

    shares = [
        [
            encode_spans(share[i : i + BATCH]).SerializePartialToString()
            for i in range(0, len(share), BATCH)
        ]
        for share in (spans[c::CLIENTS] for c in range(CLIENTS))
    ]
    return at_once(shares, client)


def main() -> None:
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = f"dbname={DATABASE}"
    with psycopg.connect(dsn) as conn:
        installer.install(conn)
        conn.execute("SELECT monitoring.run_maintenance()")
    process, url = start_serve(dsn, "--allow-anonymous")
    try:
        rates: list[float] = []
        posted: list[float] = []
        for _ in range(ROUNDS):
            spans = make_spans(SPANS)
            rates.append(len(spans) / export_all(url, spans))
            spans = make_spans(SPANS)
            posted.append(len(spans) / post_all(url, spans))
        with psycopg.connect(dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM monitoring.trace_spans").fetchone()[0]
        assert stored == 2 * ROUNDS * len(spans), (stored, 2 * ROUNDS * len(spans))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    print(f"OTLP/HTTP end to end: {CLIENTS} exporters, batches of {BATCH}, {SPANS:,} spans a round")
    print(
        f"   {statistics.median(rates):10,.0f} spans/s   "
        f"(rounds: {', '.join(f'{r:,.0f}' for r in rates)}; every span stored)"
    )
    print("   ... serve and SQL alone (the exporter's bodies encoded beforehand, same posts):")
    print(
        f"   {statistics.median(posted):10,.0f} spans/s   "
        f"(rounds: {', '.join(f'{r:,.0f}' for r in posted)})"
    )
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
