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
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import requests
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clients import at_once, start_serve

from pg_monitoring import installer

SENDERS = int(os.environ.get("BENCH_SENDERS", "8"))
ROUNDS = int(os.environ.get("BENCH_RUNS", "2"))
EVENTS = int(os.environ.get("BENCH_ENVELOPE_EVENTS", "1000"))  # per round and case
DATABASE = "pgm_bench_envelope"


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
    def sender(share: list[bytes], ready: Callable[[], None]) -> None:
        with requests.Session() as session:
            ready()
            for body in share:
                response = session.post(url, data=body, headers=headers, timeout=60)
                if response.status_code != 200:
                    raise RuntimeError(f"a post failed: {response.status_code} {response.text}")

    return at_once([bodies[i::SENDERS] for i in range(SENDERS)], sender)


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
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, sentry_client=bench/1",
    }
    cases = {"one issue": (1, False), "1,000 issues": (1000, False), "one issue, lean": (1, True)}
    made = {name: make_envelopes(EVENTS, *case) for name, case in cases.items()}
    rounds = {name: [fresh(made[name]) for _ in range(ROUNDS + 1)] for name in cases}
    sizes = {name: statistics.median(len(b) for b in rounds[name][0]) for name in cases}
    process, url = start_serve(dsn, "--log-level", "warning")
    rates: dict[str, list[float]] = {name: [] for name in cases}
    try:
        endpoint = f"{url}/api/{project_id}/envelope/"
        for name in cases:  # a warm-up round each: the issues made, the plans cached
            post_all(endpoint, rounds[name][0], headers)
        for round_ in range(1, ROUNDS + 1):
            for name in cases:
                rates[name].append(EVENTS / post_all(endpoint, rounds[name][round_], headers))
        with psycopg.connect(dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM monitoring.error_events").fetchone()[0]
            seen, sampled_out = conn.execute(
                "SELECT sum(times_seen), sum(events_sampled_out) FROM monitoring.issues"
            ).fetchone()
            issues = conn.execute("SELECT count(*) FROM monitoring.error_issues").fetchone()[0]
        expected = len(cases) * (ROUNDS + 1) * EVENTS
        # every event counted; stored whole, or counted only once its issue's storm sampling
        # engaged (errors.storm_full_events, on by default: the one-issue cases)
        assert seen == expected, (seen, expected)
        assert stored + sampled_out == expected, (stored, sampled_out, expected)
        # PaymentError0 is the one issue too (the lean events' may be another: their
        # frames differ without the SDK's default integrations)
        assert min(EVENTS, 1000) <= issues <= min(EVENTS, 1000) + 1, issues
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    print(
        f"Sentry envelopes through serve: {SENDERS} senders, one event per envelope "
        f"(gzip'd), {EVENTS:,} events a round"
    )
    for name, values in rates.items():
        print(
            f"   {name:16} {sizes[name]:6,.0f} B  {statistics.median(values):8,.0f} events/s   "
            f"(rounds: {', '.join(f'{r:,.0f}' for r in values)})"
        )
    print(f"   every event counted; {stored:,} of {expected:,} stored whole, the rest sampled out")
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
