"""`make bench-scrape`: what a Prometheus scrape of `monitoring.prometheus_metrics()` costs,
on a small database and on the issue's full one, side by side.

Two databases are populated as cheaply as possible, straight from generate_series into the
tables (no capture or ingest calls: their cost is measured by bench-errors and bench-traces):
- full: BENCH_EVENTS (default 5,000,000) error events over 30 daily partitions in 5,000
  issues (a few issues take most events, as in real traffic) of 20 services in 3
  environments; BENCH_SPANS (default 5,000,000) spans of the last 24 hours over 200
  operations (server, client, internal and consumer kinds), with their per-minute rollups
  folded by the real fold_traces(); BENCH_CACHE (default 1,000,000) cache entries;
- small: the same at 1/100 (the same 5,000 issues and 200 operations: what the exposition
  reads grows with those, not with events or spans).
Error totals are computed from the events by one GROUP BY (what the fold would have added).
BENCH_SCALE (default 1) multiplies both sizes, for a machine where the full size takes too long.

Then BENCH_RUNS (default 5) interleaved rounds of BENCH_CALLS (default 50) scrapes each:
p50 and p95 of the call as the client sees it, and shared buffers hit and read per call from
pg_stat_statements (the function's own statements included); then GET /metrics on
`pg-monitoring serve` the same way. Goal (issue 14): p50 < 50 ms, buffers constant (the same
at both sizes).

Runs on the server named by the PG* variables (make bench starts a throwaway cluster; it
needs pg_stat_statements in shared_preload_libraries). Prints medians; results are recorded
in BENCHMARKS.md, never asserted. BENCH_KEEP=1 keeps both databases (pgm_bench_scrape_*),
BENCH_REUSE=1 measures them again without loading.
"""

# ruff: noqa: S603 - a fixed argv: this Python running pg-monitoring serve

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pg_monitoring import installer

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
EVENTS = int(int(os.environ.get("BENCH_EVENTS", "5000000")) * SCALE)
SPANS = int(int(os.environ.get("BENCH_SPANS", "5000000")) * SCALE)
CACHE = int(int(os.environ.get("BENCH_CACHE", "1000000")) * SCALE)
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
CALLS = int(os.environ.get("BENCH_CALLS", "50"))
ISSUES = 5_000
SIZES = {"small": 0.01, "full": 1.0}
SCRAPE = "SELECT monitoring.prometheus_metrics()"

# Each statement takes %(events)s, %(spans)s, %(cache)s, %(issues)s.
POPULATE = [
    (
        "partitions",
        """
        SELECT monitoring._create_event_partition((now() AT TIME ZONE 'UTC')::date - d),
            monitoring._create_daily_partition(
                'monitoring.trace_spans', 'start_time', (now() AT TIME ZONE 'UTC')::date - d
            )
        FROM generate_series(1, 30) AS d
        """,
    ),
    (
        "issues",
        """
        INSERT INTO monitoring.error_issues (
            service, environment, fingerprint, fingerprint_source, title, culprit,
            exception_type, level, first_seen, last_seen
        )
        SELECT
            'svc-' || lpad((i %% 20)::text, 2, '0'),
            (ARRAY['production', 'production', 'staging', 'development'])[1 + i %% 4],
            md5(i::text), 'message', 'Error number ' || i, 'app.module in handler',
            'ValueError', (ARRAY['error', 'error', 'error', 'warning', 'fatal'])[1 + i %% 5],
            now() - interval '30 days', now()
        FROM generate_series(1, %(issues)s) AS i
        """,
    ),
    (
        "events",
        # issue k takes events in proportion to 1/k (Zipf-like): a few issues hold most
        """
        INSERT INTO monitoring.error_events (
            event_id, occurred_at, issue_id, level, exception_type, message, context
        )
        SELECT
            gen_random_uuid(),
            now() - random() * interval '29 days',
            least(floor(exp(random() * ln(%(issues)s + 1)))::bigint, %(issues)s),
            (ARRAY['error', 'error', 'error', 'warning', 'info'])[1 + i %% 5],
            'ValueError', 'invalid literal for int() with base 10: ' || i,
            jsonb_build_object('request_id', i)
        FROM generate_series(1, %(events)s) AS i
        """,
    ),
    (
        "error totals",
        """
        WITH counted AS (
            SELECT e.issue_id, e.level, count(*) AS n
            FROM monitoring.error_events AS e
            GROUP BY e.issue_id, e.level
        ),
        seen AS (
            UPDATE monitoring.error_issues AS g SET times_seen = s.n
            FROM (SELECT c.issue_id, sum(c.n) AS n FROM counted AS c GROUP BY 1) AS s
            WHERE g.id = s.issue_id
        )
        INSERT INTO monitoring.error_totals (service, environment, level, events, new_issues)
        SELECT g.service, g.environment, c.level, sum(c.n), count(DISTINCT g.id)
        FROM counted AS c
        INNER JOIN monitoring.error_issues AS g ON c.issue_id = g.id
        GROUP BY 1, 2, 3
        """,
    ),
    (
        "operations",
        """
        INSERT INTO monitoring.trace_operations (service, kind, name)
        SELECT
            'svc-' || lpad((i %% 20)::text, 2, '0'),
            (ARRAY[2, 2, 2, 3, 3, 1, 1, 5, 2, 3])[1 + i / 20],
            (ARRAY['GET', 'POST', 'PUT', 'SELECT', 'redis', 'render', 'validate', 'consume',
                'DELETE', 'http'])[1 + i / 20] || ' /route/' || i
        FROM generate_series(0, 199) AS i
        """,
    ),
    (
        "spans",
        # durations log-normal around 20 ms; 2% errors; operation k by 1/k as issues
        """
        INSERT INTO monitoring.trace_spans (
            start_time, duration_ns, operation_id, resource_id, status_code, trace_id,
            span_id, attributes
        )
        SELECT
            now() - random() * interval '24 hours',
            (20000000 * exp(1.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))
                ::bigint,
            least(floor(exp(random() * ln(201)))::integer, 200),
            1,
            CASE WHEN random() < 0.02 THEN 2 ELSE 0 END,
            md5((i / 8)::text),
            left(md5(i::text), 16),
            '{}'
        FROM generate_series(1, %(spans)s) AS i
        """,
    ),
    (
        "span rollups",
        # as record_spans writes them (one row per minute and operation), then the real fold
        """
        INSERT INTO monitoring.trace_operation_minutes (
            minute, operation_id, calls, errors, duration_ns_sum, histogram
        )
        SELECT h.minute, h.operation_id, sum(h.calls), sum(h.errors), sum(h.ns),
            jsonb_object_agg(h.bucket, h.calls)
        FROM (
            SELECT
                date_trunc('minute', s.start_time, 'UTC') AS minute, s.operation_id,
                monitoring._duration_bucket(s.duration_ns) AS bucket, count(*) AS calls,
                count(*) FILTER (WHERE s.status_code = 2) AS errors, sum(s.duration_ns) AS ns
            FROM monitoring.trace_spans AS s
            GROUP BY 1, 2, 3
        ) AS h
        GROUP BY h.minute, h.operation_id
        """,
    ),
    ("span fold", "SELECT monitoring.fold_traces()"),
    (
        "cache",
        """
        INSERT INTO monitoring.cache_entries (key, value, expires_at)
        SELECT 'session:' || i, jsonb_build_object('user', i, 'cart', i %% 7),
            now() + (i %% 3600) * interval '1 second'
        FROM generate_series(1, %(cache)s) AS i
        """,
    ),
    ("cache stats", "SELECT monitoring.cache_record_stats(123456, 7890)"),
    ("maintenance", "SELECT monitoring.run_maintenance()"),
]


def populate(name: str, fraction: float) -> str:
    database = f"pgm_bench_scrape_{name}"
    sizes = {
        "events": max(int(EVENTS * fraction), 1),
        "spans": max(int(SPANS * fraction), 1),
        "cache": max(int(CACHE * fraction), 1),
        "issues": ISSUES,
    }
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")
    dsn = f"dbname={database}"
    print(
        f"{name}: {sizes['events']:,} events, {sizes['spans']:,} spans, {sizes['cache']:,} "
        "cache entries",
        flush=True,
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        installer.install(conn)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT monitoring.run_maintenance()")
        for step, sql in POPULATE:
            started = time.perf_counter()
            conn.execute(sql, sizes)
            print(f"  {step:<14} {time.perf_counter() - started:7.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"  {'vacuum':<14} {time.perf_counter() - started:7.1f} s", flush=True)
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"  database size  {size.fetchone()[0]}", flush=True)
    return dsn


def scrape(conn: psycopg.Connection, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        conn.execute(SCRAPE).fetchone()
        times.append((time.perf_counter() - started) * 1000)
    return times


def http_scrapes(dsn: str, calls: int) -> list[float]:
    """GET /metrics on `pg-monitoring serve` (anonymous, loopback): the page as Prometheus
    gets it, the process's own registry appended."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "pg_monitoring", "serve", "--dsn", dsn, "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--allow-anonymous"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=30).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        times = []
        with httpx.Client(timeout=30) as client:
            for _ in range(calls):
                started = time.perf_counter()
                client.get(url).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    if os.environ.get("BENCH_REUSE"):  # the databases BENCH_KEEP kept
        dsns = {name: f"dbname=pgm_bench_scrape_{name}" for name in SIZES}
    else:
        dsns = {name: populate(name, fraction) for name, fraction in SIZES.items()}
    conns = {name: psycopg.connect(dsn, autocommit=True) for name, dsn in dsns.items()}
    for conn in conns.values():
        scrape(conn, 10)  # warm: caches, the function's plans
        conn.execute("SELECT pg_stat_statements_reset()")
    times: dict[str, list[float]] = {name: [] for name in conns}
    p50s: dict[str, list[float]] = {name: [] for name in conns}
    for _ in range(RUNS):
        for name, conn in conns.items():
            run = scrape(conn, CALLS)
            times[name] += run
            p50s[name].append(statistics.median(run))
    print(f"\nprometheus_metrics(), {RUNS} rounds of {CALLS} calls each, interleaved:")
    print(
        f"  {'database':<8} {'p50 ms':>8} {'p95 ms':>8} {'rounds p50':>22} "
        f"{'hit/call':>9} {'read/call':>9} {'bytes':>7}"
    )
    for name, conn in conns.items():
        row = conn.execute(
            "SELECT calls, shared_blks_hit::numeric / calls, shared_blks_read::numeric / calls "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) AND query = %s",
            (SCRAPE,),
        ).fetchone()
        page = conn.execute(SCRAPE).fetchone()[0]
        ordered = sorted(times[name])
        rounds = "-".join(f"{p:.1f}" for p in (min(p50s[name]), max(p50s[name])))
        hit, read = (float(row[1]), float(row[2])) if row else (float("nan"), float("nan"))
        print(
            f"  {name:<8} {statistics.median(ordered):8.2f} "
            f"{ordered[int(len(ordered) * 0.95)]:8.2f} {rounds:>22} {hit:9.1f} {read:9.1f} "
            f"{len(page):7}"
        )
    small, full = (statistics.median(times[n]) for n in ("small", "full"))
    print(f"  full / small p50: {full / small:.2f}")
    http: dict[str, list[float]] = {name: [] for name in dsns}
    for _ in range(RUNS):
        for name, dsn in dsns.items():
            http[name] += http_scrapes(dsn, CALLS)
    print("GET /metrics on serve (a new server each round, its first answer left out):")
    for name in dsns:
        ordered = sorted(http[name])
        print(
            f"  {name:<8} p50 {statistics.median(ordered):6.2f} ms, "
            f"p95 {ordered[int(len(ordered) * 0.95)]:6.2f} ms"
        )
    for conn in conns.values():
        conn.close()
    if os.environ.get("BENCH_KEEP"):
        return
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        for dsn in dsns.values():
            conn.execute(f"DROP DATABASE IF EXISTS {dsn.split('=')[1]} WITH (FORCE)")


if __name__ == "__main__":
    main()
