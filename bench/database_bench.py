"""`make bench-database`: what the database-monitoring views cost a busy server.

Issue 14 asks for the cost of each view per run on a server busy with 8 pgbench clients.
Each read is timed as a monitoring_reader with pg_monitor would run it every 15 s: in its own
statement, on one connection. Side by side in one run:

1. idle: each read, interleaved, while nothing else runs;
2. busy: the same reads while `pgbench -c 8` runs TPC-B on the same server, so that
   pg_stat_activity, pg_locks and pg_stat_statements have 8 clients' worth in them;
3. what the reads take from the workload: pgbench's TPS in rounds with a reader polling the
   whole set once a second and in rounds without, interleaved.

Runs on the server named by the PG* variables (make bench starts a throwaway cluster).
Prints medians; performance is recorded in BENCHMARKS.md, never asserted.
"""

# ruff: noqa: S603, S607 - fixed argv of pgbench, found on PATH

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cache_bench import machine
from pg_monitoring import installer

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
READS_PER_ROUND = int(os.environ.get("BENCH_READS", "40"))
SCALE = 10
DATABASE = "pgm_bench_database"

READS = {
    "database_health": "SELECT * FROM monitoring.database_health",
    "database_connections": "SELECT * FROM monitoring.database_connections",
    "database_activity": "SELECT * FROM monitoring.database_activity",
    "database_blocking": "SELECT * FROM monitoring.database_blocking",
    "database_tables": "SELECT * FROM monitoring.database_tables",
    "database_replication": "SELECT * FROM monitoring.database_replication",
    "database_statements(20)": "SELECT * FROM monitoring.database_statements(20)",
    "database_statements(20, false)": "SELECT * FROM monitoring.database_statements(20, false)",
    "prometheus_metrics()": "SELECT monitoring.prometheus_metrics()",
}


def setup_database() -> str:
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    dsn = f"dbname={DATABASE}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        installer.install(conn)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("DROP ROLE IF EXISTS bench_reader")
        conn.execute("CREATE ROLE bench_reader IN ROLE monitoring_reader, pg_monitor")
        conn.execute("SELECT monitoring.snapshot_statements()")
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(SCALE), DATABASE], check=True, capture_output=True
    )
    return dsn


def time_reads(dsn: str, rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each read, `rounds` times, the reads interleaved in each round."""
    samples: dict[str, list[float]] = {name: [] for name in READS}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE bench_reader")
        conn.execute("SET statement_timeout = '5s'")
        for _ in range(rounds):
            for name, query in READS.items():
                started = time.perf_counter()
                conn.execute(query).fetchall()
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def pgbench(seconds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["pgbench", "-c", str(CLIENTS), "-j", "2", "-T", str(seconds), "-n", DATABASE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def tps(output: str) -> float:
    match = re.search(r"tps = ([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def busy_reads(dsn: str) -> tuple[dict[str, list[float]], float]:
    """The reads while pgbench runs, and pgbench's TPS with a reader polling every second."""
    run = pgbench(SECONDS)
    time.sleep(1)  # the clients connected and busy
    samples: dict[str, list[float]] = {name: [] for name in READS}
    deadline = time.monotonic() + SECONDS - 2
    while time.monotonic() < deadline:
        started = time.monotonic()
        for name, values in time_reads(dsn, 1).items():
            samples[name].extend(values)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    output, _ = run.communicate()
    return samples, tps(output)


def quiet_tps() -> float:
    output, _ = pgbench(SECONDS).communicate()
    return tps(output)


def main() -> None:
    print(machine())
    dsn = setup_database()
    time_reads(dsn, 3)  # warm caches and plans

    idle: dict[str, list[float]] = {name: [] for name in READS}
    busy: dict[str, list[float]] = {name: [] for name in READS}
    with_reader: list[float] = []
    without_reader: list[float] = []
    for run in range(RUNS):
        for name, values in time_reads(dsn, READS_PER_ROUND // RUNS).items():
            idle[name].extend(values)
        # alternate which comes first, so neither always meets a warmer server
        order = (False, True) if run % 2 else (True, False)
        for polled in order:
            if polled:
                samples, rate = busy_reads(dsn)
                for name, values in samples.items():
                    busy[name].extend(values)
                with_reader.append(rate)
            else:
                without_reader.append(quiet_tps())

    print(
        f"\nEach read as bench_reader (monitoring_reader + pg_monitor), p50 in ms; "
        f"busy = {CLIENTS} pgbench clients (TPC-B, scale {SCALE})"
    )
    print(f"{'read':34} {'idle':>8} {'busy':>8} {'busy/idle':>10}  n(busy)")
    for name in READS:
        i, b = statistics.median(idle[name]), statistics.median(busy[name])
        print(f"{name:34} {i:8.2f} {b:8.2f} {b / i:10.2f}  {len(busy[name])}")
    print(
        f"\npgbench TPS, median of {RUNS}: {statistics.median(without_reader):.0f} without "
        f"a reader, {statistics.median(with_reader):.0f} with every read once a second "
        f"(ratio {statistics.median(with_reader) / statistics.median(without_reader):.3f})"
    )


if __name__ == "__main__":
    main()
