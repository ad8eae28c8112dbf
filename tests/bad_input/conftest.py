"""One database for the whole bad-input suite, installed by an ordinary owner role as on
managed PostgreSQL, and one connection per role the families call as."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pg_monitoring import installer

from ..conftest import as_owner, login_role, superuser
from .suite import Database


@pytest.fixture(scope="session")
def db(server_dsn: str, owner_role: str) -> Iterator[Database]:
    """Shared by the families on purpose: what one stored meets the others (an alert rule's
    bounds at the fold of events captured later, maintenance over all of it)."""
    name = f"pgm_bad_input_{uuid.uuid4().hex[:8]}"
    with superuser(server_dsn) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner_role)
            )
        )
    dsn = make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(as_owner(dsn)) as conn:
        installer.install(conn)
    writer_dsn = login_role(dsn, "pgm_bad_input_writer", "monitoring_writer")
    admin_dsn = login_role(dsn, "pgm_bad_input_admin", "monitoring_admin")
    with (
        psycopg.connect(as_owner(dsn), autocommit=True) as owner,
        psycopg.connect(writer_dsn, autocommit=True) as writer,
        psycopg.connect(admin_dsn, autocommit=True) as admin,
    ):
        yield Database(owner=owner, writer=writer, admin=admin, writer_dsn=writer_dsn)
    with superuser(server_dsn) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
