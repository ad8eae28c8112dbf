"""`make demo`: the main job end to end on whatever database it is given.

With no DATABASE_URL, `make demo` runs this on a throwaway cluster. It installs the schema,
lets a small shop application fail in a few realistic ways, shows how the errors grouped and
what triage looks like, delivers an alert to a webhook receiver on 127.0.0.1, then some cache
traffic and a maintenance run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from . import cli, installer, issues, render
from .alerts import Worker, WorkerOptions, verify_signature
from .alerts.queries import OUTBOX_COUNTS
from .caching import MISS, SyncPostgresCache
from .connection import Connector
from .monitoring import ErrorTracker
from .monitoring.notifications import WebhookNotifier

Echo = Callable[[str], None]


# The shop application. Its bugs are the demo's errors: the same bug raised with other ids
# must become one issue, a different bug another.
class PaymentGatewayTimeout(Exception):
    pass


INVENTORY = {"sku-1": 12, "sku-2": 0}


def charge(order_id: int, amount_cents: int) -> None:
    raise PaymentGatewayTimeout(f"gateway did not answer within 30s for order {order_id}")


def place_order(order_id: int) -> None:
    charge(order_id, amount_cents=order_id * 7)


def parse_quantity(text: str) -> int:
    return int(text)


def reserve(sku: str) -> int:
    return INVENTORY[sku]


def checkout(order_id: int, sku: str) -> None:
    try:
        reserve(sku)
    except KeyError as missing:
        raise RuntimeError(f"checkout of order {order_id} failed") from missing


def sync_inventory() -> None:
    raise ConnectionError("warehouse API refused the connection")


def run(conn: psycopg.Connection[Any], echo: Echo = print) -> None:
    outcome = installer.install(conn)
    if outcome.action == "installed":
        echo(f"Installed pg_monitoring {outcome.version} as a plain script: {outcome.steps[0]}")
    else:
        echo(f"pg_monitoring {outcome.version} was installed already.")
    summarize_install(conn, echo)
    conn.commit()

    echo("\n== Errors from a small shop application")
    capture_shop_errors(conn, echo)
    echo("\n== Alerts (a webhook receiver on 127.0.0.1; `pg-monitoring worker` delivers)")
    deliver_an_alert(conn, echo)
    echo("\n== Cache")
    cache_traffic(conn, echo)
    echo("\n== Maintenance (run it every minute: pg_cron, or `pg-monitoring maintain --every 60`)")
    echo(render.to_json(issues.run_maintenance(Connector(conn))))


def summarize_install(conn: psycopg.Connection[Any], echo: Echo) -> None:
    report = cli.status_report(conn)
    kinds: dict[str, int] = {}
    for obj in report["objects"]:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    echo("  " + ", ".join(f"{count} {kind}s" for kind, count in sorted(kinds.items())))
    echo("  roles: " + ", ".join(role["role"] for role in report["roles"]))
    echo("  (`pg-monitoring status` lists every object)")


def capture_shop_errors(conn: psycopg.Connection[Any], echo: Echo) -> None:
    tracker = ErrorTracker(conn, environment="production", service="shop", release="1.4.0")
    take_orders(tracker, [1001, 1002, 1003, 1004, 1005])
    for text in ("3x", "two", "1O"):
        try:
            parse_quantity(text)
        except ValueError as error:
            tracker.capture_exception(
                error, context={"input": text, "password": "hunter2"}, user={"id": "user-1"}
            )
    try:
        checkout(1006, "sku-404")
    except RuntimeError as error:
        tracker.capture_exception(error, user={"email": "ada@example.com"})
    tracker.capture_message("stock for sku-2 is 0", level="warning")
    echo("Captured 9 errors and a warning. The issues they grouped into:")

    db = Connector(conn)
    rows = issues.list_issues(db, issues.IssueFilter(status=None))
    render.console().print(render.issues_table(rows))

    timeout_issue = next(r["id"] for r in rows if "PaymentGatewayTimeout" in r["title"])
    value_issue = next(r["id"] for r in rows if "ValueError" in r["title"])
    echo(f"\n`pg-monitoring show {value_issue}` (the password in its context was scrubbed):")
    detail = issues.show_issue(db, value_issue)
    assert detail is not None
    render.print_issue(render.console(), detail)

    echo(f"\nResolve #{timeout_issue}, then the gateway times out again:")
    issues.resolve(db, timeout_issue, actor="oncall@example.com")
    take_orders(tracker, [1007])
    again = issues.list_issues(db, issues.IssueFilter(status=None))
    row = next(r for r in again if r["id"] == timeout_issue)
    echo(f"  #{row['id']} is {row['status']} ({row['substatus']}), seen {row['times_seen']} times")
    echo(f"  history: {[h['action'] for h in issues.show_issue(db, timeout_issue)['history']]}")
    tracker.close()


def take_orders(tracker: ErrorTracker, order_ids: list[int]) -> None:
    for order_id in order_ids:
        try:
            place_order(order_id)
        except PaymentGatewayTimeout as error:
            tracker.capture_exception(
                error, context={"order_id": order_id}, user={"id": f"user-{order_id % 3}"}
            )


class _Receiver(BaseHTTPRequestHandler):
    """Stands for the team's alert endpoint: keeps what it is sent."""

    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def deliver_an_alert(conn: psycopg.Connection[Any], echo: Echo) -> None:
    """A webhook channel, a new issue, and the alert that reaches the receiver."""
    secret = "demo-signing-secret"  # noqa: S105 - the demo's own receiver checks it
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        notifier = WebhookNotifier(url=url, secret=secret, name="demo-webhook")
        notifier.add(conn)
        echo(f"Added {notifier!r}: it alerts on new issues and regressions.")
        tracker = ErrorTracker(conn, environment="production", service="shop", release="1.4.0")
        try:
            sync_inventory()
        except ConnectionError as error:
            tracker.capture_exception(error)
        tracker.close()
        counts = Connector(conn).fetch_all(OUTBOX_COUNTS)
        state = ", ".join(f"{c['status']} {c['notifications']}" for c in counts)
        echo(f"A new issue queued its alert in the capture's transaction; the outbox: {state}")

        dsn = make_conninfo(conn.info.dsn, password=conn.info.password or None)
        with Worker(dsn, WorkerOptions(concurrency=1)) as worker:
            outcomes = worker.deliver_once()
        for outcome in outcomes:
            echo(f"  worker: notification #{outcome.id} to {outcome.channel}: {outcome.status}")
    finally:
        server.shutdown()
        server.server_close()
    for headers, body in _Receiver.received:
        document = json.loads(body)
        signed = verify_signature(secret, headers.get("X-PgMonitoring-Signature", ""), body)
        echo(f"  the receiver got: {document['summary']}")
        echo(f"    Idempotency-Key {headers['Idempotency-Key']}, signature valid: {signed}")


def cache_traffic(conn: psycopg.Connection[Any], echo: Echo) -> None:
    """Some cache traffic, then what monitoring.cache_stats() makes of it."""
    cache = SyncPostgresCache(conn)
    cache.set("user:123", {"id": 123, "name": "Ada"}, ttl=3600)
    cache.set_many({f"product:{i}": {"id": i, "price": i * 10} for i in range(1, 4)}, ttl=1800)
    echo(f"  get user:123            -> {cache.get('user:123')}")
    echo(f"  get user:999            -> {cache.get('user:999', MISS)}")
    products = cache.get_many(f"product:{i}" for i in range(1, 5))
    echo(f"  get_many product:1..4   -> {sorted(products)}")
    echo(f"  ttl product:1           -> {cache.ttl('product:1')} s")
    echo(f"  incr page:views x3      -> {[cache.incr('page:views') for _ in range(3)]}")
    echo(f"  delete_pattern user:*   -> {cache.delete_pattern('user:*')} deleted")
    stats = cache.stats()
    echo("monitoring.cache_stats():")
    for name, value in stats.items():
        echo(f"  {name:<16} {value}")
