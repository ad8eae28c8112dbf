"""`pg-monitoring alerts`: the alert outbox, and sending a failed notification again."""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from .. import render
from ..alerts import queries
from ..connection import Connector
from .common import connect, dsn_option, json_option, one_of, reported_errors

STATUS_STYLE = {"sent": "green", "failed": "yellow", "dead": "red", "sending": "cyan"}


# The outbox's columns by priority (render.fitted_table); the summary wraps in what they
# leave, with the last error.
NOTIFICATION_COLUMNS: list[render.Column] = [
    ("id", lambda row: str(row["id"])),
    ("status", lambda row: Text(row["status"], style=STATUS_STYLE.get(row["status"], ""))),
    ("channel", lambda row: row["channel"]),
    (
        "when",
        lambda row: (
            f"sent\n{render.ago(row['sent_at'])}"
            if row["sent_at"]
            else f"created\n{render.ago(row['created_at'])}"
        ),
    ),
    ("issue", lambda row: str(row["issue_id"] or "-")),
    ("attempts", lambda row: str(row["attempts"])),
    ("condition", lambda row: row["condition"]),
]


def _summary(row: dict[str, Any]) -> Text:
    summary = Text(row["summary"] or "")
    if row["last_error"]:
        summary.append(f"\n{row['last_error']}", style="red")
    return summary


@click.group(invoke_without_command=True)
@dsn_option
@click.option(
    "--status",
    help="Only notifications in this state: pending, sending, failed, dead or sent "
    "(monitoring.notification_statuses()); default: all but sent.",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@json_option
@click.pass_context
def alerts(ctx: click.Context, dsn: str, status: str | None, limit: int, as_json: bool) -> None:
    """The alert outbox: counts by state, then what is waiting, failing or dead."""
    if ctx.invoked_subcommand is not None:
        return
    with reported_errors(), connect(dsn) as conn:
        db = Connector(conn)
        if status is not None:
            one_of(status, db.fetch_value(queries.NOTIFICATION_STATUSES), "--status")
        counts = db.fetch_all(queries.OUTBOX_COUNTS)
        rows = db.fetch_all(queries.OUTBOX_LIST, {"status": status, "limit": limit})
    if as_json:
        click.echo(render.to_json({"counts": counts, "notifications": rows}))
        return
    if not counts:
        click.echo("The outbox is empty: no alert has fired yet.")
        return
    click.echo("  ".join(f"{row['status']}: {row['notifications']}" for row in counts))
    if not rows:
        return
    console = render.console()
    console.print(
        render.fitted_table(
            rows, console.width, NOTIFICATION_COLUMNS, ("summary", _summary), 30, right=("id",)
        )
    )
    if any(row["status"] == "dead" for row in rows):
        click.echo("Send a dead notification again: pg-monitoring alerts retry ID")


@alerts.command("retry")
@dsn_option
@click.argument("notification_id", type=int)
def alerts_retry(dsn: str, notification_id: int) -> None:
    """Send failed or dead notification ID again now (same idempotency key)."""
    with reported_errors(), connect(dsn) as conn:
        Connector(conn).fetch_value(queries.RETRY, (notification_id,))
    click.echo(f"Notification #{notification_id} is pending again; a worker sends it.")


COMMANDS = (alerts,)
