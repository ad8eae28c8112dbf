"""`pg-monitoring maintain`: monitoring.run_maintenance(), once or on a timer."""

from __future__ import annotations

import json
import sys
import time

import click

from .. import issues, render
from ..connection import Connector
from .common import connect, dsn_option, reported_errors


@click.command()
@dsn_option
@click.option(
    "--every",
    type=click.IntRange(min=1),
    help="Run every N seconds until interrupted (default: once).",
)
def maintain(dsn: str, every: int | None) -> None:
    """Run monitoring.run_maintenance(): fold counts, partitions, retention.

    A step that failed is listed under "failed" (the others ran); a single run then exits 1.
    """
    with reported_errors(), connect(dsn) as conn:
        conn.autocommit = True
        while True:
            report = issues.run_maintenance(Connector(conn))
            click.echo(render.to_json(report) if every is None else json.dumps(report))
            for step, error in report.get("failed", {}).items():
                click.echo(f"maintenance step {step} failed: {error}", err=True)
            if every is None:
                if report.get("failed"):
                    sys.exit(1)
                return
            time.sleep(every)


COMMANDS = (maintain,)
