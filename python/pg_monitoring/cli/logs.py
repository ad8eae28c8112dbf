"""`pg-monitoring logs`: log records by trace, severity, time and words; --follow."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from .. import render
from ..connection import Connector
from ..logs import reads
from ..logs import render as log_render
from .common import (
    connect,
    dsn_option,
    duration_option,
    json_option,
    reported_errors,
    service_option,
)

FOLLOW_INTERVAL = 1.0


@click.command(name="logs")
@dsn_option
@click.option("--trace", "trace_id", help="Only the records of this trace.")
@click.option(
    "--level",
    help="Only records of this severity and above: trace, debug, info, warn, error, fatal.",
)
@duration_option("--since", "since", "Only records within this long (30m, 24h, 7d).")
@click.option("--grep", "words", help="Only records whose message holds all these words.")
@service_option
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records (Ctrl-C ends).")
@json_option
def logs(
    dsn: str,
    trace_id: str | None,
    level: str | None,
    since: timedelta | None,
    words: str | None,
    service: str | None,
    limit: int,
    follow: bool,
    as_json: bool,
) -> None:
    """Show log records, oldest first (the newest --limit of them)."""
    where = reads.LogFilter(
        words=words,
        trace_id=trace_id,
        level=level,
        since=None if since is None else datetime.now(timezone.utc) - since,
        service=service,
        limit=limit,
    )
    with reported_errors({"p_min_severity": "--level"}), connect(dsn) as conn:
        conn.autocommit = True  # each poll of --follow sees what was committed since
        db = Connector(conn)
        rows = list(reversed(reads.search_logs(db, where)))
        if not follow:
            if as_json:
                click.echo(render.to_json(rows))
            elif not rows:
                click.echo("No log records.")
            else:
                log_render.print_records(render.console(soft_wrap=True), rows)
            return
        seen: set[tuple[Any, ...]] = set()
        while True:
            _print_new(rows, seen, as_json)
            if rows:  # from the newest time printed on; `seen` drops what is printed
                where = dataclasses.replace(where, since=rows[-1]["time"])
            time.sleep(FOLLOW_INTERVAL)
            rows = list(reversed(reads.search_logs(db, where)))


def _print_new(rows: list[dict[str, Any]], seen: set[tuple[Any, ...]], as_json: bool) -> None:
    fresh = []
    for row in rows:
        key = (
            row["time"],
            row["span_id"],
            row["body"],
            json.dumps(row["attributes"], sort_keys=True),
        )
        if key not in seen:
            seen.add(key)
            fresh.append(row)
    for row in fresh:
        if as_json:
            click.echo(json.dumps(row, default=str))
    if fresh and not as_json:
        log_render.print_records(render.console(soft_wrap=True), fresh)
    if fresh:
        # one record per key is enough to remember: only records at the newest time can be
        # returned again
        newest = fresh[-1]["time"]
        for key in [key for key in seen if key[0] < newest]:
            seen.discard(key)


COMMANDS = (logs,)
