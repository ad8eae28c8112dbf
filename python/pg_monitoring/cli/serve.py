"""`pg-monitoring serve`: the OTLP/HTTP receiver and Sentry ingest (pg_monitoring.server), run
by uvicorn.

The options build a `ServerConfig`; `create_app` and uvicorn do the rest. Needs the
`server` extra: pip install pg-monitoring[server].
"""

from __future__ import annotations

import ipaddress

import click

from ..server import DEFAULT_KEY_CACHE_SECONDS, DEFAULT_MAX_BODY
from .common import dsn_option


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@dsn_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4318, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--allow-anonymous",
    is_flag=True,
    help="Accept requests without an ingest key. For local development, on a loopback "
    "address only: refused with any other --host.",
)
@click.option(
    "--max-body",
    default=DEFAULT_MAX_BODY,
    show_default=True,
    type=click.IntRange(min=1024),
    help="Bytes a request body may hold, decompressed; more is answered 413.",
)
@click.option(
    "--pool-size",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Database connections at most.",
)
@click.option(
    "--ingest-calls",
    default=2,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Sentry ingest calls at once; requests arriving meanwhile are stored together "
    "by the next (one transaction for many).",
)
@click.option(
    "--key-cache",
    default=DEFAULT_KEY_CACHE_SECONDS,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds an accepted key is remembered; a revoked key works at most this long.",
)
@click.option(
    "--db-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds a request may wait for the database; then 503.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    dsn: str,
    host: str,
    port: int,
    allow_anonymous: bool,
    max_body: int,
    pool_size: int,
    ingest_calls: int,
    key_cache: float,
    db_timeout: float,
    log_level: str,
) -> None:
    """Receive OpenTelemetry traces and logs over OTLP/HTTP (POST /v1/traces, /v1/logs) and
    Sentry SDKs' events (POST /api/<project id>/envelope/ and /store/).

    Exporters send `Authorization: Bearer <key>` with a key from `pg-monitoring keys add`;
    Sentry SDKs a DSN from `pg-monitoring projects add`. The database role needs
    monitoring_writer.
    """
    if allow_anonymous and not is_loopback(host):
        raise click.UsageError(
            f"--allow-anonymous is for local development on a loopback address, not {host}"
        )
    try:
        import uvicorn

        from ..server.app import ServerConfig, create_app
    except ImportError as error:
        raise click.ClickException(
            f"serve needs the server extra ({error.name} is missing): "
            "pip install 'pg-monitoring[server]'"
        ) from error
    config = ServerConfig(
        dsn=dsn,
        allow_anonymous=allow_anonymous,
        max_body=max_body,
        pool_max_size=pool_size,
        ingest_calls=ingest_calls,
        key_cache_seconds=key_cache,
        db_timeout=db_timeout,
    )
    # asyncio's own loop, not uvloop where it is installed: with uvloop, a request refused by
    # the open circuit breaker while the database was away waited for the pool's connection
    # attempt (5 s) instead of failing at once (tests/test_server.py); it saved nothing
    # measurable besides. httptools, when installed, parses HTTP (a server dependency).
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, loop="asyncio")


COMMANDS = (serve,)
