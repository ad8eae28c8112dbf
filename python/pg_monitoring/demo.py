"""`make demo`: the main job end to end on whatever database it is given.

With no DATABASE_URL, `make demo` runs this on a throwaway cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from . import cli, installer


def run(conn: psycopg.Connection[Any], echo: Callable[[str], None] = print) -> None:
    outcome = installer.install(conn)
    if outcome.action == "installed":
        echo(f"Installed pg_monitoring {outcome.version} as a plain script: {outcome.steps[0]}")
    else:
        echo(f"pg_monitoring {outcome.version} was installed already.")
    echo("")
    cli.print_status(cli.status_report(conn))
