"""Commands that install, upgrade, remove and describe the schema in a database."""

from __future__ import annotations

import json
from typing import Any

import click

from .. import installer
from .common import connect, database_name, dsn_option, json_option, reported_errors


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
@dsn_option
@json_option
def status(dsn: str, as_json: bool) -> None:
    """Show the installed version, its objects and roles."""
    with reported_errors(), connect(dsn) as conn:
        report = installer.status_report(conn)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    print_status(report)


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


COMMANDS = (install, upgrade, uninstall, status)
