"""How `pg-monitoring db` prints the database's health: a few lines of figures, then a
table per list, each fitted to the console (80 columns and up); --json bypasses this."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..render import Column, ago, fitted_table, milliseconds

QUERY_WIDTH = 30
# columns of words and ids; the others (figures) are right-aligned
_LEFT = ("pid", "state", "wait", "table", "standby")


def size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def seconds(value: Decimal | float | None) -> str:
    return milliseconds(None if value is None else float(value) * 1000)


def percent(value: Decimal | float | None) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


# a query's text in a table: on one line, and not a whole screen of it (--json has it all)
QUERY_CHARACTERS = 200


def _one_line(text: str | None) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= QUERY_CHARACTERS else line[: QUERY_CHARACTERS - 1] + "…"


def print_report(console: Console, report: dict[str, Any]) -> None:
    health = report["health"]
    role = "standby" if health["in_recovery"] else "primary"
    if health["replication_lag_seconds"] is not None:
        role += f", replication {seconds(health['replication_lag_seconds'])} behind"
    console.print(
        Text(f"{health['database_name']}", style="bold")
        + Text(
            f" on PostgreSQL {health['version'].split()[0]}, {size(health['database_bytes'])},"
            f" {role}"
        )
    )
    used = health["connections"] / health["max_connections"]
    console.print(
        f"Connections {health['connections']} of {health['max_connections']} ({used:.0%}): "
        f"{health['active']} active, {health['idle_in_transaction']} idle in transaction, "
        f"{health['blocked']} waiting for a lock",
        style="red" if used >= 0.8 or health["blocked"] else "",
    )
    console.print(
        f"Longest query {seconds(health['longest_query_seconds'])}, oldest transaction "
        f"{seconds(health['oldest_transaction_seconds'])}; buffer hit ratio "
        f"{percent(health['buffer_hit_ratio'])}, {health['deadlocks']} deadlocks, "
        f"{size(health['temp_bytes'])} in temporary files since "
        f"{ago(health['stats_reset']) if health['stats_reset'] else 'the statistics began'}"
    )
    _section(console, "Waiting for locks", report["blocking"], _BLOCKING, "blocked_query")
    _section(console, "Longest transactions", report["activity"], _ACTIVITY, "query")
    statements = report["statements"]
    since = f" (since {ago(statements[0]['since'])})" if statements else ""
    _section(console, f"Top statements{since}", statements, _STATEMENTS, "query")
    _section(console, "Largest tables", report["tables"], _TABLES, None)
    _section(console, "Replication", report["replication"], _REPLICATION, None)


def _section(
    console: Console,
    title: str,
    rows: list[dict[str, Any]],
    columns: list[Column],
    query: str | None,
) -> None:
    """A list under its title; `query` names the column that wraps (a query's text)."""
    console.print()
    console.print(Text(title, style="bold"))
    if not rows:
        console.print("  none")
        return
    right = tuple(name for name, _cell in columns if name not in _LEFT)
    if query is None:  # short columns: the first, a name, folds if it must
        table = Table(header_style="bold", expand=False)
        for index, (name, _cell) in enumerate(columns):
            table.add_column(
                name,
                justify="right" if name in right else "left",
                no_wrap=index > 0,
                overflow="fold",
            )
        for row in rows:
            table.add_row(*(cell(row) for _name, cell in columns))
        console.print(table)
        return
    wide = (query.replace("_", " "), lambda row: _one_line(row[query]))
    console.print(fitted_table(rows, console.width, columns, wide, QUERY_WIDTH, right=right))


_BLOCKING: list[Column] = [
    ("pid", lambda row: str(row["blocked_pid"])),
    ("waiting", lambda row: seconds(row["waiting_seconds"])),
    ("blocked by", lambda row: str(row["blocking_pid"])),
    ("its transaction", lambda row: seconds(row["blocking_transaction_seconds"])),
]

_ACTIVITY: list[Column] = [
    ("pid", lambda row: str(row["pid"])),
    ("transaction", lambda row: seconds(row["transaction_seconds"])),
    ("state", lambda row: row["state"] or "?"),
    ("running", lambda row: seconds(row["query_seconds"])),
    ("wait", lambda row: row["wait_event"] or "-"),
]

_STATEMENTS: list[Column] = [
    ("total", lambda row: milliseconds(row["total_ms"])),
    ("calls", lambda row: str(row["calls"])),
    ("mean", lambda row: milliseconds(row["mean_ms"])),
    ("hit ratio", lambda row: percent(row["buffer_hit_ratio"])),
]

_TABLES: list[Column] = [
    ("table", lambda row: f"{row['schema_name']}.{row['table_name']}"),
    ("size", lambda row: size(row["total_bytes"])),
    ("dead", lambda row: "-" if row["dead_percent"] is None else f"{row['dead_percent']}%"),
    ("bloat", lambda row: size(row["bloat_bytes"])),
    ("autovacuum", lambda row: ago(row["last_autovacuum"])),
]

_REPLICATION: list[Column] = [
    ("standby", lambda row: row["application_name"] or row["role"]),
    ("state", lambda row: row["state"] or "-"),
    ("behind", lambda row: size(row["replay_lag_bytes"])),
    ("replay lag", lambda row: seconds(row["replay_lag_seconds"])),
]
