"""`pg-monitoring projects` (monitoring_admin): the Sentry projects whose DSNs any Sentry SDK
reports to `pg-monitoring serve` with; `pg-monitoring stats`: what the Sentry ingest
accepted and dropped per project."""

from __future__ import annotations

from typing import Any

import click

from ..sentry import project_dsn
from .common import (
    connect,
    dict_rows,
    dsn_option,
    echo_rows,
    json_option,
    reported_errors,
    revoked_and_used,
)

ADD = "SELECT * FROM monitoring.add_sentry_project(%s, %s, %s, %s)"
LIST = "SELECT * FROM monitoring.list_sentry_projects()"
REVOKE = "SELECT monitoring.revoke_sentry_project(%s)"
QUOTA = "SELECT monitoring.set_sentry_project_quota(%s, %s, %s)"
STATS = "SELECT * FROM monitoring.sentry_ingest_stats()"
DEFAULT_HOST = "127.0.0.1:4318"


@click.group()
def projects() -> None:
    """Sentry projects: the DSNs Sentry SDKs send to `pg-monitoring serve` with."""


@projects.command()
@dsn_option
@click.argument("name")
@click.option("--service", required=True, help="The service of events that name none.")
@click.option("--environment", help="The environment of events that name none.")
@click.option(
    "--id",
    "project_id",
    type=click.IntRange(min=1),
    help="The DSN's project id (keep a Sentry DSN's) [default: the next free one].",
)
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="host:port of `pg-monitoring serve` as the SDKs reach it.",
)
@click.option("--scheme", default="http", show_default=True, type=click.Choice(["http", "https"]))
def add(
    dsn: str,
    name: str,
    service: str,
    environment: str | None,
    project_id: int | None,
    host: str,
    scheme: str,
) -> None:
    """Make project NAME and print its DSN (its public key is stored only hashed)."""
    with (
        reported_errors(
            {"p_environment": "--environment", "p_service": "--service", "p_id": "--id"}
        ),
        connect(dsn) as conn,
    ):
        row = conn.execute(ADD, (name, service, environment, project_id)).fetchone()
    assert row is not None
    click.echo(project_dsn(row[1], host, row[0], scheme))
    click.echo(
        f"Project {name!r} made (id {row[0]}). Store its DSN now: the key will not be shown again.",
        err=True,
    )


@projects.command(name="list")
@dsn_option
@json_option
def list_projects(dsn: str, as_json: bool) -> None:
    """Every project: id, name, service, environment, quota, last used, revoked."""
    with reported_errors(), connect(dsn) as conn:
        rows = dict_rows(conn, LIST)

    def line(row: dict[str, Any]) -> str:
        state, used = revoked_and_used(row)
        return (
            f"{row['id']}\t{row['name']}\tservice {row['service']}\t"
            f"environment {row['environment'] or '-'}\t"
            f"quota {row['events_per_minute']}/min {row['events_per_hour']}/h\t{state}\t"
            f"last used {used}"
        )

    echo_rows(
        rows,
        as_json,
        "No Sentry projects; `pg-monitoring projects add NAME --service S` makes one.",
        line,
    )


@projects.command()
@dsn_option
@click.argument("name")
def revoke(dsn: str, name: str) -> None:
    """Revoke project NAME and its key: its DSN is refused (403) from now on."""
    with reported_errors(), connect(dsn) as conn:
        conn.execute(REVOKE, (name,))
    click.echo(f"Project {name!r} revoked.")


@projects.command()
@dsn_option
@click.argument("name")
@click.option(
    "--per-minute",
    type=click.IntRange(min=1),
    help="Events (errors and transactions) per minute [default: the setting "
    "sentry.events_per_minute].",
)
@click.option(
    "--per-hour",
    type=click.IntRange(min=1),
    help="Events per hour [default: the setting sentry.events_per_hour].",
)
def quota(dsn: str, name: str, per_minute: int | None, per_hour: int | None) -> None:
    """Set project NAME's quota; over it serve answers 429 and counts the drops."""
    with reported_errors(), connect(dsn) as conn:
        conn.execute(QUOTA, (name, per_minute, per_hour))
    click.echo(f"Quota of {name!r}: {per_minute or 'default'}/min, {per_hour or 'default'}/h.")


@click.command()
@dsn_option
@json_option
def stats(dsn: str, as_json: bool) -> None:
    """What the Sentry ingest did per project, this hour and in 24 h: items accepted,
    dropped by us (with the reason), dropped by the SDKs (their client reports), skipped."""
    with reported_errors(), connect(dsn) as conn:
        rows = dict_rows(conn, STATS)
    if rows and not as_json:
        click.echo("project\toutcome\tcategory\treason\tthis hour\t24 h")
    echo_rows(
        rows,
        as_json,
        "Nothing received by the Sentry ingest in the last 24 hours.",
        lambda row: (
            f"{row['project']}\t{row['outcome']}\t{row['category']}\t{row['reason'] or '-'}\t"
            f"{row['this_hour']}\t{row['last_24_hours']}"
        ),
    )


COMMANDS = (projects, stats)
