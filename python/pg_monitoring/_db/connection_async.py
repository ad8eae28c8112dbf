"""Where a client gets its connections: a DSN, a psycopg pool, or a connection.

Every client class takes one of these and wraps it in an `AsyncConnector`. Calls run inside
`conn.transaction()`, so on a caller's connection that is already in a transaction they
become a savepoint of it, and otherwise they commit on their own.

Each call is a `breaker.Attempt`: refused at once while the connector's breaker is open,
and, given a `timeout`, bounded as a whole (the wait for a pooled connection and the
statement; see breaker.py). A connection the caller passed in is the caller's transaction:
it is never interrupted, so there only the breaker applies.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from .breaker import Attempt, Breaker
from .calls import Call, bound

Params: TypeAlias = Sequence[Any] | Mapping[str, Any]
AsyncSource: TypeAlias = str | psycopg.AsyncConnection[Any] | AsyncConnectionPool

# A pool made from a DSN: small, because capture and cache calls are short.
OWN_POOL_MIN_SIZE = 1
OWN_POOL_MAX_SIZE = 4

IDLE = TransactionStatus.IDLE


@asynccontextmanager
async def _single_statement(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """Where one statement runs: a savepoint inside a transaction, else autocommit."""
    if conn.info.transaction_status != IDLE:
        async with conn.transaction():
            yield
    elif conn.autocommit:
        yield
    else:
        await conn.set_autocommit(True)
        try:
            yield
        except BaseException:
            # Interrupted (Ctrl-C in the statement), the connection may still be busy and
            # refuse the change: the interruption is what the caller must get.
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    await conn.set_autocommit(False)
            raise
        if not conn.closed:
            await conn.set_autocommit(False)


class AsyncConnector:
    """Lends connections from a DSN (own pool, opened on first use), a pool or a connection.

    `name` says whose calls these are in the breaker's log lines.
    """

    def __init__(self, source: AsyncSource, *, name: str = "pg_monitoring") -> None:
        self._pool: AsyncConnectionPool | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._owns_pool = False
        self.breaker = Breaker(name)
        # One cursor per pooled connection, reused by fetch_row: a new cursor per call would
        # look up its result loaders again (~20 µs of a ~100 µs cache GET). Only pooled
        # connections, which one caller holds at a time; a caller's connection may be shared.
        self._cursors: weakref.WeakKeyDictionary[Any, psycopg.AsyncCursor[Any]] = (
            weakref.WeakKeyDictionary()
        )
        if isinstance(source, str):
            # autocommit: a single statement is one round trip, no toggling per call
            # (transaction() still opens a real transaction where one is wanted)
            self._pool = AsyncConnectionPool(
                source,
                min_size=OWN_POOL_MIN_SIZE,
                max_size=OWN_POOL_MAX_SIZE,
                kwargs={"autocommit": True},
                open=False,
            )
            self._owns_pool = True
        elif isinstance(source, AsyncConnectionPool):
            self._pool = source
        elif isinstance(source, psycopg.AsyncConnection):
            self._conn = source
        else:
            raise TypeError(
                f"expected a DSN string, a psycopg_pool.AsyncConnectionPool or a "
                f"psycopg.AsyncConnection, not {type(source).__name__}"
            )

    @asynccontextmanager
    async def _borrow(self, timeout: float | None) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for one call within `timeout` seconds; database errors come out
        translated, and the outcome goes to the breaker."""
        attempt = Attempt(self.breaker, timeout)
        try:
            if self._conn is not None:
                yield self._conn
            else:
                pool = self._pool
                assert pool is not None
                if self._owns_pool and pool.closed:
                    await pool.open()
                conn = await self._checkout(pool, attempt)
                try:
                    yield conn
                finally:
                    attempt.unwatch(conn)
                    await pool.putconn(conn)
        except psycopg.Error as error:
            raise attempt.failure(error) from error
        attempt.succeeded()

    async def _checkout(
        self, pool: AsyncConnectionPool, attempt: Attempt
    ) -> psycopg.AsyncConnection[Any]:
        """A pooled connection, watched. A probe checks it first: after an outage the pool
        still holds connections to the old server, each failing once, and the probe should
        find a live one rather than fail a backoff for each."""
        while True:
            conn = await pool.getconn(attempt.remaining())
            attempt.watch(conn)
            if not attempt.probe:
                return conn
            try:
                await pool.check_connection(conn)
            except psycopg.Error:
                attempt.unwatch(conn)
                await pool.putconn(conn)  # broken: the pool replaces it
                if attempt.timed_out:
                    raise
            else:
                return conn

    @asynccontextmanager
    async def transaction(
        self, timeout: float | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection inside a transaction (or savepoint); database errors translated."""
        async with self._borrow(timeout) as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def statement(
        self, timeout: float | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """`transaction()` for a single statement, in one round trip where it can be.

        On an idle connection the statement runs in autocommit, which is its own transaction
        without BEGIN and COMMIT round trips (a cache GET would otherwise pay three); inside a
        caller's transaction it is a savepoint as usual.
        """
        async with self._borrow(timeout) as conn, _single_statement(conn):
            yield conn

    async def run(self, call: Call, timeout: float | None = None) -> Any:
        """What `call` reads from its result, within `timeout` seconds plus its extra time."""
        seconds = bound(call, timeout)
        if call.one_row:
            return call.read(await self.fetch_row(call.query, call.params, seconds))
        return call.read(await self.fetch_all(call.query, call.params, seconds))

    async def fetch_value(
        self, query: str, params: Params = (), timeout: float | None = None
    ) -> Any:
        """The first column of the first row of `query` (None when it returns no row)."""
        row = await self.fetch_row(query, params, timeout)
        return None if row is None else row[0]

    async def fetch_row(
        self, query: str, params: Params = (), timeout: float | None = None
    ) -> tuple[Any, ...] | None:
        """The first row of `query` as a tuple, or None: the hot path of the cache.

        `statement()` in effect, without its layers where they are not needed: on an idle
        autocommit connection of a pool, one execute on a reused cursor. `_borrow`'s steps
        are written out: its generator context manager costs a cache GET ~15 µs.
        """
        pool = self._pool
        if pool is None:
            async with self._borrow(timeout) as conn, _single_statement(conn):
                cursor = await conn.execute(query, params)
                return await cursor.fetchone()
        if self._owns_pool and pool.closed:
            await pool.open()
        attempt = Attempt(self.breaker, timeout)
        try:
            conn = await self._checkout(pool, attempt)
            try:
                if conn.autocommit and conn.pgconn.transaction_status == IDLE:
                    cursor = self._cursors.get(conn)
                    if cursor is None:
                        cursor = self._cursors[conn] = conn.cursor()
                    await cursor.execute(query, params)
                    row = await cursor.fetchone()
                else:
                    async with _single_statement(conn):
                        cursor = await conn.execute(query, params)
                        row = await cursor.fetchone()
            finally:
                attempt.unwatch(conn)
                await pool.putconn(conn)
        except psycopg.Error as error:
            raise attempt.failure(error) from error
        attempt.succeeded()
        return row

    async def fetch_all(
        self, query: str, params: Params = (), timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Every row of `query` as a dict."""
        async with self.statement(timeout) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def close(self) -> None:
        """Closes the pool this connector made from a DSN; a caller's pool or connection stays."""
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
