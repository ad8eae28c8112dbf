"""`pg-monitoring keys`: the ingest keys `pg-monitoring serve` asks for (monitoring_admin)."""

from __future__ import annotations

from typing import Any

import click

from .. import render
from .common import (
    connect,
    dict_rows,
    dsn_option,
    echo_rows,
    json_option,
    reported_errors,
    revoked_and_used,
)

ADD = "SELECT monitoring.add_ingest_key(%s)"
ADD_WITH_SCOPES = "SELECT monitoring.add_ingest_key(%s, %s)"
LIST = "SELECT * FROM monitoring.list_ingest_keys()"
REVOKE = "SELECT monitoring.revoke_ingest_key(%s)"


@click.group()
def keys() -> None:
    """Ingest keys: what exporters send to `pg-monitoring serve` (Authorization: Bearer)."""


@keys.command()
@dsn_option
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="A signal the key may send: traces, logs, metrics or events, or scrape (GET "
    "/metrics); repeat for several [default: all].",
)
def add(dsn: str, name: str, scopes: tuple[str, ...]) -> None:
    """Make a key NAME and print it (only its hash is stored)."""
    with reported_errors({"p_scopes": "--scope"}), connect(dsn) as conn:
        if scopes:
            row = conn.execute(ADD_WITH_SCOPES, (name, list(scopes))).fetchone()
        else:
            row = conn.execute(ADD, (name,)).fetchone()
    assert row is not None
    click.echo(row[0])
    click.echo(f"Ingest key {name!r} made. Store it now: it will not be shown again.", err=True)


@keys.command(name="list")
@dsn_option
@json_option
def list_keys(dsn: str, as_json: bool) -> None:
    """Every key: name, scopes, made, last used, revoked (never the key)."""
    with reported_errors(), connect(dsn) as conn:
        rows = dict_rows(conn, LIST)

    def line(row: dict[str, Any]) -> str:
        state, used = revoked_and_used(row)
        return (
            f"{row['name']}\t{','.join(row['scopes'])}\t{state}\t"
            f"made {render.ago(row['created_at'])} by {row['created_by']}\tlast used {used}"
        )

    echo_rows(rows, as_json, "No ingest keys; `pg-monitoring keys add NAME` makes one.", line)


@keys.command()
@dsn_option
@click.argument("name")
def revoke(dsn: str, name: str) -> None:
    """Revoke key NAME; a running server refuses it within its key cache time (10 s)."""
    with reported_errors(), connect(dsn) as conn:
        conn.execute(REVOKE, (name,))
    click.echo(f"Ingest key {name!r} revoked.")


COMMANDS = (keys,)
