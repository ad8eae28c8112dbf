"""The one place the server is assembled: `create_app(ServerConfig)` gives the ASGI app
(Starlette) that `pg-monitoring serve` runs with uvicorn.

The app holds one psycopg_pool.AsyncConnectionPool, opened without waiting for the
database, so the server starts, and answers 503, while the database is away. Its calls go
through the clients' `AsyncConnector`: bounded in time, and refused at once by its circuit
breaker while the database is known to be unreachable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette

from .._db.connection_async import AsyncConnector
from . import DEFAULT_KEY_CACHE_SECONDS, DEFAULT_MAX_BODY
from .auth import KeyChecker
from .routes import health, metrics, otlp, sentry


@dataclass(frozen=True)
class ServerConfig:
    """What `pg-monitoring serve`'s options say."""

    dsn: str = ""
    # No key asked for: local development on a loopback address only (the CLI enforces it).
    allow_anonymous: bool = False
    # The most a request body may hold, decompressed; more is answered 413.
    max_body: int = DEFAULT_MAX_BODY
    pool_min_size: int = 1
    pool_max_size: int = 10
    # How long an accepted key is remembered (a revoked one works that much longer).
    key_cache_seconds: float = DEFAULT_KEY_CACHE_SECONDS
    # The bound of one request's database work, the wait for a connection included.
    db_timeout: float = 30.0
    # The most Sentry ingest calls running at once; requests arriving meanwhile are stored
    # together by the next (routes/sentry.py).
    ingest_calls: int = 2
    # The bound of a key check (db_timeout when that is shorter).
    auth_timeout: float = 5.0
    connect_timeout: int = 5


def create_app(config: ServerConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            config.dsn,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            kwargs={"autocommit": True, "connect_timeout": config.connect_timeout},
            open=False,
            name="pg-monitoring-serve",
        )
        await pool.open(wait=False)
        database = AsyncConnector(pool, name="pg-monitoring serve")
        app.state.config = config
        app.state.database = database
        app.state.sentry_batcher = sentry.make_batcher(
            database, config.db_timeout, config.ingest_calls
        )
        app.state.keys = KeyChecker(
            database,
            ttl=config.key_cache_seconds,
            timeout=min(config.auth_timeout, config.db_timeout),
        )
        try:
            yield
        finally:
            await pool.close()

    return Starlette(
        routes=[*health.ROUTES, *metrics.ROUTES, *otlp.ROUTES, *sentry.ROUTES], lifespan=lifespan
    )
