"""`make demo`: the main job end to end, in a database of its own.

It installs the schema, lets a small shop application fail in a few realistic ways, shows how
the errors grouped and what triage looks like, has an instrumented web app fail a request
whose spans and logs go through `pg-monitoring serve` (demo_traces.py), reports an error with
the real sentry-sdk through a project's DSN to serve (demo_sentry.py), delivers an alert to a
webhook receiver on 127.0.0.1, then some cache traffic and a maintenance run.

It never writes to the database it is pointed at: that may be an application's (DATABASE_URL
is often exported in an application's shell), and the demo deletes cache keys such as `user:*`
and adds an alert channel. It creates a database of its own on that server and drops it at
the end, also on failure or Ctrl-C, with any monitoring_* role its install created. When the
role may not create databases, it runs on a throwaway local cluster (Debian's pg_virtualenv),
as `make demo` does without DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from . import installer, issues, render
from .alerts import Worker, WorkerOptions, verify_signature
from .alerts.queries import OUTBOX_COUNTS
from .caching import MISS, SyncPostgresCache
from .connection import Connector
from .demo_sentry import sentry_through_serve
from .demo_traces import traces_through_serve
from .errors import PgMonitoringError
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


# Where the demo runs -------------------------------------------------------------------

DATABASE_PREFIX = "pg_monitoring_demo_"

MISSING_ROLES = """
SELECT coalesce(array_agg(wanted.rolname ORDER BY wanted.n), '{}')
FROM unnest(%s::text[]) WITH ORDINALITY AS wanted (rolname, n)
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname = wanted.rolname)
"""


def main(dsn: str, local_cluster: bool = False, echo: Echo = print) -> int:
    """`pg-monitoring demo`: on the server of `dsn`, or on a throwaway local cluster.
    Returns the exit status."""
    if local_cluster:
        return on_local_cluster(echo)
    return on_server(dsn, echo)


def on_server(dsn: str, echo: Echo = print) -> int:
    """Runs the demo in a database it creates on the server of `dsn` and drops at the end;
    on a throwaway local cluster when the role may not create one."""
    name = DATABASE_PREFIX + secrets.token_hex(4)
    with _sigterm_as_ctrl_c(), psycopg.connect(dsn) as admin:
        # Only CREATE and DROP DATABASE (and ROLE) run here: the database this session is
        # connected to is the caller's, and is never written to.
        admin.autocommit = True
        info = admin.info
        user, theirs, server = info.user, info.dbname, f"{info.host}:{info.port}"
        (missing_roles,) = admin.execute(MISSING_ROLES, (list(installer.ROLES),)).fetchall()[0]
        try:
            # template0: an empty database, whatever the server's template1 holds
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        except psycopg.errors.InsufficientPrivilege as refusal:
            why = f"{refusal.diag.message_primary} (role {user} on {server})"
        else:
            echo(
                f"The demo runs in database {name}, created for it on {server}; it never "
                f"writes to database {theirs}. {name} is dropped at the end."
            )
            try:
                demo_dsn = make_conninfo(info.dsn, password=info.password or None, dbname=name)
                with psycopg.connect(demo_dsn) as conn:
                    run(conn, echo)
            finally:
                _drop(admin, name, server, missing_roles, echo)
            return 0
    if shutil.which("pg_virtualenv") is None:
        raise PgMonitoringError(
            f"{why}, and the demo never writes to database {theirs}. Run it as a role that "
            f"may create databases (ALTER ROLE {user} CREATEDB, or another --dsn), or on a "
            "throwaway local cluster: install a PostgreSQL server and Debian's "
            "postgresql-common (pg_virtualenv), then `pg-monitoring demo --local-cluster`."
        )
    echo(
        f"{why}, and the demo never writes to database {theirs}: it runs on a throwaway "
        f"local cluster instead. (ALTER ROLE {user} CREATEDB lets it run on {server}.)"
    )
    return on_local_cluster(echo)


def _drop(
    admin: psycopg.Connection[Any], name: str, server: str, roles: list[str], echo: Echo
) -> None:
    """Drops the demo database, then the monitoring_* roles its install created (roles are
    cluster-wide: they would outlive the database)."""
    try:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise PgMonitoringError(
            f"could not drop the demo database {name} ({error}); drop it with `dropdb {name}`"
        ) from error
    echo(f"Dropped database {name} on {server}.")
    dropped = []
    for role in reversed(roles):
        try:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            dropped.insert(0, role)
        except psycopg.Error as error:  # someone else started using it meanwhile
            echo(f"Kept role {role}, which the demo created: {error}")
    if dropped:
        echo(f"Dropped the roles the demo's install created: {', '.join(dropped)}.")


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a `kill`, a CI timeout) unwinds like Ctrl-C, so the demo database is dropped."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def on_local_cluster(echo: Echo = print) -> int:
    """Runs the demo in a child process on a throwaway cluster of Debian's pg_virtualenv,
    which removes the cluster when the child ends. Returns the child's exit status."""
    command = shutil.which("pg_virtualenv")
    if command is None:
        raise PgMonitoringError(
            "pg_virtualenv not found: install a PostgreSQL server and Debian's "
            "postgresql-common, or give the demo a server (--dsn or DATABASE_URL) whose role "
            "may create databases"
        )
    # Every pg_virtualenv cluster is "15/regress": without a pid file of its own, one ending
    # would delete the pid file of another one running (see the Makefile).
    pid_file = os.path.join(tempfile.gettempdir(), f"pg_monitoring-demo-{secrets.token_hex(4)}.pid")
    # The caller's libpq variables would point the child at another server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    echo("Starting a throwaway local cluster (Debian's pg_virtualenv); it is removed at the end.")
    sys.stdout.flush()
    cluster = [command, "-t", "-o", f"external_pid_file={pid_file}"]
    demo = [sys.executable, "-m", "pg_monitoring", "demo"]
    with subprocess.Popen([*cluster, *demo], env=env) as child:  # noqa: S603 - our own argv
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                # Ctrl-C reached the child as well: wait while it drops its database and
                # pg_virtualenv its cluster, rather than leave them running.
                continue


# The demo itself ----------------------------------------------------------------------


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
    echo("\n== Traces and logs: an instrumented app's failing request, through pg-monitoring serve")
    traces_through_serve(conn, echo)
    echo("\n== Sentry SDKs: the real sentry-sdk reports through a DSN to pg-monitoring serve")
    sentry_through_serve(conn, echo)
    echo("\n== Alerts (a webhook receiver on 127.0.0.1; `pg-monitoring worker` delivers)")
    deliver_an_alert(conn, echo)
    echo("\n== Cache")
    cache_traffic(conn, echo)
    echo("\n== Maintenance (run it every minute: pg_cron, or `pg-monitoring maintain --every 60`)")
    echo(render.to_json(issues.run_maintenance(Connector(conn))))


def summarize_install(conn: psycopg.Connection[Any], echo: Echo) -> None:
    report = installer.status_report(conn)
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
    render.print_issues(render.console(), rows)

    timeout_issue = next(r["id"] for r in rows if "PaymentGatewayTimeout" in r["title"])
    value_issue = next(r["id"] for r in rows if "ValueError" in r["title"])
    echo(f"\n`pg-monitoring show {value_issue}` (the password in its context was scrubbed):")
    detail = issues.show_issue(db, value_issue)
    assert detail is not None
    render.print_issue(render.console(soft_wrap=True), detail)

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
