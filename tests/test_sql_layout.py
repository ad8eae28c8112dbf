"""The layout of sql/: every file in the manifest once, functions apart from tables, and every
function, procedure, view and trigger CREATE OR REPLACE.

So an upgrade script (sql/upgrades/) can include the file of a changed function whole: the
last test runs every such file again over a fresh install and finds the catalog unchanged.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import psycopg

from .conftest import pg_dump_schema

SQL = Path(__file__).resolve().parent.parent / "sql"
MANIFEST = SQL / "pg_monitoring.sql"
INCLUDE = re.compile(r"^-- @include +(\S+) *$", re.M)
# What a file of definitions may hold: each statement can run again over what it made.
RERUNNABLE = re.compile(
    r"(CREATE OR REPLACE (FUNCTION|PROCEDURE|VIEW|TRIGGER|AGGREGATE)|COMMENT ON|GRANT|REVOKE)\b"
)
NOT_REPLACEABLE = re.compile(r"CREATE (FUNCTION|PROCEDURE|VIEW|RECURSIVE VIEW|TRIGGER|AGGREGATE)\b")


def sources() -> list[Path]:
    """Every source the manifest should include: all of sql/ but releases and upgrades."""
    return sorted(
        path
        for path in SQL.rglob("*.sql")
        if path != MANIFEST and not {"released", "upgrades"} & set(path.relative_to(SQL).parts)
    )


def includes(path: Path) -> list[Path]:
    """The files `path` includes, resolved as sql/flatten.awk does, nested ones too."""
    found = []
    for target in INCLUDE.findall(path.read_text()):
        included = (path.parent / target).resolve()
        found += [included, *includes(included)]
    return found


def statements(text: str) -> list[tuple[int, str]]:
    """The top-level statements of a SQL file, comments removed, each with its first line."""
    found = []
    start = None
    i = 0
    while i < len(text):
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if start is None and not text[i].isspace():
            start = i
        dollar = re.match(r"\$[A-Za-z_]*\$", text[i:]) if text[i] == "$" else None
        if dollar:
            i = text.index(dollar.group(0), i + len(dollar.group(0))) + len(dollar.group(0))
            continue
        if text[i] == "'":
            i = text.index("'", i + 1) + 1
            while text.startswith("'", i):  # a doubled quote inside the literal
                i = text.index("'", i + 1) + 1
            continue
        if text[i] == ";" and start is not None:
            statement = re.sub(r"--[^\n]*", "", text[start:i])
            found.append((text.count("\n", 0, start) + 1, " ".join(statement.split())))
            start = None
        i += 1
    return found


def definition_files() -> list[Path]:
    """The files that define functions, procedures, views or triggers, in manifest order."""
    return [
        path
        for path in dict.fromkeys(includes(MANIFEST))
        if any(RERUNNABLE.match(s) and "OR REPLACE" in s for _, s in statements(path.read_text()))
    ]


def test_the_manifest_includes_every_source_once() -> None:
    counts = Counter(includes(MANIFEST))
    assert {path.name: n for path, n in counts.items() if n != 1} == {}
    expected = {path.resolve() for path in sources()}
    assert sorted(str(p.relative_to(SQL)) for p in expected - set(counts)) == [], "not included"
    assert sorted(str(p) for p in set(counts) - expected) == [], "included, not a source"


def test_upgrades_include_sources_once() -> None:
    for upgrade in (SQL / "upgrades").glob("*.sql"):
        counts = Counter(includes(upgrade))
        assert {path.name: n for path, n in counts.items() if n != 1} == {}, upgrade.name
        assert all(path.exists() for path in counts), upgrade.name


def test_every_function_view_and_trigger_is_create_or_replace() -> None:
    found = [
        f"{path.relative_to(SQL)}:{line}: {statement[:60]}"
        for path in sources()
        for line, statement in statements(path.read_text())
        if NOT_REPLACEABLE.match(statement)
    ]
    assert found == [], "write these CREATE OR REPLACE"


def test_functions_live_apart_from_tables() -> None:
    """A file of definitions holds nothing that could not run twice (no table, index, type,
    row or DO block): an upgrade that includes it runs it over what it made before."""
    found = [
        f"{path.relative_to(SQL)}:{line}: {statement[:60]}"
        for path in definition_files()
        for line, statement in statements(path.read_text())
        if not RERUNNABLE.match(statement)
    ]
    assert found == [], "move these to the domain's tables.sql (or a *_tables.sql)"


def test_the_scanner_reads_statements() -> None:
    text = "-- a; comment\nCREATE TABLE t (a text DEFAULT 'x;''y');\nSELECT $f$;$f$;\n"
    assert statements(text) == [
        (2, "CREATE TABLE t (a text DEFAULT 'x;''y')"),
        (3, "SELECT $f$;$f$"),
    ]


def test_definitions_run_again_change_nothing(installed_db: str) -> None:
    before = pg_dump_schema(installed_db)
    files = definition_files()
    assert len(files) > 20
    with psycopg.connect(installed_db, autocommit=True) as conn:
        for path in files:
            conn.execute(path.read_text())  # type: ignore[arg-type]
    assert pg_dump_schema(installed_db) == before
