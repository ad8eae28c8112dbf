"""The bad-input table and what every case must answer; builders of bad payloads."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from rich.console import Console

from pg_monitoring import issues, render
from pg_monitoring.connection import Connector

KB = 1024
MB = 1024 * KB

# Planted only where scrubbing must find it (under a sensitive key, after "Bearer "...): it
# must never be stored.
SECRET = "hunter2-never-stored"

# Never a clear answer: a crash, a PostgreSQL limit reached (index row size, stack depth,
# memory), a timeout, a table's constraint or a column's type refusing what our code wrote,
# a feature PostgreSQL lacks, or our own code calling what does not exist.
UNCLEAR_STATES = frozenset({
    "XX000", "XX001", "54000", "54001", "53200", "57014",
    "23502", "23503", "23505", "23514", "22001", "0A000",
    "42883", "42P01", "42703",
})  # fmt: skip
# A clear error says what was wrong in a sentence: it does not echo megabytes of the input
# (into the server's log as well as to the caller).
MAX_MESSAGE = 1000
# What truncate_text and _index_text add to a cut string.
MARKER_ROOM = 60
CUT_MARKERS = ("[truncated", "omitted", "_truncated", "[nested too deep", "[cut; md5")


Arguments = Sequence[Any] | Mapping[str, Any] | Callable[[], Sequence[Any] | Mapping[str, Any]]


@dataclass(frozen=True)
class Database:
    owner: psycopg.Connection[Any]
    writer: psycopg.Connection[Any]
    admin: psycopg.Connection[Any]
    writer_dsn: str
    # issues the client has printed
    printed: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Case:
    """One call: `sql` with `args` (or a function making them, for the big ones). A tuple of
    statements runs them in turn with the same arguments (named ones, %(name)s, may differ):
    the last is the call, the others set the stage."""

    id: str
    sql: str | tuple[str, ...]
    args: Arguments = ()
    # SQLSTATEs the call may be refused with; none: it must succeed
    refused: tuple[str, ...] = ()
    # what a refusal's message must name (the argument, or the JSON field)
    names: str = ""
    # a success must show a cut marker
    cut: bool = False
    # a success must return these rows
    returns: list[Any] | None = None
    timeout: float = 2.0

    def arguments(self) -> Sequence[Any] | Mapping[str, Any]:
        return self.args() if callable(self.args) else self.args


def ok(
    case_id: str,
    query: str | tuple[str, ...],
    args: Arguments = (),
    *,
    cut: bool = False,
    returns: list[Any] | None = None,
    timeout: float = 2.0,
) -> Case:
    return Case(case_id, query, args, cut=cut, returns=returns, timeout=timeout)


def refused(
    case_id: str,
    query: str | tuple[str, ...],
    args: Arguments = (),
    *,
    states: Sequence[str] = ("22023",),
    names: str = "",
    timeout: float = 2.0,
) -> Case:
    assert not UNCLEAR_STATES & set(states), case_id
    return Case(case_id, query, args, refused=tuple(states), names=names, timeout=timeout)


def select(function: str, *params: str) -> str:
    """`SELECT * FROM monitoring.<function>(...)`, each param bound to one %s: `::type` for
    a positional argument, `p_name::type` (or `p_name`) for a named one."""
    bound = []
    for param in params:
        name, _, cast = param.partition("::")
        value = f"%s::{cast}" if cast else "%s"
        bound.append(f"{name} => {value}" if name else value)
    return f"SELECT * FROM monitoring.{function}({', '.join(bound)})"


def table(cases: Sequence[Case]) -> pytest.MarkDecorator:
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return pytest.mark.parametrize("case", cases, ids=ids)


def call(conn: psycopg.Connection[Any], case: Case) -> list[Any] | None:
    """The case's rows when it succeeded, as it must unless it may be refused; None when it
    was refused as it may be. Each call has its own time limit: a guard, not a benchmark."""
    statements = (case.sql,) if isinstance(case.sql, str) else case.sql
    arguments = case.arguments()
    conn.execute(f"SET statement_timeout = {round(case.timeout * 1000)}")
    try:
        for statement in statements[:-1]:
            conn.execute(statement, arguments)
        rows = conn.execute(statements[-1], arguments).fetchall()
    except psycopg.Error as error:
        assert_clear(error, case)
        return None
    finally:
        conn.execute("RESET statement_timeout")
    assert not case.refused, f"succeeded, but should be refused with {case.refused}"
    if case.returns is not None:
        assert rows == case.returns
    return rows


def assert_clear(error: psycopg.Error, case: Case) -> None:
    message = error.diag.message_primary or ""
    summary = f"{error.sqlstate}: {message[:300]}"
    assert case.refused, f"failed with {summary}"
    assert error.sqlstate not in UNCLEAR_STATES, f"unclear error {summary}"
    assert error.sqlstate in case.refused, f"expected {case.refused}, got {summary}"
    assert 0 < len(message) <= MAX_MESSAGE, f"a message of {len(message)} characters"
    assert case.names in message, f"the message does not name {case.names!r}: {summary}"


# Payloads, as JSON text: json.dumps would recurse as deep as they nest, and jsonb casts of
# text reach our functions as the clients' do.


def text_of(characters: int, unit: str = "x") -> str:
    return unit * characters


def noise(characters: int) -> str:
    """Text that does not compress: a btree compresses a long value before it gives up."""
    return secrets.token_hex(characters // 2 + 1)[:characters]


def nested_arrays(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def nested_objects(depth: int, leaf: str = "1", key: str = "a") -> str:
    return f'{{"{key}": ' * depth + leaf + "}" * depth


def wide_object(keys: int, value: str = "1", prefix: str = "key") -> str:
    return "{" + ",".join(f'"{prefix}{i}": {value}' for i in range(keys)) + "}"


def long_array(items: int, item: str = "1") -> str:
    return "[" + ",".join([item] * items) + "]"


def js(value: Any) -> str:
    return json.dumps(value)


def python_traceback(frames: int, chained: int = 1) -> str:
    """Python's text for `chained` exceptions, each raised from the last, of `frames` each."""
    blocks = []
    for exception in range(chained):
        lines = ["Traceback (most recent call last):"]
        for frame in range(frames):
            lines.append(f'  File "/srv/app/module{frame}.py", line {frame + 1}, in f{frame}')
            lines.append(f"    call_{frame}(argument)")
        lines.append(f"app.errors.Failure{exception}: failure {exception}")
        blocks.append("\n".join(lines))
    cause = "\n\nThe above exception was the direct cause of the following exception:\n\n"
    return cause.join(blocks)


# What every stored event keeps to ------------------------------------------------------

EVENTS = """
    SELECT e.*, i.title, i.culprit
    FROM monitoring.errors AS e
    INNER JOIN monitoring.issues AS i ON e.issue_id = i.id
"""
# JSON nesting, counting the bag itself: a bag keeps 10 levels below it, and a frame's
# variables 10 below the frame, which sits 3 deep in the chain (chain, exception, frames).
BAG_DEPTH = 11
CHAIN_DEPTH = 14
INDEXED = {"service": 200, "environment": 200, "release": 200, "fingerprint": 200, "trace_id": 128}


def strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key it is under, string) for every string of a JSON value, keys included."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield "", name
            yield from strings(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item, key)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def limits(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT name, value::text::bigint FROM monitoring.effective_settings "
        "WHERE name IN ('errors.max_message_length', 'errors.max_context_bytes')"
    ).fetchall()
    return dict(rows)


def assert_bounded(event: dict[str, Any], bounds: dict[str, int]) -> None:
    longest = bounds["errors.max_message_length"] + MARKER_ROOM
    # a stack kept as text is kept to errors.max_context_bytes, in characters of 4 bytes
    longest_stack = bounds["errors.max_context_bytes"] // 4 + MARKER_ROOM
    for column, value in event.items():
        if isinstance(value, str):
            assert len(value) <= INDEXED.get(column, longest), f"{column}: {len(value)} chars"
        elif isinstance(value, (dict, list)):
            most = CHAIN_DEPTH if column in ("exceptions", "stack_trace") else BAG_DEPTH
            assert depth(value) <= most, f"{column} nests {depth(value)} levels"
            for key, text in strings(value):
                most = longest_stack if key == "raw_stacktrace" else longest
                assert len(text) <= most, f"a string of {len(text)} characters in {column}"
    assert SECRET not in json.dumps(event, default=str), "a secret was stored"


def has_cut_marker(event: dict[str, Any]) -> bool:
    text = json.dumps(event, default=str)
    return any(marker in text for marker in CUT_MARKERS)


def assert_shown_by_the_client(db: Database) -> None:
    """What `pg-monitoring issues --status all` and `pg-monitoring show` read of every issue,
    and print of each one not printed by an earlier family (printing is the slow part)."""
    client = Connector(db.admin)
    listed = issues.list_issues(client, issues.IssueFilter(status=None, limit=1_000_000))
    printed = Console(file=io.StringIO(), width=160, highlight=False, color_system=None)
    render.print_issues(printed, listed)
    for issue in listed:
        detail = issues.show_issue(client, issue["id"])
        assert detail is not None
        if issue["id"] not in db.printed:
            render.print_issue(printed, detail)
            db.printed.add(issue["id"])


def assert_healthy(db: Database) -> None:
    """After a family: maintenance runs clean, and everything stored reads back (psycopg loads
    every JSON value) within the limits, and through the client's `issues` and `show`."""
    db.admin.execute("SET statement_timeout = '30s'")
    try:
        (report,) = db.admin.execute("SELECT monitoring.run_maintenance()").fetchone() or ({},)
        assert "failed" not in report, report
        with db.admin.cursor(row_factory=dict_row) as cur:
            bounds = limits(db.admin)
            for event in cur.execute(EVENTS).fetchall():
                assert_bounded(event, bounds)
            for view in (
                "issues",
                "issue_history",
                "notifications",
                "notification_rules",
                "notification_channels",
                "effective_settings",
            ):
                cur.execute(f"SELECT * FROM monitoring.{view}").fetchall()
            cur.execute("SELECT * FROM monitoring.cache_stats()").fetchall()
        # what the client reads of each entry (expires_at is 'infinity' for most, which
        # Python has no datetime for: the client asks cache_ttl)
        db.writer.execute(
            "SELECT key, value, value_bytes, tags, monitoring.cache_ttl(key)"
            " FROM monitoring.cache_entries"
        ).fetchall()
        (longest_key,) = db.owner.execute(
            "SELECT max(length(k)) FROM (SELECT user_key FROM monitoring.error_issue_users "
            "UNION ALL SELECT user_key FROM monitoring.error_issue_counts "
            "UNION ALL SELECT version FROM monitoring.releases) AS u (k)"
        ).fetchone() or (None,)
        assert (longest_key or 0) <= 200
        assert_shown_by_the_client(db)
    finally:
        db.admin.execute("RESET statement_timeout")
