"""How the CLI prints traces: a table of traces, and one trace as an indented waterfall
that fits the console's width (80 columns and up); --json bypasses all of this."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..render import ago, milliseconds

# The waterfall's columns besides the bar: the span's name (indented by depth), its service,
# its duration, a mark for an error.
_NAME_SHARE = 0.34
_SERVICE_WIDTH = 10
_DURATION_WIDTH = 10
_MARK_WIDTH = 2
_MIN_BAR = 10


def _status(row: dict[str, Any]) -> Text:
    if row["error"]:
        return Text(f"error ({row['error_count']})", style="red")
    return Text(row["status_code"] or "-")


def print_traces(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(header_style="bold", expand=False)
    table.add_column("trace / root span", no_wrap=True, overflow="ellipsis")
    table.add_column("started", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("spans", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for row in rows:
        root = Text(row["trace_id"])
        service = row["root_service"] or "?"
        root.append(f"\n{service}: {row['root_operation'] or '(root span not received)'}", "dim")
        table.add_row(
            root,
            ago(row["start_time"]),
            milliseconds(row["duration_ms"]),
            str(row["span_count"]),
            _status(row),
        )
    console.print(table)


def print_waterfall(console: Console, detail: dict[str, Any]) -> None:
    """The trace's header, then a line per span: name indented by depth, service, a bar
    placed on the trace's time line, duration, and `!` for an error; the errors captured in
    a span follow it."""
    head = detail["trace"]
    spans = detail["spans"]
    width = max(console.width, 60)
    console.print(Text(f"trace {head['trace_id']}", style="bold"))
    summary = (
        f"{head['root_service'] or '?'}: {head['root_operation'] or '(root span not received)'}"
        f" | {milliseconds(head['duration_ms'])} | {head['span_count']} spans"
        f" | {head['start_time']:%Y-%m-%d %H:%M:%S}"
    )
    console.print(Text(summary, style="red" if head["error"] else ""), overflow="fold")
    if not spans:
        return
    total = max(
        float(head["duration_ms"] or 0),
        max(float(s["offset_ms"]) + float(s["duration_ms"] or 0) for s in spans),
        0.001,
    )
    name_width = int(width * _NAME_SHARE)
    bar_width = max(
        width - name_width - _SERVICE_WIDTH - _DURATION_WIDTH - _MARK_WIDTH - 3, _MIN_BAR
    )
    console.print(
        Text(
            f"{'span':<{name_width}} {'service':<{_SERVICE_WIDTH}} "
            f"{'0':<{bar_width // 2}}{milliseconds(total):>{bar_width - bar_width // 2}} "
            f"{'duration':>{_DURATION_WIDTH}}",
            style="dim",
        )
    )
    for span in spans:
        failed = span["status_code"] == "error"
        line = Text()
        line.append(_fit("  " * span["depth"] + span["operation"], name_width))
        line.append(" ")
        line.append(_fit(span["service"] or "", _SERVICE_WIDTH), style="dim")
        line.append(" ")
        start = int(float(span["offset_ms"]) / total * bar_width)
        start = min(start, bar_width - 1)
        length = max(1, round(float(span["duration_ms"] or 0) / total * bar_width))
        length = min(length, bar_width - start)
        line.append(" " * start)
        line.append("█" * length, style="red" if failed else "cyan")
        line.append(" " * (bar_width - start - length))
        line.append(" ")
        line.append(f"{milliseconds(span['duration_ms']):>{_DURATION_WIDTH}}")
        line.append(" !" if failed or span["errors"] else "  ", style="bold red")
        console.print(line, no_wrap=True, overflow="crop")
        indent = "  " * (span["depth"] + 1)
        if failed and span["status_message"]:
            console.print(
                Text(_cut(f"{indent}status: {span['status_message']}", width), style="red"),
                no_wrap=True,
            )
        for error in span["errors"] or []:
            text = f"{indent}error #{error.get('issue_id')}: {error.get('exception_type') or ''}"
            text += f": {error.get('message')}" if error.get("message") else ""
            console.print(Text(_cut(text, width), style="bold red"), no_wrap=True)


def _fit(text: str, width: int) -> str:
    """`text` in exactly `width` columns: padded, or cut with an ellipsis."""
    return _cut(text, width).ljust(width)


def _cut(text: str, width: int) -> str:
    """`text` in at most `width` columns, cut with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"
