"""`python -m pg_monitoring`: the `pg-monitoring` command (the demo runs itself this way)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="pg-monitoring")
