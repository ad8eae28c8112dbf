"""Fixtures: databases on the throwaway cluster that `make test` starts.

The server comes from libpq's PG* variables (pg_virtualenv sets them) or from
PG_MONITORING_TEST_DSN; it must be disposable, since tests create and drop databases and roles.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pg_monitoring import installer

REPO = Path(__file__).resolve().parent.parent
OWNER_ROLE = "pgm_test_owner"
OWNER_PASSWORD = "owner-secret"


@pytest.fixture(scope="session")
def server_dsn() -> str:
    dsn = os.environ.get("PG_MONITORING_TEST_DSN", "")
    if not dsn and not os.environ.get("PGHOST"):
        pytest.exit(
            "No test server: run `make test` (it starts a throwaway cluster), or set "
            "PG_MONITORING_TEST_DSN to a disposable server.",
            returncode=2,
        )
    return dsn


def superuser(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


@pytest.fixture(scope="session")
def owner_role(server_dsn: str) -> str:
    """An ordinary role, as on managed PostgreSQL: it owns its databases, nothing more.

    The monitoring_* roles exist before it installs anything (an earlier install or an
    administrator made them), so it needs no CREATEROLE.
    """
    with superuser(server_dsn) as conn:
        if not conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (OWNER_ROLE,)).rowcount:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(OWNER_ROLE), sql.Literal(OWNER_PASSWORD)
                )
            )
        for role in installer.ROLES:
            if not conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (role,)).rowcount:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute("GRANT monitoring_reader, monitoring_writer TO monitoring_admin")
    return OWNER_ROLE


@pytest.fixture
def make_database(server_dsn: str) -> Iterator[Callable[..., str]]:
    """Creates empty databases (dropped afterwards) and returns a superuser DSN for each."""
    created: list[str] = []

    def make(owner: str | None = None) -> str:
        name = f"pgm_{uuid.uuid4().hex[:10]}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        with superuser(server_dsn) as conn:
            conn.execute(statement)
        created.append(name)
        return make_conninfo(server_dsn, dbname=name)

    yield make
    with superuser(server_dsn) as conn:
        for name in created:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def as_owner(dsn: str) -> str:
    """The same database, reached as the ordinary owner role over TCP with a password."""
    return make_conninfo(dsn, user=OWNER_ROLE, password=OWNER_PASSWORD)


@pytest.fixture
def database(make_database: Callable[..., str]) -> str:
    return make_database()


@pytest.fixture
def installed_db(database: str) -> str:
    """A database with the newest version installed as a plain script."""
    with psycopg.connect(database) as conn:
        installer.install(conn)
    return database


def login_role(dsn: str, name: str, *grants: str) -> str:
    """`dsn` reached as login role `name` (made once per server: roles are cluster-wide),
    whose monitoring_* memberships are exactly `grants`."""
    password = f"{name}-secret"
    role = sql.Identifier(name)
    with superuser(dsn) as conn:
        if not conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (name,)).rowcount:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password))
            )
        held = {
            group
            for (group,) in conn.execute(
                "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = %s::regrole",
                (name,),
            )
        }
        for group in installer.ROLES:
            if group in grants and group not in held:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), role))
            elif group in held and group not in grants:
                conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), role))
    return make_conninfo(dsn, user=name, password=password)


def pg_dump(dsn: str, *options: str) -> str:
    """pg_dump's output, minus its per-run random keys."""
    out = subprocess.run(
        ["pg_dump", *options, "--dbname", dsn], check=True, capture_output=True, text=True
    ).stdout
    return "\n".join(
        line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def pg_dump_schema(dsn: str) -> str:
    """`pg_dump --schema-only` of schema monitoring, minus its per-run random keys."""
    return pg_dump(dsn, "--schema-only", "--schema=monitoring")


def forget_extension(dsn: str) -> None:
    """Turns an extension install into loose objects, so pg_dump prints all of them.

    pg_dump prints an extension as one CREATE EXTENSION line and its privileges as changes
    from the ones the script set (pg_init_privs); this is for comparing catalogs only.
    """
    with superuser(dsn) as conn, conn.transaction():
        conn.execute(
            """
            DELETE FROM pg_depend
            WHERE refclassid = 'pg_extension'::regclass
              AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_monitoring')
            """
        )
        conn.execute("DELETE FROM pg_init_privs WHERE privtype = 'e'")
        conn.execute("DELETE FROM pg_extension WHERE extname = 'pg_monitoring'")


def poll(read: Callable[[], Any], seconds: float = 20.0) -> Any:
    """`read()` again until it returns something true, or `seconds` have passed; its last
    value."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@dataclass
class LockWait:
    holder_pid: int
    waiter_pid: int
    holder: psycopg.Connection[Any]
    waiter: threading.Thread

    def release(self) -> None:
        """Ends the holder's transaction; the waiter's read then completes."""
        self.holder.commit()
        self.waiter.join(20)
        assert not self.waiter.is_alive(), "the waiting read did not end"


@contextmanager
def lock_wait(dsn: str, table: str) -> Iterator[LockWait]:
    """A session holding `table` in ACCESS EXCLUSIVE mode inside an open transaction, and
    another (in a thread) waiting to read it; both end when the block does."""
    holder = psycopg.connect(dsn)
    waiter = psycopg.connect(dsn, autocommit=True)
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.split(".")))
    thread = threading.Thread(target=lambda: waiter.execute(query))
    try:
        holder.execute(sql.SQL("LOCK TABLE {}").format(sql.Identifier(*table.split("."))))
        waiter.execute("SET lock_timeout = '20s'")
        thread.start()
        yield LockWait(holder.info.backend_pid, waiter.info.backend_pid, holder, thread)
    finally:
        holder.rollback()
        holder.close()
        if thread.ident is not None:  # started
            thread.join(20)
        waiter.close()


def import_error_without(package: str, module: str) -> str:
    """The ImportError's message on importing `module` in a fresh interpreter where
    `package` is not installed (an optional extra missing); '' when the import succeeds."""
    script = (
        f"import sys; sys.modules[{package!r}] = None\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
