"""`make demo` (`pg-monitoring demo`) next to an application's database: it runs in a
database of its own, or on a throwaway cluster, and leaves the application's as it was."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pg_monitoring import installer
from pg_monitoring.installer import Scripts

from .conftest import OWNER_ROLE, as_owner, pg_dump, superuser

NEWEST = Scripts().default_version
WHERE = re.compile(
    r"The demo runs in database (pg_monitoring_demo_[0-9a-f]{8}), created for it on (\S+);"
)


def command() -> Path:
    """The console script, as `make demo` runs it."""
    found = Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "pg-monitoring"
    if not found.exists():
        found = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "pg-monitoring"
    return found


def run_demo(database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(command()), "demo"],
        env={**os.environ, "DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture
def app_database(make_database: Callable[..., str], owner_role: str) -> str:
    """An application's database (superuser DSN), owned by a role without CREATEDB: its own
    pg_monitoring with issues, a pending alert, an alert channel and cache keys the demo uses
    too (it deletes `user:*` and sets `product:1`)."""
    dsn = make_database(owner=owner_role)
    with psycopg.connect(as_owner(dsn)) as conn:
        installer.install(conn)
        conn.execute(
            "SELECT monitoring.add_channel('ops', 'webhook', "
            """p_secrets => '{"url": "https://ops.example.com/hook"}')"""
        )
        for kind in ("PaymentDeclined", "OutOfStock", "Timeout", "KeyError", "ValueError"):
            conn.execute(
                "SELECT monitoring.capture_error(%s, %s)", (kind, f"{kind} in order 7 of user 1")
            )
        conn.execute("""SELECT monitoring.cache_set('user:1', '{"name": "Ada"}', NULL)""")
        conn.execute("""SELECT monitoring.cache_set('user:2', '{"name": "Grace"}', 3600)""")
        conn.execute("""SELECT monitoring.cache_set('product:1', '{"price": 999}', NULL)""")
    return dsn


def snapshot(dsn: str, server_dsn: str) -> tuple[str, list[str]]:
    """The whole application database, schema and rows (the unlogged cache included), and the
    databases on the server."""
    with superuser(server_dsn) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database ORDER BY 1")]
    return pg_dump(dsn), names


def test_the_demo_runs_in_a_database_of_its_own(app_database: str, server_dsn: str) -> None:
    before = snapshot(app_database, server_dsn)
    for data in ("user:1", "product:1", "PaymentDeclined", "https://ops.example.com/hook"):
        assert data in before[0]

    result = run_demo(app_database, COLUMNS="160")  # the issues' titles on one line each

    assert result.returncode == 0, result.stderr
    out = result.stdout
    where = WHERE.search(out)
    assert where, out
    name, server = where.groups()
    with psycopg.connect(app_database) as conn:
        assert server == f"{conn.info.host}:{conn.info.port}"
        assert f"it never writes to database {conn.info.dbname}." in out
    assert f"Dropped database {name} on {server}." in out
    assert snapshot(app_database, server_dsn) == before

    # And it is the whole demo.
    assert f"Installed pg_monitoring {NEWEST}" in out
    assert "PaymentGatewayTimeout: gateway did not answer within 30s" in out
    assert 'password: "[Filtered]"' in out
    assert "is unresolved (regressed), seen 6 times" in out
    assert "get user:999            -> MISS" in out
    assert "delete_pattern user:*   -> 1 deleted" in out
    assert "worker: notification #1 to demo-webhook: sent" in out
    assert (
        "the receiver got: New issue in shop/production: ConnectionError: warehouse API refused"
        in out
    )
    assert "signature valid: True" in out
    # an instrumented app's failing request through serve: its waterfall, logs, the join
    assert "POST /checkout/7001 -> 500" in out
    assert re.search(r"POST /checkout/\{order\} +storefront .* !\n", out), out
    assert re.search(r"\n  SELECT cart +storefront ", out), out
    assert re.search(r"warn +storefront payment gateway answered 402 for order 7001 trace=", out)
    assert re.search(
        r"card declined for order 7001 \| user user-42 \| trace [0-9a-f]{32} \| "
        r"[0-9.]+ ms \| error",
        out,
    ), out
    # the real sentry-sdk through a project's DSN to serve
    assert re.search(
        r"sentry_sdk.capture_exception\(\) -> issue #\d+: BasketNotFound: basket 7 does not "
        r"exist \(service basket\)",
        out,
    ), out
    assert "pg-monitoring stats: demo-shop accepted error: 1 this hour" in out
    assert '"events_folded": 14' in out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_demo_drops_its_database(
    app_database: str, server_dsn: str, signum: signal.Signals
) -> None:
    before = snapshot(app_database, server_dsn)
    with subprocess.Popen(
        [str(command()), "demo"],
        env={**os.environ, "DATABASE_URL": app_database},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as demo:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("== Errors"):  # installed, and capturing into its database
                demo.send_signal(signum)
                break
        rest, errors = demo.communicate(timeout=60)
    out = "".join(lines) + rest
    assert demo.returncode != 0, out
    assert "Aborted!" in errors, "interrupted in the middle, not at the end"
    where = WHERE.search(out)
    assert where, out
    assert f"Dropped database {where.group(1)} on {where.group(2)}." in out
    assert snapshot(app_database, server_dsn) == before


def test_the_roles_its_install_created_are_dropped(app_database: str, server_dsn: str) -> None:
    # A server without the monitoring_* roles: hide them under other names meanwhile.
    hidden = {role: f"pgm_hidden_{role}" for role in installer.ROLES}
    rename = "ALTER ROLE {} RENAME TO {}"
    with superuser(server_dsn) as conn:
        for role, other in hidden.items():
            conn.execute(sql.SQL(rename).format(sql.Identifier(role), sql.Identifier(other)))
    try:
        result = run_demo(app_database)
        with superuser(server_dsn) as conn:
            left = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(installer.ROLES),)
            ).fetchall()
    finally:
        with superuser(server_dsn) as conn:
            for role, other in hidden.items():
                conn.execute(sql.SQL(rename).format(sql.Identifier(other), sql.Identifier(role)))
    assert result.returncode == 0, result.stderr
    assert "Installed pg_monitoring" in result.stdout
    assert (
        "Dropped the roles the demo's install created: "
        "monitoring_reader, monitoring_writer, monitoring_admin." in result.stdout
    )
    assert left == []


@pytest.mark.skipif(shutil.which("pg_virtualenv") is None, reason="needs Debian's pg_virtualenv")
def test_a_role_without_createdb_gets_a_throwaway_cluster(
    app_database: str, server_dsn: str
) -> None:
    before = snapshot(app_database, server_dsn)

    result = run_demo(as_owner(app_database))

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"permission denied to create database (role {OWNER_ROLE} on " in out
    assert "it runs on a throwaway local cluster instead" in out
    assert "Creating new PostgreSQL cluster" in out
    assert "signature valid: True" in out, "the whole demo ran there"
    where = WHERE.search(out)
    assert where, out
    with psycopg.connect(app_database) as conn:
        assert where.group(2) != f"{conn.info.host}:{conn.info.port}", "another server"
    assert "Dropping cluster" in out
    assert snapshot(app_database, server_dsn) == before


def test_a_role_without_createdb_and_no_pg_virtualenv_is_told_what_to_do(
    app_database: str, server_dsn: str
) -> None:
    before = snapshot(app_database, server_dsn)

    result = run_demo(as_owner(app_database), PATH=str(command().parent))  # no pg_virtualenv

    assert result.returncode == 1
    with psycopg.connect(app_database) as conn:
        dbname = conn.info.dbname
    assert "Error: permission denied to create database" in result.stderr
    assert f"the demo never writes to database {dbname}" in result.stderr
    assert f"ALTER ROLE {OWNER_ROLE} CREATEDB" in result.stderr
    assert "pg-monitoring demo --local-cluster" in result.stderr
    assert result.stdout == ""
    assert snapshot(app_database, server_dsn) == before
