"""How the CLI prints log records: one line each, newest last; --json bypasses this."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

SEVERITY_STYLE = {
    "fatal": "bold red",
    "error": "red",
    "warn": "yellow",
    "debug": "dim",
    "trace": "dim",
}


def print_records(console: Console, rows: list[dict[str, Any]]) -> None:
    """`time severity service message [trace/span]`, oldest first, as a log reads."""
    for row in rows:
        line = Text(f"{row['time']:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " ")
        line.append(f"{row['severity']:<5} ", style=SEVERITY_STYLE.get(row["severity"], ""))
        line.append(f"{row['service'] or '-'} ", style="dim")
        line.append(row["body"] or "")
        if row["trace_id"]:
            line.append(f" trace={row['trace_id']}", style="dim")
            if row["span_id"]:
                line.append(f" span={row['span_id']}", style="dim")
        console.print(line)
