"""`make bench-cache`: the cache against itself and against a real redis-server.

1. Wrapper cost: pgbench runs GET and SET through the stored functions and as the plain SQL
   statement they wrap, on the same table (target: ratio >= 0.9). Twice: as separate
   8-client runs (throughput, interleaved rounds), and as one 1-client run that draws each
   transaction at random from both scripts, so that both meet exactly the same machine
   (latency per script; the noise of a shared 2-core VM cancels out).
2. Server throughput: the same pgbench GET/SET against redis-benchmark, same client count.
3. Client latency: one Python caller, SyncPostgresCache vs redis-py, get and set p50
   (target: within 1.2x of redis-py on loopback), measured in interleaved blocks.

Runs on the server named by the PG* variables (make bench starts a throwaway cluster).
Prints medians of several runs; performance is recorded in BENCHMARKS.md, never asserted.
"""

# ruff: noqa: S603, S607 - fixed argv of pgbench, redis-benchmark, lscpu, found on PATH

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg_pool import ConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pg_monitoring import SyncPostgresCache, installer
from pg_monitoring import redis_compat as compat
from tests.redis_server import redis_server

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
KEYS = 10_000
LATENCY_CALLS = 3_000
DATABASE = "pgm_bench_cache"

# :k is pgbench's random key number; every key exists, so every GET is a hit.
SCRIPTS = {
    "get via monitoring.cache_get": (
        "SELECT value, value_bytes FROM monitoring.cache_get('key:' || :k);"
    ),
    "get as plain SQL": (
        "SELECT value, value_bytes FROM monitoring.cache_entries "
        "WHERE index_key = 'key:' || :k AND key = 'key:' || :k AND expires_at > now();"
    ),
    "set via monitoring.cache_set": (
        """SELECT monitoring.cache_set('key:' || :k, '{"v": 1}', 3600);"""
    ),
    # The statement cache_set runs for a plain SET: every column a SET replaces.
    "set as plain SQL": (
        "INSERT INTO monitoring.cache_entries (key, value, value_bytes, expires_at, tags) "
        """VALUES ('key:' || :k, '{"v": 1}', NULL, now() + 3600 * interval '1 second', NULL) """
        "ON CONFLICT (index_key) DO UPDATE SET key = excluded.key, value = excluded.value, "
        "value_bytes = excluded.value_bytes, expires_at = excluded.expires_at, "
        "created_at = excluded.created_at, tags = excluded.tags, locked_until = NULL;"
    ),
}


def setup_database() -> str:
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = f"dbname={DATABASE}"
    with psycopg.connect(dsn) as conn:
        installer.install(conn)
        conn.execute(
            "INSERT INTO monitoring.cache_entries (key, value, expires_at) "
            """SELECT 'key:' || i, '{"v": 1}', now() + interval '1 day' """
            "FROM generate_series(1, %s) AS i",
            (KEYS,),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE monitoring.cache_entries")
    return dsn


def pgbench(script: str) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as file:
        file.write(f"\\set k random(1, {KEYS})\n{script}\n")
        file.flush()
        out = subprocess.run(
            [
                "pgbench",
                "-n",
                "-M",
                "prepared",
                "-c",
                str(CLIENTS),
                "-j",
                "2",
                "-T",
                str(SECONDS),
                "-f",
                file.name,
                DATABASE,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    assert match, out
    return float(match.group(1))


def pgbench_side_by_side(names: list[str]) -> dict[str, float]:
    """Latency average (ms) of each script in one 1-client run that mixes them at random."""
    with tempfile.TemporaryDirectory() as directory:
        args = []
        for number, name in enumerate(names):
            path = Path(directory) / f"script{number}.sql"
            path.write_text(f"\\set k random(1, {KEYS})\n{SCRIPTS[name]}\n")
            args += ["-f", f"{path}@1"]
        out = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-c", "1", "-T", str(SECONDS), *args, DATABASE],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    latencies = [float(ms) for ms in re.findall(r"- latency average = ([\d.]+) ms", out)]
    assert len(latencies) == len(names), out
    return dict(zip(names, latencies, strict=True))


def redis_benchmark(port: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            str(CLIENTS),
            "-n",
            str(40_000 * SECONDS),
            "-r",
            str(KEYS),
            "-t",
            "get,set",
            "--csv",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rates = {}
    for line in out.splitlines():
        cells = [cell.strip('"') for cell in line.split(",")]
        if cells[0] in ("GET", "SET"):
            rates[cells[0].lower()] = float(cells[1])
    return rates


def interleaved_p50(variants: dict[str, Callable[[int], Any]]) -> dict[str, float]:
    """p50 µs of each variant, measured in alternating blocks so that drift hits all alike."""
    block = 200
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for round_number in range(LATENCY_CALLS // block + 1):
        for name, call in variants.items():
            for i in range(block):
                start = time.perf_counter_ns()
                call(i % KEYS + 1)
                elapsed = time.perf_counter_ns() - start
                if round_number:  # the first round warms up connections and caches
                    samples[name].append(elapsed)
    return {name: statistics.median(values) / 1000 for name, values in samples.items()}


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(
                ["lscpu"], capture_output=True, text=True
            ).stdout.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    server = subprocess.run(["pg_config", "--version"], capture_output=True, text=True).stdout
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()[2]
    return (
        f"{os.cpu_count()} cores ({model}), {memory_kb / 1024 / 1024:.0f} GiB RAM; "
        f"{server.strip()}, Redis {redis_version}"
    )


def main() -> None:
    print(f"Machine: {machine()}")
    print(f"{CLIENTS} clients, {SECONDS} s per pgbench run, median of {RUNS} runs\n")
    dsn = setup_database()
    tps: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    for _ in range(RUNS):  # interleaved, so drift hits every variant alike
        for name, script in SCRIPTS.items():
            tps[name].append(pgbench(script))
    med = {name: statistics.median(values) for name, values in tps.items()}
    mixed: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    for _ in range(RUNS):
        for name, ms in pgbench_side_by_side(list(SCRIPTS)).items():
            mixed[name].append(ms)
    mixed_med = {name: statistics.median(values) for name, values in mixed.items()}

    with redis_server() as port:
        redis_rates = [redis_benchmark(port) for _ in range(RUNS)]
        redis_med = {op: statistics.median(r[op] for r in redis_rates) for op in ("get", "set")}

        real = redis.Redis(port=port)
        real.mset({f"key:{i}": b'{"v": 1}' for i in range(1, KEYS + 1)})
        with ConnectionPool(dsn, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
            pool.wait()
            cache = SyncPostgresCache(pool)
            facade = compat.from_url(pool)
            latency = interleaved_p50(
                {
                    "redis-py get": lambda i: real.get(f"key:{i}"),
                    "PostgresCache get": lambda i: cache.get(f"key:{i}"),
                    "redis_compat get": lambda i: facade.get(f"key:{i}"),
                    "redis-py set": lambda i: real.set(f"key:{i}", b"1", ex=3600),
                    "PostgresCache set": lambda i: cache.set(f"key:{i}", {"v": 1}, ttl=3600),
                    "redis_compat set": lambda i: facade.set(f"key:{i}", b"1", ex=3600),
                }
            )
        real.close()

    print("| pgbench, transactions/s | median | ratio to plain SQL |")
    print("| --- | ---: | ---: |")
    for op in ("get", "set"):
        plain = med[f"{op} as plain SQL"]
        for name in (f"{op} as plain SQL", next(n for n in SCRIPTS if n.startswith(f"{op} via"))):
            print(f"| {name} | {med[name]:,.0f} | {med[name] / plain:.2f} |")
    print("\n| side by side, 1 client, latency ms | plain SQL | stored function | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for op in ("get", "set"):
        plain = mixed_med[f"{op} as plain SQL"]
        ours = mixed_med[next(n for n in SCRIPTS if n.startswith(f"{op} via"))]
        print(f"| {op} | {plain:.3f} | {ours:.3f} | {plain / ours:.2f} |")
    print("\n| server throughput, ops/s | PostgreSQL (stored function) | Redis | PG / Redis |")
    print("| --- | ---: | ---: | ---: |")
    for op in ("get", "set"):
        ours = med[next(n for n in SCRIPTS if n.startswith(f"{op} via"))]
        print(f"| {op.upper()} | {ours:,.0f} | {redis_med[op]:,.0f} | {ours / redis_med[op]:.2f} |")
    print(
        "\n| one Python caller, p50 µs | redis-py | PostgresCache | ratio | redis_compat | ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for op in ("get", "set"):
        base = latency[f"redis-py {op}"]
        ours = latency[f"PostgresCache {op}"]
        facade_p50 = latency[f"redis_compat {op}"]
        print(
            f"| {op} | {base:.0f} | {ours:.0f} | {ours / base:.2f} | {facade_p50:.0f} | "
            f"{facade_p50 / base:.2f} |"
        )

    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
