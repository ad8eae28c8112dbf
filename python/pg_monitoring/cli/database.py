"""`pg-monitoring db`: the database server's health on one screen."""

from __future__ import annotations

import click

from .. import render
from ..connection import Connector
from ..database import reads
from ..database import render as database_render
from .common import connect, dsn_option, json_option, reported_errors


@click.command(name="db")
@dsn_option
@click.option(
    "--top", default=5, show_default=True, type=click.IntRange(1, 100), help="Rows per list."
)
@json_option
def db(dsn: str, top: int, as_json: bool) -> None:
    """Show the database server's health: connections, long queries and transactions, lock
    waits, top statements (pg_stat_statements), largest tables and bloat, replication.
    Another role's sessions show to members of pg_monitor only."""
    with reported_errors(), connect(dsn) as conn:
        conn.autocommit = True
        report = reads.report(Connector(conn), top)
    if as_json:
        click.echo(render.to_json(report))
        return
    database_render.print_report(render.console(), report)


COMMANDS = (db,)
