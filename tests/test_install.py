"""The two install paths, upgrades and uninstall, against real databases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from pg_monitoring import installer
from pg_monitoring.cli import main
from pg_monitoring.errors import InstallError, NotInstalledError

from .conftest import as_owner, forget_extension, pg_dump_schema, superuser

NEWEST = installer.Scripts().default_version


def create_extension(dsn: str, version: str | None = None) -> None:
    statement = sql.SQL("CREATE EXTENSION pg_monitoring")
    if version:
        statement += sql.SQL(" VERSION {}").format(sql.Literal(version))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


def test_create_extension_and_plain_script_give_the_same_catalog(
    make_database: Callable[..., str], owner_role: str
) -> None:
    # Both as an ordinary database owner, as on a managed server.
    by_extension = make_database(owner=owner_role)
    by_script = make_database(owner=owner_role)
    create_extension(as_owner(by_extension))
    with psycopg.connect(as_owner(by_script)) as conn:
        assert installer.install(conn).action == "installed"

    forget_extension(by_extension)
    extension_dump = pg_dump_schema(by_extension)
    assert "CREATE TABLE monitoring.installed_versions" in extension_dump
    assert extension_dump == pg_dump_schema(by_script)


def test_plain_install_is_owned_by_the_installing_role(
    make_database: Callable[..., str], owner_role: str
) -> None:
    dsn = make_database(owner=owner_role)
    with psycopg.connect(as_owner(dsn)) as conn:
        installer.install(conn)
        owners = conn.execute(
            """
            SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class
            WHERE relnamespace = 'monitoring'::regnamespace
            """
        ).fetchall()
        mode = conn.execute("SELECT monitoring.install_mode()").fetchone()
    assert owners == [(owner_role,)]
    assert mode == ("script",)


def test_install_twice_is_a_no_op(database: str) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["install", "--dsn", database])
    second = runner.invoke(main, ["install", "--dsn", database])

    assert first.exit_code == 0, first.output
    assert f"Installed pg_monitoring {NEWEST}" in first.output
    assert second.exit_code == 0, second.output
    assert "already installed" in second.output
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT version FROM monitoring.installed_versions").fetchall()
    assert rows == [(NEWEST,)]


def test_install_reads_database_url(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database)
    result = CliRunner().invoke(main, ["install"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(database) as conn:
        assert installer.state(conn).version == NEWEST


def test_concurrent_installs_install_once(database: str) -> None:
    outcomes: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def install() -> None:
        try:
            with psycopg.connect(database) as conn:
                barrier.wait()
                outcomes.append(installer.install(conn).action)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=install) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(outcomes) == ["installed", "unchanged", "unchanged", "unchanged"]


def test_missing_roles_without_createrole_is_a_clear_error(
    make_database: Callable[..., str], owner_role: str
) -> None:
    dsn = make_database(owner=owner_role)
    # Roles are cluster-wide and other databases use them: hide them inside a transaction
    # that is rolled back, and install as the owner (no CREATEROLE) in the same session.
    with superuser(dsn) as conn, conn.transaction(force_rollback=True):
        conn.execute("ALTER ROLE monitoring_writer RENAME TO pgm_hidden_writer")
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner_role)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
            installer.install(conn)
        assert caught.value.diag.message_primary == (
            "pg_monitoring needs the roles monitoring_writer, "
            f"and {owner_role} may not create roles"
        )
        assert "CREATE ROLE" in (caught.value.diag.message_hint or "")
        conn.execute("RESET ROLE")
        schema = conn.execute("SELECT to_regnamespace('monitoring')").fetchone()
    assert schema == (None,), "a failed install leaves nothing behind"


def test_install_creates_missing_roles_when_allowed(database: str) -> None:
    with superuser(database) as conn, conn.transaction(force_rollback=True):
        conn.execute("ALTER ROLE monitoring_reader RENAME TO pgm_hidden_reader")
        installer.install(conn)
        created = conn.execute(
            "SELECT rolcanlogin, pg_has_role('monitoring_admin', oid, 'MEMBER') "
            "FROM pg_roles WHERE rolname = 'monitoring_reader'"
        ).fetchone()
    assert created == (False, True)


def test_install_refuses_a_foreign_schema_named_monitoring(database: str) -> None:
    with superuser(database) as conn:
        conn.execute("CREATE SCHEMA monitoring")
        conn.execute("CREATE TABLE monitoring.mine (id int)")
        with pytest.raises(InstallError, match="not pg_monitoring's"):
            installer.install(conn)
        assert conn.execute("SELECT to_regclass('monitoring.installed_versions')").fetchone() == (
            None,
        )


def test_install_into_an_empty_schema_named_monitoring(database: str) -> None:
    with superuser(database) as conn:
        conn.execute("CREATE SCHEMA monitoring")
        assert installer.install(conn).action == "installed"


def test_a_failing_script_leaves_nothing_behind(database: str, tmp_path: Path) -> None:
    (tmp_path / "pg_monitoring.control").write_text("default_version = '9.0.0'\n")
    (tmp_path / "pg_monitoring--9.0.0.sql").write_text(
        "CREATE SCHEMA monitoring;\nCREATE TABLE monitoring.half (id int);\nSELECT 1/0;\n"
    )
    with superuser(database) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            installer.install(conn, scripts=installer.Scripts(tmp_path))
        assert conn.execute("SELECT to_regnamespace('monitoring')").fetchone() == (None,)


def test_install_over_an_extension_install(database: str) -> None:
    create_extension(database)
    with psycopg.connect(database) as conn:
        assert installer.install(conn).action == "unchanged"
        assert installer.state(conn) == installer.State(NEWEST, "extension")


def test_upgrade_needs_an_install(database: str) -> None:
    with psycopg.connect(database) as conn, pytest.raises(NotInstalledError):
        installer.upgrade(conn)


def test_upgrade_at_the_newest_version_is_a_no_op(installed_db: str) -> None:
    result = CliRunner().invoke(main, ["upgrade", "--dsn", installed_db])
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output


def test_uninstall_asks_first(installed_db: str) -> None:
    runner = CliRunner()
    declined = runner.invoke(main, ["uninstall", "--dsn", installed_db], input="n\n")
    assert declined.exit_code == 1
    assert "Aborted" in declined.output
    with psycopg.connect(installed_db) as conn:
        assert installer.state(conn).installed

    accepted = runner.invoke(main, ["uninstall", "--dsn", installed_db], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    with psycopg.connect(installed_db) as conn:
        assert not installer.state(conn).installed
        assert conn.execute("SELECT to_regnamespace('monitoring')").fetchone() == (None,)
        roles = conn.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'monitoring\\_%'"
        ).fetchone()
    assert roles == (3,), "roles are cluster-wide and stay unless --drop-roles"


def test_uninstall_an_extension_install(database: str) -> None:
    create_extension(database)
    result = CliRunner().invoke(main, ["uninstall", "--yes", "--dsn", database])
    assert result.exit_code == 0, result.output
    with psycopg.connect(database) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_monitoring'"
        ).fetchone() == (0,)
        assert conn.execute("SELECT to_regnamespace('monitoring')").fetchone() == (None,)


def test_cli_reports_a_connection_failure() -> None:
    result = CliRunner().invoke(
        main, ["status", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2"]
    )
    assert result.exit_code == 1
    assert "cannot connect" in result.output


def write_scripts(directory: Path, names: list[str], default: str) -> installer.Scripts:
    (directory / "pg_monitoring.control").write_text(f"default_version = '{default}'\n")
    for name in names:
        (directory / name).write_text("SELECT 1;\n")
    return installer.Scripts(directory)


def test_upgrade_path_takes_the_shortest_chain(tmp_path: Path) -> None:
    scripts = write_scripts(
        tmp_path,
        [
            "pg_monitoring--1.0.0.sql",
            "pg_monitoring--1.0.0--1.1.0.sql",
            "pg_monitoring--1.1.0--1.2.0.sql",
            "pg_monitoring--1.0.0--1.2.0.sql",
            "pg_monitoring--1.2.0--1.3.0.sql",
        ],
        default="1.3.0",
    )
    assert [p.name for p in scripts.upgrade_path("1.0.0", "1.3.0")] == [
        "pg_monitoring--1.0.0--1.2.0.sql",
        "pg_monitoring--1.2.0--1.3.0.sql",
    ]
    assert [p.name for p in scripts.install_plan("1.3.0")] == [
        "pg_monitoring--1.0.0.sql",
        "pg_monitoring--1.0.0--1.2.0.sql",
        "pg_monitoring--1.2.0--1.3.0.sql",
    ]
    with pytest.raises(InstallError, match=r"no upgrade path from 1\.3\.0 to 1\.0\.0"):
        scripts.upgrade_path("1.3.0", "1.0.0")
    with pytest.raises(InstallError, match=r"no script installs version 2\.0\.0"):
        scripts.install_plan("2.0.0")


def test_the_python_package_and_the_extension_share_a_version() -> None:
    from pg_monitoring import __version__

    assert __version__ == NEWEST


def test_install_without_built_scripts_says_how_to_get_them(database: str, tmp_path: Path) -> None:
    shutil.copytree(
        Path(installer.__file__).parent,
        tmp_path / "pg_monitoring",
        ignore=shutil.ignore_patterns("extension", "__pycache__"),
    )
    installed = subprocess.run(
        [sys.executable, "-m", "pg_monitoring", "install", "--dsn", database],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert installed.returncode == 1
    (line,) = installed.stderr.splitlines()
    assert line.startswith(f"Error: no extension scripts in {tmp_path}/pg_monitoring/extension")
    assert "pip install ./python" in line
