#!/usr/bin/env python3
"""Writes the sync twin of each asyncio module, as psycopg's tools/async_to_sync.py does.

    python tools/async_to_sync.py            # rewrite the generated modules
    python tools/async_to_sync.py --check    # exit 1 if one is stale (`make lint` runs this)

The asyncio module is the one source; its sync twin is generated from it and starts with a
header saying so. The rules are few, so that the source reads as ordinary asyncio code:

- `await` goes, and so does `async` before def, with and for;
- names in RENAMES are replaced, as identifiers, attributes, imported names, and as words
  in strings and comments (so docstrings and messages name the sync classes);
- `Awaitable[X]`, `Task[X]` and `asyncio.Task[X]` annotations become `X`: the work done;
- a block `if True:  # ASYNC` is asyncio's alone: its `else:` block, if any, replaces it.

What differs for real (a thread or a task, an exit hook) lives in small per-flavour helpers
(monitoring/_acompat.py, monitoring/background.py) that both flavours call by the same
names. The output goes through `ruff check --fix` (imports: sorted, unused ones dropped)
and `ruff format`, so a twin is formatted as hand-written code would be.

The edits are made on the source text at the positions the AST gives, so comments stay.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import itertools
import re
import shutil
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "pg_monitoring"

# (asyncio source, generated sync twin), relative to PACKAGE.
PAIRS = [
    ("_db/connection_async.py", "_db/connection.py"),
    ("cache/client_async.py", "cache/client.py"),
    ("cache/redis_async.py", "cache/redis.py"),
    ("monitoring/tracker_async.py", "monitoring/tracker.py"),
]

RENAMES = {
    # psycopg and psycopg_pool
    "AsyncConnection": "Connection",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncCursor": "Cursor",
    # the standard library
    "AsyncIterator": "Iterator",
    "asynccontextmanager": "contextmanager",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "aclose": "close",
    # this package: modules
    "connection_async": "connection",
    "client_async": "client",
    "redis_async": "redis",
    "tracker_async": "tracker",
    # this package: the twins and their per-flavour helpers
    "AsyncConnector": "Connector",
    "AsyncSource": "Source",
    "PostgresCache": "SyncPostgresCache",
    "AsyncErrorTracker": "ErrorTracker",
    "TaskBatcher": "ThreadBatcher",
    "AExitHook": "ExitHook",
    "ATasks": "Tasks",
}

# Annotations of work to await: `Awaitable[int]`, or `Task[int]` started in the background,
# is in sync code `int`, the work done.
UNWRAP = {"Awaitable", "Task", "asyncio.Task"}

HEADER = "# WARNING: generated from {source} by tools/async_to_sync.py; do not edit.\n"

_WORDS = re.compile(r"\b(" + "|".join(sorted(map(re.escape, RENAMES), key=len)[::-1]) + r")\b")
_ASYNC_BLOCK = re.compile(r"^\s*if True:\s*#\s*ASYNC\b")


class GenerationError(Exception):
    pass


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


class Source:
    """A module's text, with AST positions (lines from 1, UTF-8 byte columns) made offsets."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.tree = ast.parse(text, name)
        self._line_starts = [0]
        for line in text.splitlines(keepends=True):
            self._line_starts.append(self._line_starts[-1] + len(line))
        self._lines = text.splitlines(keepends=True)

    def offset(self, lineno: int, col: int) -> int:
        line = self._lines[lineno - 1] if lineno <= len(self._lines) else ""
        return self._line_starts[lineno - 1] + len(line.encode()[:col].decode())

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def line_span(self, first: int, last: int) -> tuple[int, int]:
        """Offsets of whole lines `first` to `last`, their line ends included."""
        return self._line_starts[first - 1], self._line_starts[last]


def apply(text: str, edits: list[Edit]) -> str:
    edits = sorted(edits, key=lambda e: (e.start, e.end))
    for before, after in itertools.pairwise(edits):
        if after.start < before.end:
            raise GenerationError(f"overlapping edits at offset {after.start}: {before}, {after}")
    for edit in reversed(edits):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def drop_async_blocks(source: Source) -> str:
    """`if True:  # ASYNC` blocks replaced by their else block, dedented, or by nothing."""
    edits = []
    for node in ast.walk(source.tree):
        if not (isinstance(node, ast.If) and _ASYNC_BLOCK.match(source._lines[node.lineno - 1])):
            continue
        if not (isinstance(node.test, ast.Constant) and node.test.value is True):
            raise GenerationError(f"{source.name}:{node.lineno}: an ASYNC block is `if True:`")
        start, end = source.line_span(node.lineno, node.end_lineno or node.lineno)
        kept = ""
        if node.orelse:
            else_line = node.orelse[0].lineno - 1
            while not source._lines[else_line - 1].strip().startswith("else"):
                else_line -= 1
            body = source._lines[else_line : node.end_lineno]
            indent = len(source._lines[node.lineno - 1]) - len(
                source._lines[node.lineno - 1].lstrip()
            )
            kept = "".join(_dedent(line, indent) for line in body)
        edits.append(Edit(start, end, kept))
    return apply(source.text, edits)


def _dedent(line: str, indent: int) -> str:
    """`line` moved left to `indent`, from the block's deeper level (4 more spaces)."""
    if not line.strip():
        return line
    return line[4:] if line[: indent + 4].strip() == "" else line


def string_and_comment_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every string and comment token, as text offsets."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    kinds = {tokenize.STRING: "string", tokenize.COMMENT: "comment"}
    fstring_start = getattr(tokenize, "FSTRING_START", None)
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    opened: list[int] = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        start = starts[token.start[0] - 1] + token.start[1]
        end = starts[token.end[0] - 1] + token.end[1]
        if token.type == fstring_start:
            opened.append(start)
        elif token.type == fstring_end:
            spans.append((opened.pop(), end, "string"))
        elif token.type in kinds and not opened:
            spans.append((start, end, kinds[token.type]))
    return spans


def to_sync(text: str, name: str) -> str:
    """The sync twin of asyncio module `text`, before formatting."""
    text = drop_async_blocks(Source(text, name))
    source = Source(text, name)
    spans = string_and_comment_spans(text)
    edits = [
        Edit(start, end, _WORDS.sub(lambda m: RENAMES[m.group(1)], text[start:end]))
        for start, end, _ in spans
    ]
    # Nodes inside these are rewritten with them: f-strings (as strings), unwrapped tasks.
    covered = [(start, end) for start, end, kind in spans if kind == "string"]
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) in UNWRAP:
            covered.append((source.start(node), source.end(node)))
            edits.append(Edit(source.start(node), source.end(node), _renamed(node.slice)))

    def is_covered(node: ast.AST) -> bool:
        start = source.start(node)
        return any(first <= start < last for first, last in covered)

    def keyword(node: ast.AST, word: str) -> None:
        start = source.start(node)
        found = re.compile(rf"{word}\s+").match(text, start)
        if found is None:
            raise GenerationError(f"{name}:{node.lineno}: expected {word!r}")  # type: ignore[attr-defined]
        edits.append(Edit(start, found.end(), ""))

    def rename_definition(node: ast.AST, word: str, old: str) -> None:
        found = re.compile(rf"{word}\s+({re.escape(old)})\b").search(text, source.start(node))
        assert found is not None
        edits.append(Edit(found.start(1), found.end(1), RENAMES[old]))

    for node in ast.walk(source.tree):
        if isinstance(node, (ast.expr, ast.stmt)) and is_covered(node):
            if isinstance(node, ast.Await):
                raise GenerationError(
                    f"{name}:{node.lineno}: await inside an f-string: await it before"
                )
            continue  # renamed with the string it is in
        if isinstance(node, ast.Await):
            keyword(node, "await")
        elif isinstance(node, (ast.AsyncWith, ast.AsyncFor)):
            keyword(node, "async")
        elif isinstance(node, ast.AsyncFunctionDef):
            keyword(node, "async")
            if node.name in RENAMES:
                rename_definition(node, "def", node.name)
        elif isinstance(node, ast.FunctionDef) and node.name in RENAMES:
            rename_definition(node, "def", node.name)
        elif isinstance(node, ast.ClassDef) and node.name in RENAMES:
            rename_definition(node, "class", node.name)
        elif isinstance(node, ast.comprehension) and node.is_async:
            raise GenerationError(f"{name}: async comprehensions are not supported")
        elif isinstance(node, ast.Name) and node.id in RENAMES:
            edits.append(Edit(source.start(node), source.end(node), RENAMES[node.id]))
        elif isinstance(node, ast.Attribute) and node.attr in RENAMES:
            end = source.end(node)
            edits.append(Edit(end - len(node.attr), end, RENAMES[node.attr]))
        elif isinstance(node, ast.ImportFrom):
            edits.append(Edit(source.start(node), source.end(node), _import(node)))
    return apply(text, edits)


class _Renamer(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = RENAMES.get(node.id, node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.Attribute:
        self.generic_visit(node)
        node.attr = RENAMES.get(node.attr, node.attr)
        return node


def _renamed(node: ast.expr) -> str:
    return ast.unparse(_Renamer().visit(ast.parse(ast.unparse(node), mode="eval")).body)


def _import(node: ast.ImportFrom) -> str:
    """The statement with its module and names renamed, each name once."""
    module = ".".join(RENAMES.get(part, part) for part in (node.module or "").split("."))
    names: list[str] = []
    for alias in node.names:
        text = RENAMES.get(alias.name, alias.name)
        if alias.asname:
            text += f" as {alias.asname}"
        if text not in names:
            names.append(text)
    return f"from {'.' * node.level}{module} import {', '.join(names)}"


def ruff() -> str:
    beside = Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.exists() else shutil.which("ruff")
    if found is None:
        raise GenerationError("ruff is needed to format the generated code (make deps)")
    return found


def formatted(text: str, target: Path) -> str:
    for command in (
        ["check", "--fix", "--exit-zero", "--quiet", "--select", "I,F401"],
        ["format"],
    ):
        text = subprocess.run(  # noqa: S603 - our venv's ruff, our own text
            [ruff(), *command, "--stdin-filename", str(target), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


def generate(source_path: Path, target_path: Path) -> str:
    text = to_sync(source_path.read_text(), str(source_path))
    relative = source_path.relative_to(target_path.parent)
    text = HEADER.format(source=relative.as_posix()) + text
    ast.parse(text, str(target_path))
    return formatted(text, target_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="fail if a twin is stale")
    options = parser.parse_args(argv)
    stale = []
    for source, target in PAIRS:
        source_path, target_path = PACKAGE / source, PACKAGE / target
        text = generate(source_path, target_path)
        current = target_path.read_text() if target_path.exists() else ""
        if text == current:
            continue
        if options.check:
            stale.append(target)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{target} (on disk)",
                    f"{target} (generated from {source})",
                )
            )
        else:
            target_path.write_text(text)
            print(f"wrote {target_path.relative_to(ROOT)}")
    if stale:
        print(
            f"stale: {', '.join(stale)}: edit the asyncio source, then run "
            "python tools/async_to_sync.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
