"""`pg-monitoring demo` (what `make demo` runs): the demo itself is pg_monitoring.demo."""

from __future__ import annotations

import sys

import click

from .. import demo as the_demo
from .common import dsn_option, reported_errors


@click.command()
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
    with reported_errors():
        status = the_demo.main(dsn, local_cluster, echo=click.echo)
    if status:
        sys.exit(status)


COMMANDS = (demo,)
