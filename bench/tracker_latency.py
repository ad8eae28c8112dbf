"""What `capture_exception` costs the code that calls it, durable versus background mode.

    .venv/bin/python bench/tracker_latency.py [--dsn DSN] [--events N]

Without --dsn it uses libpq's PG* variables (as `make test`'s throwaway cluster sets them),
creates a scratch database, installs pg_monitoring there and drops it afterwards. It prints
p50 / p99 / max in microseconds of each call as the application sees it, for:

  build       building the event and its JSON only (the floor of any mode)
  durable     ErrorTracker: one capture_event round trip per call
  background  ErrorTracker(background=True): queued; a thread sends batches
  async       the same two with AsyncErrorTracker

and, for background modes, how long close() took to store what was queued. It reports and
asserts nothing: a measurement, run by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pg_monitoring import installer
from pg_monitoring.monitoring import AsyncErrorTracker, ErrorTracker


def charge(order_id: int) -> None:
    amount = order_id * 3
    raise TimeoutError(f"payment timeout for order {order_id} ({amount} EUR)")


def handle(order_id: int) -> None:
    charge(order_id)


def caught(order_id: int) -> BaseException:
    try:
        handle(order_id)
    except TimeoutError as error:
        return error
    raise AssertionError


def report(name: str, samples_ns: list[int], extra: str = "") -> None:
    micros = sorted(s / 1000 for s in samples_ns)
    p99 = micros[min(len(micros) - 1, int(len(micros) * 0.99))]
    print(
        f"{name:<20} n={len(micros):<6} p50={statistics.median(micros):9.1f} us"
        f"  p99={p99:9.1f} us  max={micros[-1]:9.1f} us{extra}"
    )


def timed(call: Callable[[], object], events: int) -> list[int]:
    samples = []
    for _ in range(events):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples


def run_sync(dsn: str, events: int) -> None:
    error = caught(1)
    with ErrorTracker(dsn, environment="bench") as tracker:
        tracker.capture_exception(error)  # warm up: pool, linecache
        report(
            "build",
            timed(
                lambda: tracker._encode(tracker.exception_event(error, context={"n": 1})), events
            ),
        )
        report("durable", timed(lambda: tracker.capture_exception(error, context={"n": 1}), events))
        assert tracker.failed_captures == 0

    # A queue that holds the whole burst: this measures the request path, not dropping.
    with ErrorTracker(dsn, environment="bench", background=True, max_queue=events) as tracker:
        tracker.capture_exception(error)
        tracker.flush()
        samples = timed(lambda: tracker.capture_exception(error, context={"n": 1}), events)
        start = time.perf_counter()
        tracker.close(timeout=None)
        drained = time.perf_counter() - start
        report(
            "background",
            samples,
            f"  then close() {drained * 1000:.0f} ms, dropped={tracker.dropped_events}"
            f"  failed={tracker.failed_captures}",
        )


async def run_async(dsn: str, events: int) -> None:
    error = caught(1)
    async with AsyncErrorTracker(dsn, environment="bench") as tracker:
        await tracker.capture_exception(error)
        samples = []
        for _ in range(events):
            start = time.perf_counter_ns()
            await tracker.capture_exception(error, context={"n": 1})
            samples.append(time.perf_counter_ns() - start)
        report("async durable", samples)

    tracker = AsyncErrorTracker(dsn, environment="bench", background=True, max_queue=events)
    await tracker.capture_exception(error)
    await tracker.flush()
    samples = []
    for _ in range(events):
        start = time.perf_counter_ns()
        await tracker.capture_exception(error, context={"n": 1})
        samples.append(time.perf_counter_ns() - start)
    start_close = time.perf_counter()
    await tracker.close(timeout=None)
    drained = time.perf_counter() - start_close
    report(
        "async background",
        samples,
        f"  then close() {drained * 1000:.0f} ms, dropped={tracker.dropped_events}"
        f"  failed={tracker.failed_captures}",
    )


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"pgm_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = make_conninfo("", dbname=name)
    try:
        with psycopg.connect(dsn) as conn:
            installer.install(conn)
        yield dsn
    finally:
        with psycopg.connect("", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a database with pg_monitoring installed")
    parser.add_argument("--events", type=int, default=2000, help="captures per mode")
    args = parser.parse_args()
    print(f"{args.events} captures per mode; latency of each call as the application sees it")
    if args.dsn:
        run_sync(args.dsn, args.events)
        asyncio.run(run_async(args.dsn, args.events))
        return
    with scratch_database() as dsn:
        run_sync(dsn, args.events)
        asyncio.run(run_async(dsn, args.events))


if __name__ == "__main__":
    main()
