"""`make bench-envelope`: error events/s through `pg-monitoring serve`'s Sentry ingest
(POST /api/<id>/envelope/) from BENCH_SENDERS concurrent senders (default 8), as SDKs send
them: one event per envelope, gzip, X-Sentry-Auth with a project's public key.

The envelopes are made first by the real sentry-sdk (its serializer, stack traces with
local variables, breadcrumbs, contexts; recorded by a transport that keeps them), gzip'd as
its HTTP transport does, then posted. Three cases, interleaved over BENCH_RUNS rounds (2)
after a warm-up round each: every event of one issue; events spread over 1,000 issues
(1,000 exception classes); and one issue with lean events (no local variables, no list of
installed packages: the size most other SDKs send). Events/s = events stored / wall time.
Goal (issue 15): >= 2,000 events/s on this 2-core machine, end to end (serve, the database
and the senders share it).
"""

from __future__ import annotations

import gzip
import os
import signal
import statistics
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import sentry_sdk
import urllib3
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clients import (
    at_once,
    free_port,
    own_cpu,
    postgres_cpu,
    postmaster_of,
    process_cpu,
    start_serve,
    wait_for_port,
)

from pg_monitoring import installer

SENDERS = int(os.environ.get("BENCH_SENDERS", "8"))
ROUNDS = int(os.environ.get("BENCH_RUNS", "2"))
EVENTS = int(os.environ.get("BENCH_ENVELOPE_EVENTS", "1000"))  # per round and case
DATABASE = "pgm_bench_envelope"
# serve as it runs by default, storing requests that arrive together in one call; and with
# a call per request (as many calls at once as the senders make requests)
MODES = {"together": ("--ingest-calls", "2"), "alone": ("--ingest-calls", "1000")}


class Keeper(Transport):
    """Keeps the SDK's envelopes, serialized, with their event ids."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[tuple[bytes, bytes]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.bodies.append((envelope.serialize(), str(envelope.headers["event_id"]).encode()))


def checkout(order: int, error: type[Exception]) -> None:
    basket = {"items": [1, 2, 3], "order": order}  # noqa: F841 - a local the SDK records
    raise error(f"payment for order {order} declined")


def make_envelopes(count: int, issues: int, lean: bool = False) -> list[tuple[bytes, bytes]]:
    keeper = Keeper()
    options: dict[str, Any] = {}
    if lean:  # no local variables, no list of installed packages: most other SDKs' size
        options = {"include_local_variables": False, "default_integrations": False}
    sentry_sdk.init(transport=keeper, release="shop@2.4.1", environment="bench", **options)
    errors = [type(f"PaymentError{n}", (Exception,), {}) for n in range(issues)]
    for n in range(count):
        # a request's own scope, as the SDK's web integrations give each: its user, tags and
        # a few breadcrumbs (one scope for all would carry the SDK's maximum of 100, which
        # capture bounds one by one: BENCHMARKS.md)
        with sentry_sdk.isolation_scope() as scope:
            scope.set_user({"id": str(n % 500), "email": f"user{n % 500}@example.com"})
            scope.set_tag("region", "eu")
            sentry_sdk.add_breadcrumb(category="http", message=f"GET /basket/{n}")
            sentry_sdk.add_breadcrumb(
                category="query", message="SELECT * FROM baskets WHERE id = %s"
            )
            sentry_sdk.add_breadcrumb(category="log", message=f"charging order {n}", level="info")
            try:
                checkout(n, errors[n % issues])
            except Exception:
                sentry_sdk.capture_exception()
    sentry_sdk.get_client().close()
    sentry_sdk.init()
    assert len(keeper.bodies) == count, len(keeper.bodies)
    return keeper.bodies


def fresh(envelopes: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The envelopes with new event ids (an event sent again is stored once: not the cost
    measured), gzip'd as the SDK's transport does. The SDK takes ~5 ms an event here: making
    each round's anew would take longer than the benchmark."""
    return [
        gzip.compress(body.replace(event_id, uuid.uuid4().hex.encode()), 6)
        for body, event_id in envelopes
    ]


def post_all(url: str, bodies: list[bytes], headers: dict[str, str]) -> float:
    """Posts `bodies` from SENDERS threads, each with its own HTTP connection, through urllib3
    as the sentry-sdk's transport does (requests, on top of it, costs the senders 3-4 times
    the CPU a post); returns the wall seconds."""
    parts = urllib3.util.parse_url(url)

    def sender(share: list[bytes], ready: Callable[[], None]) -> None:
        with urllib3.HTTPConnectionPool(parts.host, parts.port, maxsize=1) as pool:
            ready()
            for body in share:
                response = pool.request("POST", parts.path, body=body, headers=headers)
                if response.status != 200:
                    raise RuntimeError(f"a post failed: {response.status} {response.data!r}")

    return at_once([bodies[i::SENDERS] for i in range(SENDERS)], sender)


class CpuMeter:
    """CPU seconds spent by the senders (this process), serve and the database while posting."""

    def __init__(self, serve_pid: int, postmaster: int) -> None:
        self.serve_pid = serve_pid
        self.postmaster = postmaster
        self.spent = {"senders": 0.0, "serve": 0.0, "database": 0.0}

    def _now(self) -> dict[str, float]:
        return {
            "senders": own_cpu(),
            "serve": process_cpu(self.serve_pid),
            "database": postgres_cpu(self.postmaster),
        }

    def post(self, url: str, bodies: list[bytes], headers: dict[str, str]) -> float:
        before = self._now()
        seconds = post_all(url, bodies, headers)
        after = self._now()
        for part in self.spent:
            self.spent[part] += after[part] - before[part]
        return seconds


def noop_floor(bodies: list[bytes], headers: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Requests/s and CPU a request (senders, server) with a server that does nothing."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(__file__).parent),
            "noop_ingest_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )
    try:
        wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}/api/1/envelope/"
        rates, spent = [], {"senders": 0.0, "server": 0.0}
        for _ in range(ROUNDS):
            senders, server = own_cpu(), process_cpu(process.pid)
            rates.append(len(bodies) / post_all(url, bodies, headers))
            spent["senders"] += own_cpu() - senders
            spent["server"] += process_cpu(process.pid) - server
    finally:
        process.terminate()
        process.wait(20)
    count = len(bodies) * ROUNDS
    return statistics.median(rates), {part: 1e6 * cpu / count for part, cpu in spent.items()}


def main() -> None:
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = f"dbname={DATABASE}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        installer.install(conn)
        conn.execute("SELECT monitoring.run_maintenance()")
        project_id, key = conn.execute(
            "SELECT * FROM monitoring.add_sentry_project('bench', 'shop')"
        ).fetchone()
        conn.execute("SELECT monitoring.set_sentry_project_quota('bench', 1000000000, 1000000000)")
        postmaster = postmaster_of(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, sentry_client=bench/1",
    }
    cases = {"one issue": (1, False), "1,000 issues": (1000, False), "one issue, lean": (1, True)}
    made = {name: make_envelopes(EVENTS, *case) for name, case in cases.items()}
    sizes = {name: statistics.median(len(b) for b in fresh(made[name])) for name in cases}
    servers = {
        mode: start_serve(dsn, "--log-level", "warning", *options)
        for mode, options in MODES.items()
    }
    meters = {
        (name, mode): CpuMeter(servers[mode][0].pid, postmaster) for name in cases for mode in MODES
    }
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in meters}
    posted = 0
    try:
        for name in cases:  # a warm-up round each: the issues made, the plans cached
            for _, url in servers.values():
                post_all(f"{url}/api/{project_id}/envelope/", fresh(made[name]), headers)
                posted += EVENTS
        for _ in range(ROUNDS):
            for name in cases:
                for mode, (_, url) in servers.items():
                    bodies = fresh(made[name])
                    seconds = meters[name, mode].post(
                        f"{url}/api/{project_id}/envelope/", bodies, headers
                    )
                    rates[name, mode].append(EVENTS / seconds)
                    posted += EVENTS
        with psycopg.connect(dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM monitoring.error_events").fetchone()[0]
            seen, sampled_out = conn.execute(
                "SELECT sum(times_seen), sum(events_sampled_out) FROM monitoring.issues"
            ).fetchone()
            issues = conn.execute("SELECT count(*) FROM monitoring.error_issues").fetchone()[0]
        # every event counted; stored whole, or counted only once its issue's storm sampling
        # engaged (errors.storm_full_events, on by default: the one-issue cases)
        assert seen == posted, (seen, posted)
        assert stored + sampled_out == posted, (stored, sampled_out, posted)
        # PaymentError0 is the one issue too (the lean events' may be another: their
        # frames differ without the SDK's default integrations)
        assert min(EVENTS, 1000) <= issues <= min(EVENTS, 1000) + 1, issues
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGTERM)
            process.wait(20)
    print(
        f"Sentry envelopes through serve: {SENDERS} senders, one event per envelope "
        f"(gzip'd), {EVENTS:,} events a round"
    )
    for (name, mode), values in rates.items():
        spent = meters[name, mode].spent
        per_event = {part: 1e6 * cpu / (EVENTS * ROUNDS) for part, cpu in spent.items()}
        print(
            f"   {name:16} {sizes[name]:6,.0f} B  {mode:8} {statistics.median(values):7,.0f} "
            f"events/s (rounds: {', '.join(f'{r:,.0f}' for r in values)}); CPU an event: "
            + ", ".join(f"{part} {us:,.0f}" for part, us in per_event.items())
            + f", total {sum(per_event.values()):,.0f} us"
        )
    print(f"   every event counted; {stored:,} of {posted:,} stored whole, the rest sampled out")
    floor = noop_floor(fresh(made["one issue"]), headers)
    print(
        f"   floor: the same senders and bodies to uvicorn + Starlette answering at once "
        f"(bench/noop_ingest_app.py): {floor[0]:,.0f} requests/s; CPU a request: "
        + ", ".join(f"{part} {us:,.0f}" for part, us in floor[1].items())
        + " us"
    )
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
