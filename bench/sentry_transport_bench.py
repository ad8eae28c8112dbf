"""What PostgresTransport.capture_envelope costs the thread that captures (goal: p50 <= 50 us).

    .venv/bin/python bench/sentry_transport_bench.py [--dsn DSN] [--events N]

Without --dsn it uses libpq's PG* variables, in a scratch database (tracker_latency.py's).
The real sentry-sdk calls the transport; the time inside `capture_envelope` is what is
measured (the SDK's own work, building and scrubbing the event, is printed beside it as the
whole `capture_exception`). Modes:

  errors        an exception event per capture, the queue large enough for the burst
  transactions  a transaction with 10 child spans per envelope
  database down the DSN names a closed port: the breaker open, the queue full, each
                envelope counted lost (queue_overflow); the flush gives up after 2 s

and how long the worker took to store the burst (events, spans per second). It reports and
asserts nothing: a measurement, run by hand.
"""

from __future__ import annotations

import argparse
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from tracker_latency import caught, report, scratch_database

from pg_monitoring.sentry import PostgresTransport


class Timed(PostgresTransport):
    """The transport, timing each capture_envelope as the SDK calls it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.samples: list[int] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        start = time.perf_counter_ns()
        super().capture_envelope(envelope)
        self.samples.append(time.perf_counter_ns() - start)


def burst(
    transport: Timed, events: int, capture: Callable[[int], object], name: str, wait: float = 60
) -> None:
    sentry_sdk.init(transport=transport, traces_sample_rate=1.0)
    capture(0)  # warm up: the worker thread, the pool, linecache
    sentry_sdk.flush(timeout=min(wait, 30))
    transport.samples.clear()
    whole = []
    for n in range(events):
        start = time.perf_counter_ns()
        capture(n)
        whole.append(time.perf_counter_ns() - start)
    start = time.perf_counter()
    sentry_sdk.flush(timeout=wait)
    drained = time.perf_counter() - start
    stats = transport.stats()
    report(f"{name}: envelope", transport.samples)
    report(
        f"{name}: whole call",
        whole,
        f"  then flush {drained * 1000:.0f} ms; stored={stats['stored']} lost={stats['lost']}",
    )
    sentry_sdk.get_client().close(timeout=2)


def error(n: int) -> None:
    sentry_sdk.capture_exception(caught(n))


def transaction(n: int) -> None:
    with sentry_sdk.start_transaction(op="http.server", name="POST /orders"):
        for i in range(10):
            with sentry_sdk.start_span(op="db", name=f"INSERT {i}"):
                pass


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(dsn: str, events: int) -> None:
    print(f"{events} captures per mode; time inside capture_envelope on the capturing thread")
    burst(Timed(dsn, queue_size=events + 10), events, error, "errors")
    burst(Timed(dsn, queue_size=events + 10), events, transaction, "transactions")
    down = f"host=127.0.0.1 port={closed_port()} user=nobody dbname=nothing"
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # a line per connect attempt
    burst(Timed(down, timeout=1.0), events, error, "database down", wait=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a database with pg_monitoring installed")
    parser.add_argument("--events", type=int, default=2000, help="captures per mode")
    args = parser.parse_args()
    if args.dsn:
        run(args.dsn, args.events)
        return
    with scratch_database() as dsn:
        run(dsn, args.events)


if __name__ == "__main__":
    main()
