"""`python -m pg_monitoring`: the `pg-monitoring` command (the demo runs itself this way)."""

from .cli import main

main(prog_name="pg-monitoring")
