"""The `pg-monitoring` command.

The database comes from --dsn, else DATABASE_URL, else libpq's PG* variables. Each module
here holds the commands of one concern and imports `common`, never another command module;
this one assembles them into the `main` group.
"""

from __future__ import annotations

import click

from . import (
    alerts,
    channels,
    database,
    demo,
    install,
    keys,
    logs,
    maintenance,
    projects,
    serve,
    traces,
    triage,
    worker,
)


@click.group()
@click.version_option(package_name="pg-monitoring")
def main() -> None:
    """pg_monitoring: error tracking, cache, traces and alerts inside PostgreSQL."""


for _command in (
    *install.COMMANDS,
    *triage.COMMANDS,
    *traces.COMMANDS,
    *logs.COMMANDS,
    *maintenance.COMMANDS,
    *worker.COMMANDS,
    *channels.COMMANDS,
    *alerts.COMMANDS,
    *database.COMMANDS,
    *demo.COMMANDS,
    *keys.COMMANDS,
    *projects.COMMANDS,
    *serve.COMMANDS,
):
    main.add_command(_command)

__all__ = ["main"]
