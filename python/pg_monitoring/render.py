"""How the CLI prints issues, events and its other lists (rich tables); --json bypasses all
of this."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"unresolved": "red", "resolved": "green", "ignored": "dim"}


def console(soft_wrap: bool = False) -> Console:
    """As wide as the terminal; when output goes to a file or a pipe, as COLUMNS says, else
    as the terminal the command runs in, else 80 columns (rich's rules). With `soft_wrap`,
    lines are printed whole: the terminal folds a long one, a pipe or a file keeps it."""
    return Console(soft_wrap=soft_wrap)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = int((datetime.now(timezone.utc) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def milliseconds(value: Decimal | float | None) -> str:
    """A duration for people: 12.3 ms, 123 ms, 12.3 s, 4.5 min, 1.2 h."""
    if value is None:
        return "-"
    value = float(value)
    for unit, size in (("h", 3_600_000), ("min", 60_000)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    if value >= 10000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms"


# A column of a table: its header, and its cell for a row.
Column = tuple[str, Callable[[dict[str, Any]], "str | Text"]]
# A column's padding and its border on the right; the table's border on the left.
_COLUMN_EDGES = 3


def fitted_table(
    rows: list[dict[str, Any]],
    width: int,
    columns: list[Column],
    wide: Column,
    wide_width: int,
    right: tuple[str, ...] = (),
) -> Table:
    """`rows` as a table at most `width` columns wide, for the CLI's lists. `columns`, by
    priority, are never wrapped: where the width is short, the last go first (the first
    stays), so that the `wide` column, last, keeps `wide_width` columns to wrap in, at word
    boundaries. A caption names the columns left out; `right` are right-aligned."""
    cells = {name: [cell(row) for row in rows] for name, cell in columns}
    room = width - 1 - (wide_width + _COLUMN_EDGES)
    shown: list[str] = []
    for index, (name, _cell) in enumerate(columns):
        needs = max(len(line) for text in [name, *cells[name]] for line in str(text).split("\n"))
        if index > 0 and needs + _COLUMN_EDGES > room:
            break
        shown.append(name)
        room -= needs + _COLUMN_EDGES
    hidden = [name for name, _cell in columns if name not in shown]

    table = Table(header_style="bold", expand=False)
    for name in shown:
        table.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    table.add_column(wide[0], overflow="fold")
    if hidden:
        table.caption = f"{', '.join(hidden)}: not shown at {width} columns (--json shows all)"
        table.caption_justify = "left"
    for index, row in enumerate(rows):
        table.add_row(*(cells[name][index] for name in shown), wide[1](row))
    return table


# The triage table's columns besides the title, by priority.
_ISSUE_COLUMNS: list[Column] = [
    ("id", lambda row: str(row["id"])),
    ("status", lambda row: _status(row)),
    ("events", lambda row: str(row["times_seen"])),
    ("last seen", lambda row: ago(row["last_seen"])),
    ("users", lambda row: str(row["users_seen"])),
    ("level", lambda row: row["level"]),
    ("first seen", lambda row: ago(row["first_seen"])),
]
TITLE_WIDTH = 36


def _status(row: dict[str, Any]) -> Text:
    status = row["status"] + (f"\n({row['substatus']})" if row["substatus"] else "")
    return Text(status, style=STATUS_STYLE.get(row["status"], ""))


def _title(row: dict[str, Any]) -> Text:
    title = Text(row["title"])
    if row["culprit"]:
        title.append(f"\n{row['culprit']}", style="dim")
    return title


def print_issues(console: Console, rows: list[dict[str, Any]]) -> None:
    """The triage table, fitted to the console's width."""
    console.print(issues_table(rows, console.width))


def issues_table(rows: list[dict[str, Any]], width: int) -> Table:
    """Issues as a table at most `width` columns wide: the title and culprit wrap in what the
    columns of the highest priority leave; the id is always there."""
    return fitted_table(
        rows,
        width,
        _ISSUE_COLUMNS,
        ("title / culprit", _title),
        TITLE_WIDTH,
        right=("id", "events", "users"),
    )


def print_issue(console: Console, detail: dict[str, Any]) -> None:
    """An issue, its latest event with its stack trace, and its history (`show`): lines of
    text, for a console that soft-wraps."""
    issue = detail["issue"]
    console.print(f"[bold]#{issue['id']} {issue['title']}[/bold]")
    console.print(
        f"{issue['status']}"
        + (f" ({issue['substatus']})" if issue["substatus"] else "")
        + f" | {issue['level']} | {issue['times_seen']} events | {issue['users_seen']} users"
        + f" | {issue['service']}/{issue['environment']}"
    )
    console.print(
        f"first seen {issue['first_seen']:%Y-%m-%d %H:%M:%S}, "
        f"last seen {issue['last_seen']:%Y-%m-%d %H:%M:%S}"
        + (f", assigned to {issue['assignee']}" if issue["assignee"] else "")
    )
    console.print(f"fingerprint {issue['fingerprint']} ({issue['fingerprint_source']})")
    if issue["culprit"]:
        console.print(f"culprit {issue['culprit']}")

    event = detail["latest_event"]
    if event is not None:
        console.print(f"\n[bold]Latest event[/bold] {event['event_id']} at {event['occurred_at']}")
        if event["release"]:
            console.print(f"release {event['release']}")
        adjusted = (event.get("data") or {}).get("timestamp_adjusted")
        if isinstance(adjusted, dict):  # a wrong client clock: filed at the time received
            console.print(
                f"sent with the time {adjusted.get('sent')} ({adjusted.get('reason')})",
                markup=False,
                style="yellow",
            )
        print_exceptions(console, event["exceptions"] or [])
        if not event["exceptions"] and event["message"]:
            console.print(event["message"])
        for label, key in (("tags", "tags"), ("user", "user_info"), ("context", "context")):
            if event[key]:
                console.print(f"\n[bold]{label}[/bold]")
                for name, value in event[key].items():
                    console.print(f"  {name}: {json.dumps(value, default=str)}", markup=False)
        if event["breadcrumbs"]:
            console.print("\n[bold]breadcrumbs[/bold]")
            for crumb in event["breadcrumbs"]:
                if not isinstance(crumb, dict):  # kept as sent
                    console.print(f"  {json.dumps(crumb)}", markup=False)
                    continue
                what = crumb.get("message") or json.dumps(crumb.get("data", {}), default=str)
                console.print(
                    f"  {crumb.get('timestamp', '')} {crumb.get('category', '')} {what}",
                    markup=False,
                )
        if event["trace_id"]:
            console.print(f"\ntrace {event['trace_id']} span {event['span_id'] or '-'}")

    if detail["history"]:
        console.print("\n[bold]history[/bold]")
        for entry in detail["history"]:
            data = ", ".join(f"{k}={v}" for k, v in entry["data"].items())
            console.print(
                f"  {entry['occurred_at']:%Y-%m-%d %H:%M:%S} {entry['actor']}: "
                f"{entry['action']} {data}",
                markup=False,
            )


def _lines(context: Any) -> list[Any]:
    """A frame's source context as lines: a list as SDKs send it, anything else as one."""
    if context is None:
        return []
    return context if isinstance(context, list) else [context]


def print_exceptions(console: Console, chain: list[dict[str, Any]]) -> None:
    """Like Python prints a traceback: root cause first, oldest call first, with source."""
    for index, exc in enumerate(chain):
        if index:
            console.print("\nThe above exception led to the following exception:\n", style="dim")
        if "exceptions_omitted" in exc:  # the middle of a long chain, cut
            console.print(f"... {exc.get('type')} ...", markup=False, style="dim")
            continue
        frames = exc.get("frames") or []
        if frames:
            console.print("Traceback (most recent call last):", markup=False)
        for frame in frames:
            if not isinstance(frame, dict):  # stored as sent; it does not group
                console.print(f"  {frame!r}", markup=False, style="dim")
                continue
            if "frames_omitted" in frame:
                console.print(f"  ... {frame.get('function')} ...", markup=False, style="dim")
                continue
            where = frame.get("abs_path") or frame.get("filename") or frame.get("module") or "?"
            marker = "" if frame.get("in_app", True) else "  (library)"
            console.print(
                f'  File "{where}", line {frame.get("lineno", "?")}, '
                f"in {frame.get('function', '?')}{marker}",
                markup=False,
            )
            for line in _lines(frame.get("pre_context")):
                console.print(f"      {line}", markup=False, style="dim")
            if frame.get("context_line"):
                # the source's own indentation, aligned with the lines around it
                console.print(f"    > {str(frame['context_line']).rstrip()}", markup=False)
            for line in _lines(frame.get("post_context")):
                console.print(f"      {line}", markup=False, style="dim")
        if exc.get("_truncated"):  # a chain over errors.max_stack_bytes
            console.print(f"  ({exc['_truncated']})", markup=False, style="dim")
        if exc.get("raw_stacktrace"):  # stack trace text that is no Python traceback
            console.print(exc["raw_stacktrace"].rstrip(), markup=False, highlight=False)
        label = exc.get("type") or "Error"
        console.print(f"{label}: {exc.get('value', '')}", markup=False, style="bold")
