"""Issue triage: list and show issues, and change their state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from .. import issues, render
from ..connection import Connector
from .common import (
    actor_option,
    connect,
    dsn_option,
    duration_option,
    environment_option,
    json_option,
    one_of,
    reported_errors,
    service_option,
)


@click.command(name="issues")
@dsn_option
@click.option(
    "--status",
    default="unresolved",
    show_default=True,
    help="Only issues in this state (one of monitoring.issue_statuses()), or all.",
)
@environment_option
@service_option
@duration_option("--since", "since", "Only issues seen within this long (30m, 24h, 7d).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@json_option
def list_issues(
    dsn: str,
    status: str,
    environment: str | None,
    service: str | None,
    since: timedelta | None,
    limit: int,
    as_json: bool,
) -> None:
    """List issues, most recently seen first."""
    with reported_errors(), connect(dsn) as conn:
        db = Connector(conn)
        one_of(status, [*issues.statuses(db), "all"], "--status")
        rows = issues.list_issues(
            db,
            issues.IssueFilter(
                status=None if status == "all" else status,
                environment=environment,
                service=service,
                since=since,
                limit=limit,
            ),
        )
    if as_json:
        click.echo(render.to_json(rows))
    elif not rows:
        click.echo("No issues.")
    else:
        render.print_issues(render.console(), rows)


@click.command()
@dsn_option
@click.argument("issue")
@environment_option
@service_option
@json_option
def show(dsn: str, issue: str, environment: str | None, service: str | None, as_json: bool) -> None:
    """Show an issue (by id or fingerprint): latest stack trace, tags, user, history."""
    with reported_errors(), connect(dsn) as conn:
        db = Connector(conn)
        detail = issues.show_issue(db, issues.resolve_id(db, issue, environment, service))
    if detail is None:
        raise click.ClickException(f"no issue {issue}")
    if as_json:
        click.echo(render.to_json(detail))
    else:
        render.print_issue(render.console(soft_wrap=True), detail)


def lifecycle_command(name: str, help_text: str) -> Any:
    """Common options of resolve/ignore/assign/unassign/reopen."""

    def decorate(function: Any) -> Any:
        return click.command(name=name, help=help_text)(
            dsn_option(
                click.argument("issue")(environment_option(service_option(actor_option(function))))
            )
        )

    return decorate


@contextmanager
def triage_connector(dsn: str) -> Iterator[Connector]:
    """The connector of a triage command: errors reported, a refusal naming the role needed
    (a writer would otherwise read `permission denied for function issue_id`)."""
    with reported_errors(), connect(dsn) as conn, issues.triage():
        yield Connector(conn)


def report_change(row: dict[str, Any]) -> None:
    extra = f" ({row['substatus']})" if row.get("substatus") else ""
    who = f", assigned to {row['assignee']}" if row.get("assignee") else ""
    click.echo(f"#{row['id']} {row['title']}: {row['status']}{extra}{who}")


@lifecycle_command("resolve", "Resolve an issue now, in a release, or in the next release.")
@click.option("--in-release", help="Events from older releases do not reopen it.")
@click.option("--in-next-release", is_flag=True, help="Only releases after the current reopen it.")
def resolve(
    dsn: str,
    issue: str,
    environment: str | None,
    service: str | None,
    actor: str | None,
    in_release: str | None,
    in_next_release: bool,
) -> None:
    with triage_connector(dsn) as db:
        issue_id = issues.resolve_id(db, issue, environment, service)
        report_change(issues.resolve(db, issue_id, in_release, in_next_release, actor))


@lifecycle_command("ignore", "Ignore an issue forever, or until a time, N events or N users.")
@click.option("--until", "until", type=click.DateTime(), help="Until this time (UTC).")
@duration_option("--for", "for_", "For this long (30m, 24h, 7d).")
@click.option("--until-events", type=click.IntRange(min=1), help="Until N more events.")
@click.option("--until-users", type=click.IntRange(min=1), help="Until N more users.")
def ignore(
    dsn: str,
    issue: str,
    environment: str | None,
    service: str | None,
    actor: str | None,
    until: datetime | None,
    for_: timedelta | None,
    until_events: int | None,
    until_users: int | None,
) -> None:
    if until is not None and for_ is not None:
        raise click.UsageError("--until and --for are two ways to say the same; pick one")
    deadline = until.replace(tzinfo=timezone.utc) if until else None
    if for_ is not None:
        deadline = datetime.now(timezone.utc) + for_
    with triage_connector(dsn) as db:
        issue_id = issues.resolve_id(db, issue, environment, service)
        report_change(issues.ignore(db, issue_id, deadline, until_events, until_users, actor))


@lifecycle_command("reopen", "Set a resolved or ignored issue back to unresolved.")
def reopen(
    dsn: str, issue: str, environment: str | None, service: str | None, actor: str | None
) -> None:
    with triage_connector(dsn) as db:
        report_change(issues.reopen(db, issues.resolve_id(db, issue, environment, service), actor))


@lifecycle_command("assign", "Assign an issue to someone (an email, a team name).")
@click.option("--to", "assignee", required=True, help="The assignee.")
def assign(
    dsn: str,
    issue: str,
    environment: str | None,
    service: str | None,
    actor: str | None,
    assignee: str,
) -> None:
    with triage_connector(dsn) as db:
        issue_id = issues.resolve_id(db, issue, environment, service)
        report_change(issues.assign(db, issue_id, assignee, actor))


@lifecycle_command("unassign", "Remove an issue's assignee.")
def unassign(
    dsn: str, issue: str, environment: str | None, service: str | None, actor: str | None
) -> None:
    with triage_connector(dsn) as db:
        issue_id = issues.resolve_id(db, issue, environment, service)
        report_change(issues.unassign(db, issue_id, actor))


COMMANDS = (list_issues, show, resolve, ignore, reopen, assign, unassign)
