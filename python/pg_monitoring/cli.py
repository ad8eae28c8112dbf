"""The `pg-monitoring` command.

The database comes from --dsn, else DATABASE_URL, else libpq's PG* variables.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import click
import psycopg

from . import installer, issues, render
from .connection import Connector
from .errors import PgMonitoringError

dsn_option = click.option(
    "--dsn",
    envvar="DATABASE_URL",
    default="",
    show_envvar=True,
    help="libpq connection string or URL; empty means the PG* environment variables.",
)

OBJECTS_QUERY = """
SELECT kind, name
FROM (
    SELECT
        CASE c.relkind
            WHEN 'r' THEN CASE c.relpersistence WHEN 'u' THEN 'unlogged table' ELSE 'table' END
            WHEN 'p' THEN 'partitioned table'
            WHEN 'v' THEN 'view'
            WHEN 'm' THEN 'materialized view'
            WHEN 'S' THEN 'sequence'
        END AS kind,
        c.relname::text AS name
    FROM pg_catalog.pg_class AS c
    WHERE c.relnamespace = 'monitoring'::regnamespace
        AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        AND NOT c.relispartition
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text
    FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'monitoring'::regnamespace
) AS objects
ORDER BY kind, name
"""

ROLES_QUERY = """
SELECT r.rolname AS role,
       coalesce(array_agg(m.rolname ORDER BY m.rolname)
                FILTER (WHERE m.rolname IS NOT NULL), '{}') AS members
FROM pg_catalog.pg_roles AS r
LEFT JOIN pg_catalog.pg_auth_members AS am ON am.roleid = r.oid
LEFT JOIN pg_catalog.pg_roles AS m ON m.oid = am.member
WHERE r.rolname = ANY(%s)
GROUP BY r.rolname
ORDER BY r.rolname
"""


@contextmanager
def connect(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(dsn)
    except psycopg.OperationalError as error:
        raise click.ClickException(f"cannot connect: {error}".strip()) from error
    with conn:
        yield conn


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


def database_name(conn: psycopg.Connection[Any]) -> str:
    return conn.info.dbname


@click.group()
@click.version_option(package_name="pg-monitoring")
def main() -> None:
    """pg_monitoring: error tracking, cache, traces and alerts inside PostgreSQL."""


@main.command()
@dsn_option
@click.option("--version", "version", help="Version to install (default: the newest).")
def install(dsn: str, version: str | None) -> None:
    """Install the monitoring schema as a plain script (no superuser needed).

    Runs in one transaction; running it again is a no-op.
    """
    with reported_errors(), connect(dsn) as conn:
        outcome = installer.install(conn, version)
        db = database_name(conn)
    if outcome.action == "unchanged":
        click.echo(f"pg_monitoring {outcome.version} is already installed in {db}; nothing to do.")
    else:
        click.echo(
            f"Installed pg_monitoring {outcome.version} in {db} ({', '.join(outcome.steps)})."
        )


@main.command()
@dsn_option
@click.option("--version", "version", help="Version to upgrade to (default: the newest).")
def upgrade(dsn: str, version: str | None) -> None:
    """Apply the pending upgrade scripts in order, in one transaction."""
    with reported_errors(), connect(dsn) as conn:
        outcome = installer.upgrade(conn, version)
        db = database_name(conn)
    if outcome.action == "unchanged":
        click.echo(f"pg_monitoring is at {outcome.version} in {db} already; nothing to do.")
    else:
        click.echo(f"Upgraded {db} to pg_monitoring {outcome.version}: {', '.join(outcome.steps)}.")


@main.command()
@dsn_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--drop-roles",
    is_flag=True,
    help="Also drop the monitoring_* roles (they are cluster-wide: other databases may use them).",
)
def uninstall(dsn: str, yes: bool, drop_roles: bool) -> None:
    """Remove the schema and everything stored in it."""
    with reported_errors(), connect(dsn) as conn:
        db = database_name(conn)
        current = installer.state(conn)
        if not current.installed:
            click.echo(f"pg_monitoring is not installed in {db}; nothing to do.")
            return
        if not yes:
            click.confirm(
                f"Drop pg_monitoring {current.version} from database {db}, with every error, "
                "cache entry and setting it holds?",
                abort=True,
            )
        installer.uninstall(conn, drop_roles=drop_roles)
    click.echo(f"Removed pg_monitoring from {db}.")


@main.command()
@dsn_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(dsn: str, as_json: bool) -> None:
    """Show the installed version, its objects and roles."""
    with reported_errors(), connect(dsn) as conn:
        report = status_report(conn)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    print_status(report)


def status_report(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    current = installer.state(conn)
    report: dict[str, Any] = {
        "database": database_name(conn),
        "installed": current.installed,
        "version": current.version,
        "mode": current.mode,
        "objects": [],
        "roles": [],
    }
    if current.installed:
        report["objects"] = [
            {"kind": kind, "name": name} for kind, name in conn.execute(OBJECTS_QUERY).fetchall()
        ]
        report["roles"] = [
            {"role": role, "members": members}
            for role, members in conn.execute(ROLES_QUERY, (list(installer.ROLES),)).fetchall()
        ]
    return report


def print_status(report: dict[str, Any]) -> None:
    if not report["installed"]:
        click.echo(f"pg_monitoring is not installed in {report['database']}.")
        return
    mode = "CREATE EXTENSION" if report["mode"] == "extension" else "plain script"
    click.echo(f"pg_monitoring {report['version']} in {report['database']} (installed by {mode})")
    kinds: dict[str, list[str]] = {}
    for obj in report["objects"]:
        kinds.setdefault(obj["kind"], []).append(obj["name"])
    for kind, names in kinds.items():
        click.echo(f"\n{kind}s ({len(names)}):")
        for name in names:
            click.echo(f"  monitoring.{name}" if kind != "function" else f"  {name}")
    click.echo("\nroles:")
    for role in report["roles"]:
        members = ", ".join(role["members"]) or "no members"
        click.echo(f"  {role['role']}: {members}")


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


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
environment_option = click.option("--environment", "-e", help="Only this environment.")
service_option = click.option("--service", "-s", help="Only this service.")
actor_option = click.option("--actor", help="Who does it (default: the database user).")


@main.command(name="issues")
@dsn_option
@click.option(
    "--status",
    type=click.Choice([*issues.STATUSES, "all"]),
    default="unresolved",
    show_default=True,
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
        rows = issues.list_issues(
            Connector(conn),
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
        render.console().print(render.issues_table(rows))


@main.command()
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
        render.print_issue(render.console(), detail)


def lifecycle_command(name: str, help_text: str) -> Any:
    """Common options of resolve/ignore/assign/unassign/reopen."""

    def decorate(function: Any) -> Any:
        function = main.command(name=name, help=help_text)(
            dsn_option(
                click.argument("issue")(environment_option(service_option(actor_option(function))))
            )
        )
        return function

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


@main.command()
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
    import time

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


@main.command()
@dsn_option
@click.option(
    "--local-cluster",
    is_flag=True,
    help="Run on a throwaway local cluster (Debian's pg_virtualenv) instead of a server.",
)
def demo(dsn: str, local_cluster: bool) -> None:
    """Show the main job end to end, in a database of its own (make demo runs this).

    The demo creates that database on the server and drops it at the end; it never writes to
    the database the DSN names. When the role may not create databases, it runs on a
    throwaway local cluster, as with --local-cluster.
    """
    from . import demo as demo_module

    with reported_errors():
        status = demo_module.main(dsn, local_cluster, echo=click.echo)
    if status:
        sys.exit(status)


# Alerts: worker, channels, alerts (their own module, which uses the helpers above).
from .alert_commands import COMMANDS  # noqa: E402

for command in COMMANDS:
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
