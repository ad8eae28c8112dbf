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


@pytest.mark.parametrize("autocommit", [True, False])
def test_a_pooled_single_statement_commits_on_its_own(installed_db: str, autocommit: bool) -> None:
    # fetch_row's fast path (autocommit pool) and its fallback (a pool of ordinary
    # connections): either way the write is committed and the connection goes back idle.
    kwargs = {"autocommit": autocommit}
    with ConnectionPool(installed_db, min_size=1, max_size=1, kwargs=kwargs) as pool:
        connector = Connector(pool)
        for attempt in range(3):  # the second and third reuse the connection's cursor
            assert connector.fetch_row(
                "SELECT monitoring.cache_set(%s::text, '1'::jsonb)", (f"k{attempt}",)
            ) == (True,)
        with pytest.raises(InvalidArgumentError, match="p_ttl must be"):
            connector.fetch_row("SELECT monitoring.cache_set('bad', '1'::jsonb, -1)")
        assert connector.fetch_row("SELECT 'still usable'") == ("still usable",)
        with pool.connection() as conn:
            assert conn.autocommit is autocommit
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with psycopg.connect(installed_db) as other:
        stored = other.execute(
            "SELECT count(*) FROM monitoring.cache_get_many(ARRAY['k0', 'k1', 'k2'])"
        ).fetchone()
    assert stored == (3,)


async def test_async_pooled_single_statement(installed_db: str) -> None:
    kwargs = {"autocommit": True}
    async with AsyncConnectionPool(installed_db, min_size=1, max_size=1, kwargs=kwargs) as pool:
        connector = AsyncConnector(pool)
        for _ in range(3):
            assert await connector.fetch_row("SELECT monitoring.cache_set('a', '1')") == (True,)
        with pytest.raises(InvalidArgumentError):
            await connector.fetch_row("SELECT monitoring.cache_set('a', '1', -1)")
        assert await connector.fetch_value("SELECT (monitoring.cache_get('a')).value") == 1


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


def test_an_interruption_in_a_callers_statement_is_not_lost(installed_db: str) -> None:
    """Ctrl-C in a capture on the application's connection: setting autocommit back on the
    busy connection failed, and that error replaced the KeyboardInterrupt (which the tracker,
    catching errors, then swallowed: the demo was not interrupted)."""

    def interrupted(connector: Connector) -> None:
        with connector.statement() as conn:
            conn.pgconn.send_query(b"SELECT pg_sleep(0.1)")  # interrupted while it runs
            raise KeyboardInterrupt

    with psycopg.connect(installed_db) as conn:
        with pytest.raises(KeyboardInterrupt):
            interrupted(Connector(conn))
        conn.close()  # still busy: no COMMIT at the end of the block
    with psycopg.connect(installed_db) as conn:
        connector = Connector(conn)
        with connector.statement():
            pass
        assert not conn.autocommit, "the caller's setting is back when nothing went wrong"


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
