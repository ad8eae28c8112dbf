"""What every command of `pg-monitoring` shares: its options, the connection, error reports.

The command modules beside this one import it, and never each other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import click
import psycopg

from ..errors import PgMonitoringError

dsn_option = click.option(
    "--dsn",
    envvar="DATABASE_URL",
    default="",
    show_envvar=True,
    help="libpq connection string or URL; empty means the PG* environment variables.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
environment_option = click.option("--environment", "-e", help="Only this environment.")
service_option = click.option("--service", "-s", help="Only this service.")
actor_option = click.option("--actor", help="Who does it (default: the database user).")


def parse_duration(text: str) -> timedelta:
    """30s, 15m, 24h, 7d."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration like 30m, 24h or 7d")
    size = int(match.group(1))
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: size})


def duration_option(name: str, dest: str, help_text: str) -> Any:
    return click.option(
        name,
        dest,
        callback=lambda _ctx, _param, value: value and parse_duration(value),
        help=help_text,
    )


@contextmanager
def connect(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(dsn)
    except psycopg.OperationalError as error:
        raise click.ClickException(f"cannot connect: {error}".strip()) from error
    with conn:
        yield conn


def database_name(conn: psycopg.Connection[Any]) -> str:
    return conn.info.dbname


@contextmanager
def reported_errors() -> Iterator[None]:
    """Our errors and the database's become one-line messages and exit status 1."""
    try:
        yield
    except PgMonitoringError as error:
        raise click.ClickException(str(error)) from error
    except psycopg.Error as error:
        diag = error.diag
        message = diag.message_primary or str(error)
        if diag.message_hint:
            message += f"\nHint: {diag.message_hint}"
        raise click.ClickException(message) from error


@contextmanager
def silenced(logger_name: str) -> Iterator[None]:
    """Drops `logger_name`'s records meanwhile: for a command that reports itself the
    outcome the logger would report, so the user reads it once."""

    def drop(_record: logging.LogRecord) -> bool:
        return False

    logger = logging.getLogger(logger_name)
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)
