"""`make bench-metrics`: OTLP metrics ingest through `monitoring.record_metrics`.

Requests of 1,000 data points (OTLP JSON, as serve sends them) as an instrumented service
exports them every 10 seconds: one point per series and export, cumulative, so each request
after the first finds its series by digest. Per request: 600 counter points (sums, 3
attributes), 200 gauge points and 200 histogram points (16 buckets), 2 attributes each; the
resource has 11 attributes. Against a bare COPY of the same points into a
plain table (one row per point: time, name, the resource's and the point's attributes as one
jsonb, value, histogram columns; a btree on name and time, the least a table needs to be
read). Interleaved rounds, same points, BENCH_CLIENTS (default 2) concurrent writers each
sending its own service's series; points/s, median of rounds, and the ratio. The first
export of a service (its 1,000 series new) is timed apart.

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
from collections.abc import Callable
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
DATABASE = "pgm_bench_metrics"
INTERVAL_NS = 10 * 10**9
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 25]

RESOURCE = {
    "service.version": "2.4.1",
    "deployment.environment": "production",
    "host.name": "ip-10-0-12-34",
    "host.arch": "amd64",
    "process.pid": 4242,
    "process.runtime.name": "cpython",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.version": "1.27.0",
}
ROUTES = [f"/api/v1/resource{i}/{{id}}" for i in range(50)]
METHODS = ["GET", "POST", "PUT"]
STATUSES = [200, 404, 500, 201]


def value(v: Any) -> dict[str, Any]:
    if isinstance(v, int):
        return {"intValue": str(v)}
    return {"stringValue": v}


def attributes(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": value(v)} for k, v in d.items()]


def resource(client: int) -> dict[str, Any]:
    return {
        "service.name": f"checkout-{client}",
        "service.instance.id": f"checkout-{client}-7d9f8b6c5-x2k4j",
        **RESOURCE,
    }


# The series of one service: (metric name, kind, attributes), 1,000 of them.
SERIES: list[tuple[str, str, dict[str, Any]]] = (
    [
        (
            "http.server.request.count",
            "sum",
            {"http.route": r, "http.request.method": m, "http.response.status_code": s},
        )
        for r in ROUTES
        for m in METHODS
        for s in STATUSES
    ]
    + [
        ("http.server.active_requests", "gauge", {"http.route": r, "http.request.method": m})
        for r in ROUTES
        for m in [*METHODS, "DELETE"]
    ]
    + [
        ("http.server.duration", "histogram", {"http.route": r, "http.request.method": m})
        for r in ROUTES
        for m in [*METHODS, "DELETE"]
    ]
)
assert len(SERIES) == 1000


def make_points(rng: random.Random, k: int) -> list[dict[str, Any]]:
    """The k-th export's point of each series: counters grow, gauges wander."""
    points = []
    for name, kind, attrs in SERIES:
        if kind == "sum":
            points.append(
                {"name": name, "kind": kind, "attrs": attrs, "value": k * 10 + rng.randrange(10)}
            )
        elif kind == "gauge":
            points.append({"name": name, "kind": kind, "attrs": attrs, "value": rng.random() * 100})
        else:
            counts = [rng.randrange(k * 5 + 1) for _ in range(len(BOUNDS) + 1)]
            points.append(
                {
                    "name": name,
                    "kind": kind,
                    "attrs": attrs,
                    "count": sum(counts),
                    "sum": sum(counts) * 0.12,
                    "counts": counts,
                }
            )
    return points


def request(client: int, points: list[dict[str, Any]], start_ns: int, time_ns: int) -> str:
    metrics: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in points:
        dp: dict[str, Any] = {
            "attributes": attributes(p["attrs"]),
            "startTimeUnixNano": str(start_ns),
            "timeUnixNano": str(time_ns),
        }
        if p["kind"] == "sum":
            dp["asInt"] = str(p["value"])
        elif p["kind"] == "gauge":
            dp["asDouble"] = p["value"]
            del dp["startTimeUnixNano"]
        else:
            dp.update(
                count=str(p["count"]),
                sum=p["sum"],
                explicitBounds=BOUNDS,
                bucketCounts=[str(c) for c in p["counts"]],
            )
        metrics.setdefault((p["name"], p["kind"]), []).append(dp)
    out = []
    for (name, kind), dps in metrics.items():
        data: dict[str, Any] = {"dataPoints": dps}
        if kind != "gauge":
            data["aggregationTemporality"] = 2
        if kind == "sum":
            data["isMonotonic"] = True
        out.append({"name": name, "unit": "1", kind: data})
    return json.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {"attributes": attributes(resource(client))},
                    "scopeMetrics": [
                        {"scope": {"name": "opentelemetry.instrumentation.asgi"}, "metrics": out}
                    ],
                }
            ]
        }
    )


def copy_rows(client: int, points: list[dict[str, Any]], time_ns: int) -> str:
    """The same points as COPY text for the plain table."""
    out = io.StringIO()
    at = str(time_ns // 1000)
    for p in points:
        labels = {**resource(client), **p["attrs"]}
        row = [
            at,
            p["name"],
            json.dumps(labels).replace("\\", "\\\\"),
            str(p.get("value", "\\N")),
            str(p.get("count", "\\N")),
            str(p.get("sum", "\\N")),
            "{" + ",".join(map(str, BOUNDS)) + "}" if "counts" in p else "\\N",
            "{" + ",".join(map(str, p["counts"])) + "}" if "counts" in p else "\\N",
        ]
        out.write("\t".join(row) + "\n")
    return out.getvalue()


PLAIN = """
CREATE TABLE plain_points (
    time_us bigint, name text, labels jsonb, value double precision, count bigint,
    sum double precision, bounds double precision[], bucket_counts bigint[]
);
CREATE INDEX ON plain_points (name, time_us);
"""


def setup() -> str:
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = f"dbname={DATABASE}"
    with psycopg.connect(dsn) as conn:
        installer.install(conn)
        conn.execute(PLAIN)
        conn.execute("SELECT monitoring.run_maintenance()")
    return dsn


def parallel(dsn: str, work: list[list[str]], call: str) -> float:
    """Runs each client's payloads on its own connection at once; returns seconds."""

    def client(payloads: list[str], ready: Callable[[], None]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            ready()
            for p in payloads:
                if call == "copy":
                    with conn.cursor().copy("COPY plain_points FROM STDIN") as copy:
                        copy.write(p)
                else:
                    answer = conn.execute(
                        "SELECT monitoring.record_metrics(%s::jsonb)", (p,)
                    ).fetchone()[0]
                    assert answer["stored"] == BATCH, answer

    return at_once(work, client)


def rounds(values: list[float]) -> str:
    return ", ".join(f"{x:,.0f}" for x in values)


def main() -> None:
    dsn = setup()
    rng = random.Random(42)
    exports = 1 + ROUNDS * REQUESTS
    start_ns = time.time_ns() - (exports + 1) * INTERVAL_NS
    print(
        f"OTLP metrics ingest: {CLIENTS} clients x {REQUESTS} requests of {BATCH} data points, "
        f"{ROUNDS} rounds"
    )
    # The first export of each service: its series are new.
    first = [make_points(rng, 0) for _ in range(CLIENTS)]
    seconds = parallel(
        dsn,
        [[request(c, first[c], start_ns, start_ns + INTERVAL_NS)] for c in range(CLIENTS)],
        "record",
    )
    print(f"   first export, 1,000 new series per client: {seconds * 1000:,.0f} ms")
    ours: list[float] = []
    copies: list[float] = []
    k = 1
    for _ in range(ROUNDS):
        work_ours: list[list[str]] = [[] for _ in range(CLIENTS)]
        work_copy: list[list[str]] = [[] for _ in range(CLIENTS)]
        for _ in range(REQUESTS):
            at = start_ns + (k + 1) * INTERVAL_NS
            for c in range(CLIENTS):
                points = make_points(rng, k)
                work_ours[c].append(request(c, points, start_ns, at))
                work_copy[c].append(copy_rows(c, points, at))
            k += 1
        total = CLIENTS * REQUESTS * BATCH
        ours.append(total / parallel(dsn, work_ours, "record"))
        copies.append(total / parallel(dsn, work_copy, "copy"))
    a, b = statistics.median(ours), statistics.median(copies)
    print(f"   record_metrics     {a:10,.0f} points/s   (rounds: {rounds(ours)})")
    print(f"   COPY, plain table  {b:10,.0f} points/s   (rounds: {rounds(copies)})")
    print(f"   ratio {a / b:.2f}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        ours_bytes, points = conn.execute(
            """SELECT sum(pg_total_relation_size(h.inhrelid))
                + pg_total_relation_size('monitoring.metric_series'), n.n
            FROM pg_inherits AS h, (SELECT count(*) AS n FROM monitoring.metric_data_points) AS n
            WHERE h.inhparent = 'monitoring.metric_data_points'::regclass
            GROUP BY n.n"""
        ).fetchone()
        plain_bytes, plain_points = conn.execute(
            "SELECT pg_total_relation_size('plain_points'), count(*) FROM plain_points"
        ).fetchone()
    print(
        f"   bytes per point (heap + TOAST + indexes, series included): ours "
        f"{float(ours_bytes) / points:.0f}   plain {float(plain_bytes) / plain_points:.0f}"
    )


if __name__ == "__main__":
    main()
