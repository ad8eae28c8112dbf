"""`pg-monitoring channels`: where alerts go: add, list, test and remove channels."""

from __future__ import annotations

import time
from typing import Any

import click
from psycopg.types.json import Jsonb
from rich.text import Text

from .. import render
from ..alerts import queries
from ..alerts.worker import Worker, WorkerOptions
from ..alerts.worker import logger as worker_logger
from ..connection import Connector
from .common import connect, dsn_option, json_option, reported_errors, silenced

# How monitoring.add_channel's JSON arguments are spelled on `channels add` ({} the field);
# its other arguments are named like the command's options.
ADD_FLAGS = {
    "p_config": "--set",
    "p_config.{}": "--set {}",
    "p_config.{}_env": "--env {}=VARIABLE",
    "p_secrets": "--secret {}",
    "p_secrets.{}": "--secret {}",
}
# How long `channels test` waits for a running worker that claimed the test notification.
TEST_WAIT = 30.0


@click.group()
def channels() -> None:
    """Alert channels: where alerts go (monitoring_admin)."""


def _pairs(items: tuple[str, ...], option: str) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for item in items:
        field, sep, value = item.partition("=")
        if not field.strip():
            raise click.BadParameter(f"{item!r} is not FIELD=VALUE", param_hint=option)
        pairs.append((field.strip(), value if sep else None))
    return pairs


@channels.command("add")
@dsn_option
@click.argument("name")
@click.argument("kind")
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="FIELD=VALUE",
    help="A setting: smtp_host=..., smtp_port=587, from_email=..., to_emails=a@x.org,b@x.org, "
    "starttls=false, api_url=...",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="FIELD[=VALUE]",
    help="A secret: url, webhook_url, secret, smtp_password, routing_key. Without =VALUE it "
    "is asked for (not echoed, not in your shell history).",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    metavar="FIELD=VARIABLE",
    help="Read FIELD from the worker's environment variable VARIABLE instead of storing it.",
)
@click.option("--service", "services", multiple=True, help="Only issues of this service.")
@click.option("--environment", "-e", "environments", multiple=True, help="Only this environment.")
@click.option(
    "--min-level",
    help="Only issues of this level or worse: debug, info, warning, error or fatal.",
)
@click.option("--disabled", is_flag=True, help="Add it paused.")
@click.option(
    "--no-default-rules",
    is_flag=True,
    help="Do not alert on new issues and regressions (add rules of your own).",
)
def channels_add(
    dsn: str,
    name: str,
    kind: str,
    values: tuple[str, ...],
    secrets: tuple[str, ...],
    env: tuple[str, ...],
    services: tuple[str, ...],
    environments: tuple[str, ...],
    min_level: str | None,
    disabled: bool,
    no_default_rules: bool,
) -> None:
    """Add channel NAME of KIND (email, slack, webhook or pagerduty), or update the channel
    of that name. SELECT * FROM monitoring.channel_fields() lists what each kind takes."""
    config: dict[str, Any] = {field: value or "" for field, value in _pairs(values, "--set")}
    for field, variable in _pairs(env, "--env"):
        config[f"{field}_env"] = variable or ""
    stored: dict[str, str] = {}
    for field, value in _pairs(secrets, "--secret"):
        stored[field] = value if value is not None else click.prompt(field, hide_input=True)
    with reported_errors(ADD_FLAGS), connect(dsn) as conn:
        channel_id = Connector(conn).fetch_value(
            queries.ADD_CHANNEL,
            (
                name,
                kind,
                Jsonb(config),
                Jsonb(stored),
                list(services) or None,
                list(environments) or None,
                min_level,
                not disabled,
                not no_default_rules,
                True,
            ),
        )
        rules = Connector(conn).fetch_value(
            "SELECT count(*) FROM monitoring.notification_rules WHERE channel = %s", (name,)
        )
    click.echo(f"Channel {name} ({kind}) is #{channel_id}, with {rules} rule(s) of its own.")


# `channels list`: its columns by priority (render.fitted_table), then what a channel takes
# and is set to, wrapped in what they leave.
CHANNEL_COLUMNS: list[render.Column] = [
    ("id", lambda row: str(row["id"])),
    ("name", lambda row: row["name"]),
    ("kind", lambda row: row["kind"]),
    ("enabled", lambda row: "yes" if row["enabled"] else Text("paused", style="yellow")),
    ("rules", lambda row: str(row["rules"])),
]


def _setup(row: dict[str, Any]) -> Text:
    lines = [
        f"{label}: {', '.join(row[key])}"
        for label, key in (("services", "services"), ("environments", "environments"))
        if row[key]
    ]
    if row["min_level"]:
        lines.append(f"level >= {row['min_level']}")
    setup = Text("\n".join(lines) or "all issues")
    for key, value in row["config"].items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        setup.append(f"\n{key}={shown}", style="dim")
    if row["secret_fields"]:
        setup.append(f"\nsecrets: {', '.join(row['secret_fields'])}", style="dim")
    return setup


@channels.command("list")
@dsn_option
@json_option
def channels_list(dsn: str, as_json: bool) -> None:
    """List the channels (their secrets are never shown)."""
    with reported_errors(), connect(dsn) as conn:
        rows = Connector(conn).fetch_all(queries.LIST_CHANNELS)
    if as_json:
        click.echo(render.to_json(rows))
        return
    if not rows:
        click.echo("No channels. Add one: pg-monitoring channels add NAME KIND ...")
        return
    console = render.console()
    console.print(
        render.fitted_table(
            rows, console.width, CHANNEL_COLUMNS, ("filters / settings", _setup), 30, right=("id",)
        )
    )


@channels.command("test")
@dsn_option
@click.argument("name")
def channels_test(dsn: str, name: str) -> None:
    """Send a test notification to channel NAME now, and say how it went.

    Sent from here, with this shell's environment for FIELD_env settings; when a running
    worker claims it first, waits for that worker's outcome.
    """
    with reported_errors():
        with connect(dsn) as conn:
            notification_id = Connector(conn).fetch_value(queries.TEST_CHANNEL, (name,))
        # The outcome is this command's message; the worker's log line would say it again.
        with silenced(worker_logger.name), Worker(dsn, WorkerOptions(concurrency=1)) as sender:
            outcomes = sender.deliver_once(ids=[notification_id])
        if outcomes:
            status, error = outcomes[0].status, outcomes[0].error
        else:
            status, error = _await_outcome(dsn, notification_id)
    if status == "sent":
        click.echo(f"Sent test notification #{notification_id} to {name}.")
        return
    raise click.ClickException(
        f"test notification #{notification_id} to {name}: {status or 'no outcome yet'}"
        + (f": {error}" if error else "")
    )


def _await_outcome(dsn: str, notification_id: int) -> tuple[str | None, str | None]:
    deadline = time.monotonic() + TEST_WAIT
    with connect(dsn) as conn:
        conn.autocommit = True
        while True:
            status, error = conn.execute(queries.STATUS, (notification_id,)).fetchone() or (
                None,
                None,
            )
            if status in ("sent", "dead", "failed") or time.monotonic() > deadline:
                return status, error
            time.sleep(0.2)


@channels.command("remove")
@dsn_option
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def channels_remove(dsn: str, name: str, yes: bool) -> None:
    """Remove channel NAME, its own rules and its notifications."""
    if not yes:
        click.confirm(
            f"Remove channel {name} with its rules and notifications, delivered or not?",
            abort=True,
        )
    with reported_errors(), connect(dsn) as conn:
        channel_id = Connector(conn).fetch_value(queries.REMOVE_CHANNEL, (name,))
    click.echo(f"Removed channel {name} (#{channel_id}).")


COMMANDS = (channels,)
