"""`make bench-traces`: span ingest, storage and trace lookup.

1. Ingest: `monitoring.record_spans` in requests of 1,000 spans (OTLP JSON, as serve and the
   exporter send them) against a bare COPY of the same spans into one naive table (one row
   per span, every span and resource attribute in one jsonb, a btree on trace_id and a GIN on
   the attributes: what a table you would write first looks like). Interleaved rounds, same
   spans, BENCH_CLIENTS (default 2) concurrent writers each; spans/s, median of rounds, and
   the ratio. Goals (issue 13): >= 20,000 spans/s, >= 0.5 of the COPY.
2a. Bytes per span (heap + TOAST + indexes) of typical HTTP server spans (10 attributes),
   BENCH_SERVER_SPANS (default 100,000) of them alone, in both layouts. Goal: <= 0.5.
2. (printed last) Bytes per span, summaries included, of all the spans loaded in 3, in both
   layouts, and of the HTTP server span's row alone.
3. Trace by id without a time range (`monitoring.trace_tree`) with BENCH_TRACE_SPANS spans
   (default 1,000,000; the issue's 5,000,000 with BENCH_TRACE_SPANS=5000000) spread over 30
   daily partitions: p50 and p95 of lookups of random traces. Goal: p50 < 2 ms.

Runs on the server named by the PG* variables (make bench starts a throwaway cluster).
Prints medians; results are recorded in BENCHMARKS.md, never asserted.
"""

# ruff: noqa: S311 - reproducible pseudo-random test data, nothing secret

from __future__ import annotations

import io
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clients import at_once

from pg_monitoring import installer

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))
ROUNDS = int(os.environ.get("BENCH_RUNS", "3"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "10"))  # per client and round
BATCH = 1_000
TRACE_SPANS = int(os.environ.get("BENCH_TRACE_SPANS", "1000000"))
LOOKUPS = 500
SERVER_SPANS = int(os.environ.get("BENCH_SERVER_SPANS", "100000"))
DATABASE = "pgm_bench_traces"

RESOURCE = {
    "service.name": "checkout",
    "service.version": "2.4.1",
    "service.instance.id": "checkout-7d9f8b6c5-x2k4j",
    "deployment.environment": "production",
    "host.name": "ip-10-0-12-34",
    "host.arch": "amd64",
    "process.pid": 4242,
    "process.runtime.name": "cpython",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.27.0",
}
ROUTES = ["/pay", "/cart", "/items/{id}", "/orders/{id}", "/login", "/search"]


def value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": v}


def attributes(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": value(v)} for k, v in d.items()]


def make_spans(
    count: int, rng: random.Random, start_ns: int, spread_ns: int
) -> list[dict[str, Any]]:
    """Traces of five spans: an HTTP server span with 10 attributes, a database call, an
    outgoing HTTP call and two internal spans, as an instrumented web service sends them."""
    spans: list[dict[str, Any]] = []
    while len(spans) < count:
        trace = f"{rng.getrandbits(128):032x}"
        root = f"{rng.getrandbits(64):016x}"
        t0 = start_ns + rng.randrange(spread_ns)
        route = rng.choice(ROUTES)
        status = 500 if rng.random() < 0.02 else 200
        duration = rng.randrange(2_000_000, 300_000_000)
        spans.append(
            {
                "traceId": trace,
                "spanId": root,
                "name": f"POST {route}",
                "kind": 2,
                "startTimeUnixNano": str(t0),
                "endTimeUnixNano": str(t0 + duration),
                "status": {"code": 2 if status == 500 else 0},
                "attributes": attributes(
                    {
                        "http.request.method": "POST",
                        "http.route": route,
                        "http.response.status_code": status,
                        "url.path": route.replace("{id}", str(rng.randrange(10**6))),
                        "url.scheme": "https",
                        "server.address": "shop.example.com",
                        "client.address": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0",
                        "network.protocol.version": "1.1",
                        "request.id": f"{rng.getrandbits(64):016x}",
                    }
                ),
            }
        )
        children = [
            ("SELECT shop.orders", 3, {"db.system": "postgresql", "db.operation.name": "SELECT"}),
            ("GET payments", 3, {"http.request.method": "GET", "server.address": "payments"}),
            ("render", 1, {}),
            ("validate", 1, {"items": rng.randrange(1, 20)}),
        ]
        for i, (name, kind, attrs) in enumerate(children):
            s = t0 + (i + 1) * duration // 10
            spans.append(
                {
                    "traceId": trace,
                    "spanId": f"{rng.getrandbits(64):016x}",
                    "parentSpanId": root,
                    "name": name,
                    "kind": kind,
                    "startTimeUnixNano": str(s),
                    "endTimeUnixNano": str(s + duration // 10),
                    "attributes": attributes(attrs),
                }
            )
    return spans[:count]


def request(spans: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": attributes(RESOURCE)},
                    "scopeSpans": [
                        {"scope": {"name": "opentelemetry.instrumentation.fastapi"}, "spans": spans}
                    ],
                }
            ]
        }
    )


def naive_rows(spans: list[dict[str, Any]]) -> str:
    """The same spans as COPY text for the naive table."""
    out = io.StringIO()
    for s in spans:
        attrs = {a["key"]: next(iter(a["value"].values())) for a in s["attributes"]}
        attrs.update(RESOURCE)
        row = [
            s["traceId"],
            s["spanId"],
            s.get("parentSpanId") or "\\N",
            s["name"],
            str(s["kind"]),
            str(int(s["startTimeUnixNano"]) // 1000),
            str(int(s["endTimeUnixNano"]) // 1000),
            str(s.get("status", {}).get("code", 0)),
            RESOURCE["service.name"],
            json.dumps(attrs).replace("\\", "\\\\"),
        ]
        out.write("\t".join(row) + "\n")
    return out.getvalue()


NAIVE = """
CREATE TABLE naive_spans (
    trace_id text, span_id text, parent_span_id text, name text, kind int,
    start_us bigint, end_us bigint, status int, service text, attributes jsonb
);
CREATE INDEX ON naive_spans (trace_id);
CREATE INDEX ON naive_spans USING gin (attributes jsonb_path_ops);
"""


def setup() -> str:
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = f"dbname={DATABASE}"
    with psycopg.connect(dsn) as conn:
        installer.install(conn)
        conn.execute(NAIVE)
        conn.execute("SELECT monitoring.run_maintenance()")
    return dsn


def parallel(dsn: str, work: list[Iterable[str]], call: str) -> float:
    """Runs each client's payloads on its own connection at once; returns seconds."""

    def client(payloads: Iterable[str], ready: Callable[[], None]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            ready()
            for p in payloads:
                if call == "copy":
                    with conn.cursor().copy("COPY naive_spans FROM STDIN") as copy:
                        copy.write(p)
                else:
                    conn.execute("SELECT monitoring.record_spans(%s::jsonb)", (p,))

    return at_once(work, client)


def rounds(values: list[float]) -> str:
    return ", ".join(f"{x:,.0f}" for x in values)


def ingest(dsn: str) -> None:
    rng = random.Random(42)
    now_ns = time.time_ns()
    print(f"1. Ingest: {CLIENTS} clients x {REQUESTS} requests of {BATCH} spans, {ROUNDS} rounds")
    ours: list[float] = []
    copies: list[float] = []
    # Each request holds the spans of 5 seconds, as OpenTelemetry's BatchSpanProcessor exports
    # them (every 5 s, or sooner when its queue fills): a live service's requests follow each
    # other in time. (Spreading each request over an hour would make its per-minute summaries
    # 60 times as many rows as a real request's: 16% more instructions per request.)
    window = 5_000_000_000
    start = now_ns - ROUNDS * CLIENTS * REQUESTS * window
    for _ in range(ROUNDS):
        batches = []
        for _ in range(CLIENTS):
            batches.append(
                [make_spans(BATCH, rng, start + k * window, window) for k in range(REQUESTS)]
            )
            start += REQUESTS * window
        spans = CLIENTS * REQUESTS * BATCH
        ours.append(
            spans / parallel(dsn, [[request(b) for b in w] for w in batches], "record_spans")
        )
        copies.append(spans / parallel(dsn, [[naive_rows(b) for b in w] for w in batches], "copy"))
    a, b = statistics.median(ours), statistics.median(copies)
    print(f"   record_spans      {a:10,.0f} spans/s   (rounds: {rounds(ours)})")
    print(f"   COPY, naive table {b:10,.0f} spans/s   (rounds: {rounds(copies)})")
    print(f"   ratio {a / b:.2f}")


def storage(dsn: str) -> None:
    """After lookups' load: the same spans in both layouts."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        ours = conn.execute(
            """SELECT sum(pg_total_relation_size(c.oid))
            FROM pg_class AS c
            WHERE c.relkind = 'r' AND c.relnamespace = 'monitoring'::regnamespace
                AND (c.relname LIKE 'trace\\_%' OR c.relname = 'otel_resources')"""
        ).fetchone()[0]
        spans = conn.execute("SELECT count(*) FROM monitoring.trace_spans").fetchone()[0]
        naive = conn.execute("SELECT pg_total_relation_size('naive_spans')").fetchone()[0]
        naive_spans = conn.execute("SELECT count(*) FROM naive_spans").fetchone()[0]
        servers = conn.execute(
            """SELECT avg(pg_column_size(s.*)), count(*) FROM monitoring.trace_spans AS s
            WHERE s.parent_span_id IS NULL"""
        ).fetchone()
        naive_servers = conn.execute(
            "SELECT avg(pg_column_size(n.*)) FROM naive_spans AS n WHERE n.parent_span_id IS NULL"
        ).fetchone()[0]
    a, b = float(ours) / spans, float(naive) / naive_spans
    print(f"2. Bytes per span (heap + TOAST + indexes, summaries included), {spans:,} spans")
    print(f"   all spans: ours {a:6.0f}   naive {b:6.0f}   ratio {a / b:.2f}")
    row, naive_row = float(servers[0]), float(naive_servers)
    print(
        f"   the HTTP server span (10 attributes), its row alone: ours {row:.0f}"
        f"   naive {naive_row:.0f}   ratio {row / naive_row:.2f}"
    )


def server_spans(dsn: str) -> None:
    """The goal's own measure: HTTP server spans (10 attributes) alone, SERVER_SPANS of them,
    in both layouts; the span table's heap, TOAST and indexes against the naive table's. The
    per-trace summary is left out: here every trace would be one span."""
    truncate(dsn)
    rng = random.Random(11)
    now_ns = time.time_ns()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for n in range(SERVER_SPANS // BATCH):
            spans = [
                s
                for s in make_spans(5 * BATCH, rng, now_ns - (n + 1) * 10**10, 10**10)
                if s["kind"] == 2
            ]
            conn.execute("SELECT monitoring.record_spans(%s::jsonb)", (request(spans),))
            with conn.cursor().copy("COPY naive_spans FROM STDIN") as copy:
                copy.write(naive_rows(spans))
        conn.execute("VACUUM ANALYZE")
        ours, ours_index = conn.execute(
            """SELECT sum(pg_table_size(h.inhrelid))::float / n.n,
                sum(pg_indexes_size(h.inhrelid))::float / n.n
            FROM pg_inherits AS h, (SELECT count(*) AS n FROM monitoring.trace_spans) AS n
            WHERE h.inhparent = 'monitoring.trace_spans'::regclass
            GROUP BY n.n"""
        ).fetchone()
        naive, naive_index = conn.execute(
            """SELECT pg_table_size('naive_spans')::float / count(*),
                pg_indexes_size('naive_spans')::float / count(*) FROM naive_spans"""
        ).fetchone()
    a, b = ours + ours_index, naive + naive_index
    print(f"2a. Bytes per HTTP server span (10 attributes), {SERVER_SPANS:,} of them alone")
    print(
        f"   ours {a:.0f} (heap {ours:.0f}, indexes {ours_index:.0f})   naive {b:.0f} "
        f"(heap {naive:.0f}, indexes {naive_index:.0f})   ratio {a / b:.2f}"
    )


def truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE monitoring.trace_spans, monitoring.trace_parts, "
            "monitoring.trace_operation_minutes, monitoring.trace_edge_minutes, "
            "monitoring.trace_orphans, naive_spans"
        )


def lookups(dsn: str) -> None:
    """TRACE_SPANS spans over 30 days in requests of 10 seconds' spans each, loaded with
    record_spans (and with COPY into the naive table, for storage()), then trace_tree of
    random trace ids."""
    truncate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for day in range(31):
            conn.execute(
                "SELECT monitoring._create_daily_partition('monitoring.trace_spans', 'start_time', "
                "((now() - %s * interval '1 day') AT TIME ZONE 'UTC')::date)",
                (day,),
            )
    day_ns = 86_400_000_000_000
    now_ns = time.time_ns()
    requests = TRACE_SPANS // BATCH
    step = (30 * day_ns - 60_000_000_000) // requests

    def batches(client: int, seed: int) -> Iterator[list[dict[str, Any]]]:
        rng = random.Random(seed + client)
        for n in range(client, requests, CLIENTS):
            yield make_spans(BATCH, rng, now_ns - 30 * day_ns + n * step, 10_000_000_000)

    started = time.perf_counter()
    parallel(dsn, [(request(b) for b in batches(c, 7)) for c in range(CLIENTS)], "record_spans")
    load = time.perf_counter() - started
    parallel(dsn, [(naive_rows(b) for b in batches(c, 7)) for c in range(CLIENTS)], "copy")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT monitoring.run_maintenance()")
        conn.execute("VACUUM ANALYZE")
        total = conn.execute("SELECT count(*) FROM monitoring.trace_spans").fetchone()[0]
        parts = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'monitoring.trace_spans'::regclass"
        ).fetchone()[0]
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT trace_id FROM monitoring.trace_parts TABLESAMPLE SYSTEM (5) LIMIT %s",
                (LOOKUPS,),
            )
        ]
        times: list[float] = []
        for trace_id in ids:
            t = time.perf_counter()
            rows = conn.execute("SELECT * FROM monitoring.trace_tree(%s)", (trace_id,)).fetchall()
            times.append((time.perf_counter() - t) * 1000)
            assert rows, trace_id
    times.sort()
    print(
        f"3. Trace by id, no time range: {total:,} spans in {parts} partitions "
        f"(loaded in {load:.0f} s: {total / load:,.0f} spans/s), {len(times)} random traces"
    )
    p50, p95 = statistics.median(times), times[int(len(times) * 0.95)]
    print(f"   trace_tree p50 {p50:.2f} ms   p95 {p95:.2f} ms")


def main() -> None:
    dsn = setup()
    ingest(dsn)
    server_spans(dsn)
    lookups(dsn)
    storage(dsn)
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
