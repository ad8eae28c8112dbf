"""Connectors: a DSN, a pool or a connection, sync and async; errors translated."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pg_monitoring import (
    AsyncConnector,
    Connector,
    InvalidArgumentError,
    NotInstalledError,
    PermissionDeniedError,
)
from pg_monitoring.installer import Scripts

NEWEST = Scripts().default_version
VERSION = "SELECT monitoring.version()"


def test_from_a_dsn(installed_db: str) -> None:
    connector = Connector(installed_db)
    try:
        assert connector.fetch_value(VERSION) == NEWEST
        assert connector.fetch_value(VERSION) == NEWEST
    finally:
        connector.close()


def test_from_a_pool(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        connector = Connector(pool)
        assert connector.fetch_value(VERSION) == NEWEST
        connector.close()
        assert not pool.closed, "a caller's pool is the caller's to close"


def test_on_a_callers_connection_joins_its_transaction(installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn:
        connector = Connector(conn)
        with conn.transaction(force_rollback=True):
            conn.execute(
                "INSERT INTO monitoring.setting_definitions VALUES ('test.x', '1', 'test')"
            )
            assert connector.fetch_value("SELECT monitoring.get_setting('test.x')") == 1
        with pytest.raises(InvalidArgumentError, match=r"unknown setting: 'test\.x'"):
            connector.fetch_value("SELECT monitoring.get_setting('test.x')")
        # The failed call was a savepoint or its own transaction: the connection still works.
        assert connector.fetch_value(VERSION) == NEWEST


def test_fetch_all_returns_dicts(installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn:
        rows = Connector(conn).fetch_all(
            "SELECT version, install_mode FROM monitoring.installed_versions"
        )
    assert rows == [{"version": NEWEST, "install_mode": "script"}]


def test_errors_are_translated(installed_db: str, make_database: Callable[..., str]) -> None:
    with psycopg.connect(installed_db) as conn:
        connector = Connector(conn)
        with pytest.raises(InvalidArgumentError) as caught:
            connector.fetch_value("SELECT monitoring.get_setting(%s)", ("nope",))
        assert isinstance(caught.value.__cause__, psycopg.errors.InvalidParameterValue)
        conn.execute("SET ROLE monitoring_writer")
        with pytest.raises(PermissionDeniedError):
            connector.fetch_value("SELECT monitoring.set_setting('x', '1')")
    with psycopg.connect(make_database()) as conn, pytest.raises(NotInstalledError):
        Connector(conn).fetch_value(VERSION)


def test_rejects_other_sources() -> None:
    with pytest.raises(TypeError, match="not int"):
        Connector(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not ConnectionPool"):
        AsyncConnector(ConnectionPool("", open=False))  # type: ignore[arg-type]


async def test_async_from_a_dsn(installed_db: str) -> None:
    connector = AsyncConnector(installed_db)
    try:
        assert await connector.fetch_value(VERSION) == NEWEST
        rows = await connector.fetch_all("SELECT version FROM monitoring.installed_versions")
        assert rows == [{"version": NEWEST}]
    finally:
        await connector.close()


async def test_async_from_a_pool_and_a_connection(installed_db: str) -> None:
    async with AsyncConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        assert await AsyncConnector(pool).fetch_value(VERSION) == NEWEST
    async with await psycopg.AsyncConnection.connect(installed_db) as conn:
        connector = AsyncConnector(conn)
        with pytest.raises(InvalidArgumentError):
            await connector.fetch_value("SELECT monitoring.get_setting('nope')")
        assert await connector.fetch_value(VERSION) == NEWEST
