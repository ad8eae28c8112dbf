"""Upgrades: the oldest release plus every upgrade must equal a fresh install of the newest.

procrastinate's migration test, for both install paths: it makes upgrade scripts
trustworthy by construction.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from pg_monitoring import installer
from pg_monitoring.cli import main

from .conftest import forget_extension, pg_dump_schema

SCRIPTS = installer.Scripts()
NEWEST = SCRIPTS.default_version
RELEASED = sorted((v for v in SCRIPTS.full() if v != NEWEST), key=installer.version_key)


def fresh_install(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        installer.install(conn)
    return pg_dump_schema(dsn)


def test_there_is_an_upgrade_to_test() -> None:
    assert RELEASED, "no released version: the upgrade tests below would test nothing"


@pytest.mark.parametrize("start", RELEASED)
def test_plain_upgrade_equals_fresh_install(make_database: Callable[..., str], start: str) -> None:
    upgraded = make_database()
    with psycopg.connect(upgraded) as conn:
        installer.install(conn, start)
    result = CliRunner().invoke(main, ["upgrade", "--dsn", upgraded])
    assert result.exit_code == 0, result.output
    assert "Upgraded" in result.output

    assert pg_dump_schema(upgraded) == fresh_install(make_database())
    with psycopg.connect(upgraded) as conn:
        history = conn.execute(
            "SELECT version, install_mode FROM monitoring.installed_versions ORDER BY id"
        ).fetchall()
    assert history[0] == (start, "script")
    assert history[-1] == (NEWEST, "script")


@pytest.mark.parametrize("start", RELEASED)
def test_alter_extension_update_equals_fresh_install(
    make_database: Callable[..., str], start: str
) -> None:
    upgraded = make_database()
    with psycopg.connect(upgraded, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE EXTENSION pg_monitoring VERSION {}").format(sql.Literal(start))
        )
        assert installer.upgrade(conn).action == "upgraded"
        assert installer.state(conn) == installer.State(NEWEST, "extension")

    forget_extension(upgraded)
    assert pg_dump_schema(upgraded) == fresh_install(make_database())


@pytest.mark.parametrize("start", RELEASED)
def test_upgrade_keeps_settings(make_database: Callable[..., str], start: str) -> None:
    dsn = make_database()
    with psycopg.connect(dsn) as conn:
        installer.install(conn, start)
        conn.execute("INSERT INTO monitoring.setting_definitions VALUES ('test.kept', '1', 'test')")
        conn.execute("SELECT monitoring.set_setting('test.kept', '5')")
        conn.commit()
        installer.upgrade(conn)
        assert conn.execute("SELECT monitoring.get_setting('test.kept')").fetchone() == (5,)
