"""What every command of `pg-monitoring` shares: its options, the connection, error reports.

The command modules beside this one import it, and never each other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import click
import psycopg

from .. import render
from ..errors import PgMonitoringError, in_callers_words

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


def one_of(value: str, known: Sequence[str], flag: str) -> str:
    """`value`, when it is one of the words the database defines (read before calling)."""
    if value not in known:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(known)}", param_hint=flag)
    return value


@contextmanager
def connect(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(dsn)
    except psycopg.OperationalError as error:
        raise click.ClickException(f"cannot connect: {error}".strip()) from error
    with conn:
        yield conn


def dict_rows(
    conn: psycopg.Connection[Any], query: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """The rows of `query` as dicts by column name."""
    cursor = conn.execute(query, params)
    columns = [column.name for column in cursor.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def echo_rows(
    rows: list[dict[str, Any]], as_json: bool, empty: str, line: Callable[[dict[str, Any]], str]
) -> None:
    """A list command's output: `rows` as JSON, else `empty` or a `line` per row."""
    if as_json:
        click.echo(render.to_json(rows))
    elif not rows:
        click.echo(empty)
    else:
        for row in rows:
            click.echo(line(row))


def revoked_and_used(row: Mapping[str, Any]) -> tuple[str, str]:
    """ "live" or "revoked <when>", and "<when>" or "never" last used, of a key's row."""
    state = f"revoked {render.ago(row['revoked_at'])}" if row["revoked_at"] else "live"
    return state, render.ago(row["last_used_at"]) if row["last_used_at"] else "never"


def database_name(conn: psycopg.Connection[Any]) -> str:
    return conn.info.dbname


@contextmanager
def reported_errors(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Our errors and the database's become one-line messages and exit status 1, which name
    the command's flags where the database named a stored function's arguments.

    `flags` spells arguments the command's own options do not name alike (see `as_flags`).
    """
    try:
        yield
    except PgMonitoringError as error:
        raise click.ClickException(as_flags(str(error), flags)) from error
    except psycopg.Error as error:
        diag = error.diag
        message = diag.message_primary or str(error)
        if diag.message_hint:
            message += f"\nHint: {diag.message_hint}"
        raise click.ClickException(as_flags(message, flags)) from error


def as_flags(message: str, flags: Mapping[str, str] | None = None) -> str:
    """`message` with the stored function's argument names spelled as the running command's
    flags: `p_min_level` as `--min-level` when the command has an option `min_level`, its
    argument `name` for `p_name`; `flags` adds the rest, by argument (`p_config`), field
    (`p_config.{}`) or variable (`p_config.{}_env`), `{}` standing for the field. A bare
    argument's `{}` is the field the message named last (`pass it with --secret url`)."""
    spelled = dict(_own_flags())
    spelled.update(flags or {})
    return in_callers_words(message, spelled)


def _own_flags() -> Iterator[tuple[str, str]]:
    """`p_<name>` and how the running command spells the parameter `<name>`."""
    context = click.get_current_context(silent=True)
    if context is None:
        return
    for param in context.command.params:
        if param.name is None:
            continue
        if isinstance(param, click.Option):
            spelling = max(param.opts, key=len)
        else:
            spelling = param.human_readable_name
        yield f"p_{param.name}", spelling


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
