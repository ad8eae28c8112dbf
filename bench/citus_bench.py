"""`make bench-citus`: capture and span ingest on one server and through a Citus coordinator
with two workers, side by side in the same run (issue 16).

The cluster is tools/citus_cluster.sh's: a coordinator and two workers on this machine, PG*
naming the coordinator's database (Citus created, workers added). "One server" is a plain
database (no citus extension) made here on the coordinator's own server: same PostgreSQL,
same settings, same cores, so the difference is Citus's. Interleaved rounds (BENCH_RUNS,
default 3), BENCH_CLIENTS (default 2) concurrent clients, each call its own transaction:

- `capture_error`, single calls of a 10-frame event, on issues that exist (the steady state)
  and each on a new issue (a new fingerprint: a write to `error_issues`, a reference table);
- `capture_events`, batches of 100 Sentry-shaped events (the Python client's batch);
- `record_spans`, requests of 1,000 spans (bench/spans_bench.py's traces of five spans).

Prints events (spans) per second, the median latency of a call, and the cluster's time per
event over one server's; then EXPLAIN on the cluster of the hot paths (a trace by id, an
issue's latest events, a capture's count row) and the latency of those reads on both.
Results are recorded in BENCHMARKS.md, never asserted.
"""

# ruff: noqa: S311 - reproducible pseudo-random test data, nothing secret

from __future__ import annotations

import json
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from clients import at_once
from psycopg import sql
from spans_bench import make_spans, request

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))
ROUNDS = int(os.environ.get("BENCH_RUNS", "3"))
CALLS = int(os.environ.get("BENCH_CALLS", "200"))  # single calls per client and round
NEW_ISSUES = CALLS // 2
BATCHES = 5  # of 100 events, per client and round
SPAN_REQUESTS = 3  # of 1,000 spans, per client and round
LOOKUPS = 200
ONE_SERVER = "pgm_bench_one_server"


def frames(n: int) -> list[dict[str, Any]]:
    return [
        {
            "filename": f"app/services/module_{i}.py",
            "module": f"app.services.module_{i}",
            "function": f"handler_{i}",
            "lineno": 40 + i,
            "context_line": f"result = downstream_{i}.call(order, retries=3)",
            "pre_context": ["", "def handler(order):", "    started = time.monotonic()"],
            "post_context": ["    log.info('done')", "    return result", ""],
            "in_app": True,
        }
        for i in range(n)
    ]


FRAMES = json.dumps(frames(10))
CONTEXT = json.dumps({"user_id": 7, "order_id": 1234, "cart": {"items": 3, "total": 99.5}})


def sentry_event(n: int) -> dict[str, Any]:
    return {
        "level": "error",
        "platform": "python",
        "environment": "production",
        "release": "shop@2.4.1",
        "server_name": "web-1",
        "transaction": "/checkout",
        "exception": {
            "values": [
                {
                    "type": "PaymentTimeout",
                    "value": f"gateway timed out after 30s for order {n}",
                    "stacktrace": {"frames": frames(10)},
                }
            ]
        },
        "tags": {"region": "eu"},
        "user": {"id": str(n % 50)},
        "extra": {"order_id": n},
    }


@dataclass
class Measure:
    """One scenario's rounds on one database: items per second, and each call's seconds."""

    rates: list[float]
    calls: list[float]

    def rate(self) -> float:
        return statistics.median(self.rates)

    def latency_ms(self) -> float:
        return statistics.median(self.calls) * 1000


def run_clients(
    dsn: str, work: Sequence[Sequence[tuple[str, Sequence[Any]]]], calls: list[float]
) -> float:
    """Each client's (statement, params) on its own connection, all at once; seconds."""

    def client(statements: Sequence[tuple[str, Sequence[Any]]], ready: Callable[[], None]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            ready()
            for query, params in statements:
                started = time.perf_counter()
                conn.execute(query.encode(), params)
                calls.append(time.perf_counter() - started)

    return at_once(work, client)


CAPTURE = (
    "SELECT monitoring.capture_error('PaymentTimeout', %s, %s::jsonb, %s::jsonb, "
    "p_environment => 'production', p_fingerprint => ARRAY[%s])"
)


def scenarios(round_: int) -> dict[str, tuple[int, list[list[tuple[str, Sequence[Any]]]]]]:
    """Each scenario's items per client-call and its clients' statements, for one round."""
    rng = random.Random(round_)
    now_ns = time.time_ns()
    return {
        "capture_error, existing issues": (
            1,
            [
                [
                    (CAPTURE, (f"timed out for order {i}", FRAMES, CONTEXT, f"hot-{i % 20}"))
                    for i in range(CALLS)
                ]
                for _ in range(CLIENTS)
            ],
        ),
        "capture_error, each a new issue": (
            1,
            [
                [
                    (CAPTURE, ("timed out", FRAMES, CONTEXT, f"new-{round_}-{c}-{i}"))
                    for i in range(NEW_ISSUES)
                ]
                for c in range(CLIENTS)
            ],
        ),
        "capture_events, 100 a call": (
            100,
            [
                [
                    (
                        "SELECT count(*) FROM monitoring.capture_events(%s::text)",
                        (json.dumps([sentry_event(b * 100 + i) for i in range(100)]),),
                    )
                    for b in range(BATCHES)
                ]
                for _ in range(CLIENTS)
            ],
        ),
        "record_spans, 1,000 a request": (
            1000,
            [
                [
                    (
                        "SELECT monitoring.record_spans(%s::jsonb)",
                        (request(make_spans(1000, rng, now_ns - 60_000_000_000, 5_000_000_000)),),
                    )
                    for _ in range(SPAN_REQUESTS)
                ]
                for _ in range(CLIENTS)
            ],
        ),
    }


def warm_up(dsn: str) -> None:
    """The existing issues, and each session's first plans, before anything is timed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(20):
            conn.execute(CAPTURE.encode(), ("warm", FRAMES, CONTEXT, f"hot-{i}"))
        conn.execute(
            "SELECT count(*) FROM monitoring.capture_events(%s::text)",
            (json.dumps([sentry_event(i) for i in range(100)]),),
        )


def setup() -> dict[str, str]:
    with psycopg.connect(autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {ONE_SERVER} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {ONE_SERVER}")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_monitoring")
        if not conn.execute(
            "SELECT FROM pg_dist_partition WHERE logicalrelid = 'monitoring.error_events'::regclass"
        ).rowcount:
            conn.execute("SELECT monitoring.distribute()")
    databases = {"one server": f"dbname={ONE_SERVER}", "cluster": ""}
    with psycopg.connect(databases["one server"], autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_monitoring")
    for dsn in databases.values():
        with psycopg.connect(dsn, autocommit=True) as conn:
            # every event stored, as below a storm's threshold (past it, marking an issue
            # sampled fails on the cluster: docs/citus-notes.md)
            conn.execute("SELECT monitoring.set_setting('errors.storm_full_events', '1000000')")
        warm_up(dsn)
    return databases


def measure(databases: dict[str, str]) -> dict[str, dict[str, Measure]]:
    results: dict[str, dict[str, Measure]] = {}
    for r in range(ROUNDS):
        work = scenarios(r)
        # alternate which goes first: neither always meets the other's leftovers
        order = list(databases.items())
        if r % 2:
            order.reverse()
        for name, (items, statements) in work.items():
            for where, dsn in order:
                m = results.setdefault(name, {}).setdefault(where, Measure([], []))
                calls: list[float] = []
                seconds = run_clients(dsn, statements, calls)
                m.rates.append(sum(len(s) for s in statements) * items / seconds)
                m.calls.extend(calls)
    return results


def report(results: dict[str, dict[str, Measure]]) -> None:
    print(
        f"Capture and ingest: {CLIENTS} clients, {ROUNDS} interleaved rounds; medians "
        "(per second: of rounds; latency: of calls; ratio: of each round's side by side)"
    )
    print()
    print(
        "| what | one server /s | cluster /s | one server, a call | cluster, a call "
        "| cluster / one server, time per event (rounds) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, by in results.items():
        one, cluster = by["one server"], by["cluster"]
        ratios = [a / b for a, b in zip(one.rates, cluster.rates, strict=True)]
        print(
            f"| {name} | {one.rate():,.0f} | {cluster.rate():,.0f} "
            f"| {one.latency_ms():.2f} ms | {cluster.latency_ms():.2f} ms "
            f"| {statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)}) |"
        )


READS = {
    "a trace by id": "SELECT * FROM monitoring.spans WHERE trace_id = %s",
    "an issue's latest 10 events": (
        "SELECT * FROM monitoring.error_events WHERE issue_id = %s "
        "ORDER BY occurred_at DESC LIMIT 10"
    ),
}


def read_params(dsn: str) -> dict[str, list[Any]]:
    with psycopg.connect(dsn) as conn:
        traces = [
            t for (t,) in conn.execute("SELECT DISTINCT trace_id FROM monitoring.trace_parts")
        ]
        issues = [i for (i,) in conn.execute("SELECT id FROM monitoring.error_issues")]
    rng = random.Random(7)
    return {
        "a trace by id": [rng.choice(traces) for _ in range(LOOKUPS)],
        "an issue's latest 10 events": [rng.choice(issues) for _ in range(LOOKUPS)],
    }


def plans(databases: dict[str, str]) -> None:
    cluster = databases["cluster"]
    params = read_params(cluster)
    statements = {
        **READS,
        "a capture's count row": (
            "INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at) VALUES (%s, now())"
        ),
    }
    print()
    print("EXPLAIN on the cluster (COSTS OFF), the distributed part:")
    with psycopg.connect(cluster) as conn:
        for name, query in statements.items():
            value = params.get(name, params["an issue's latest 10 events"])[0]
            # the key as a literal, as a client's query would carry it (bound parameters
            # would plan another way: docs/citus-notes.md on generic plans)
            explain = sql.SQL("EXPLAIN (COSTS OFF) ") + sql.SQL(query.replace("%s", "{}")).format(
                sql.Literal(value)
            )
            lines = [line for (line,) in conn.execute(explain).fetchall()]
            print(f"  {name}:")
            for line in lines[:6]:
                print(f"    {line}")
        conn.rollback()
    print()
    print(f"Reads, {LOOKUPS} lookups of random keys on one connection, p50 (p95):")
    print("| read | one server | cluster |")
    print("|---|---:|---:|")
    one_params = read_params(databases["one server"])
    for name, query in READS.items():
        cells = []
        for dsn, keys in ((databases["one server"], one_params[name]), (cluster, params[name])):
            with psycopg.connect(dsn, autocommit=True) as conn:
                times = []
                for key in keys:
                    started = time.perf_counter()
                    conn.execute(query.encode(), (key,)).fetchall()
                    times.append(time.perf_counter() - started)
            times.sort()
            p50, p95 = statistics.median(times), times[int(len(times) * 0.95)]
            cells.append(f"{p50 * 1000:.2f} ms ({p95 * 1000:.2f})")
        print(f"| {name} | {cells[0]} | {cells[1]} |")


def main() -> None:
    print(f"load average before: {os.getloadavg()}")
    databases = setup()
    results = measure(databases)
    report(results)
    plans(databases)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
