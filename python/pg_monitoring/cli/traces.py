"""Traces: `pg-monitoring traces` lists them, `pg-monitoring trace ID` draws one."""

from __future__ import annotations

from datetime import timedelta

import click

from .. import render
from ..connection import Connector
from ..traces import reads
from ..traces import render as trace_render
from .common import (
    connect,
    dsn_option,
    duration_option,
    json_option,
    reported_errors,
    service_option,
)


@click.command(name="traces")
@dsn_option
@click.option("--slow", is_flag=True, help="The slowest first, rather than the newest.")
@service_option
@duration_option(
    "--since", "since", "Only traces started within this long (30m, 24h, 7d; default 1 day)."
)
@click.option("--errors", is_flag=True, help="Only traces with a span in error.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@json_option
def list_traces(
    dsn: str,
    slow: bool,
    service: str | None,
    since: timedelta | None,
    errors: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List traces, the newest (or with --slow the slowest) first."""
    with reported_errors(), connect(dsn) as conn:
        rows = reads.list_traces(
            Connector(conn),
            reads.TraceFilter(service=service, since=since, errors=errors, slow=slow, limit=limit),
        )
    if as_json:
        click.echo(render.to_json(rows))
    elif not rows:
        click.echo("No traces.")
    else:
        trace_render.print_traces(render.console(), rows)


@click.command(name="trace")
@dsn_option
@click.argument("trace_id")
@json_option
def show_trace(dsn: str, trace_id: str, as_json: bool) -> None:
    """Show a trace as a waterfall: its spans in tree order, bars on one time line, errors."""
    with reported_errors(), connect(dsn) as conn:
        detail = reads.trace(Connector(conn), trace_id)
    if detail is None:
        raise click.ClickException(f"no trace {trace_id}")
    if as_json:
        click.echo(render.to_json(detail))
    else:
        trace_render.print_waterfall(render.console(), detail)


COMMANDS = (list_traces, show_trace)
