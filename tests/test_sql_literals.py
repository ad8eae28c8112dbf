"""No plain string constant in sql/ holds a backslash.

Function bodies are parsed in the caller's session: with standard_conforming_strings off, a
plain '\\d' is the string 'd', and a scrubbing or parsing regex silently changes meaning.
E'...' (each backslash written twice) and dollar quoting read the same in every session;
test_session_settings.py shows the result, this finds the cause early, with a line number.
"""

from __future__ import annotations

import re
from pathlib import Path

SQL = Path(__file__).resolve().parent.parent / "sql"
# Quotes that delimit function bodies, whose contents are SQL: scanned through, not skipped.
BODY_QUOTES = {"$$", "$fn$"}


def plain_literals_with_backslash(text: str) -> list[tuple[int, str]]:
    found = []
    i = 0
    while i < len(text):
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        dollar = re.match(r"\$[A-Za-z_]*\$", text[i:]) if text[i] == "$" else None
        if dollar:
            tag = dollar.group(0)
            i = i + len(tag) if tag in BODY_QUOTES else text.find(tag, i + len(tag)) + len(tag)
            continue
        if text[i] == "'":
            end = i + 1
            while True:
                end = text.find("'", end)
                if not text.startswith("''", end):
                    break
                end += 2
            literal = text[i : end + 1]
            if "\\" in literal and text[i - 1] not in "Ee":
                found.append((text.count("\n", 0, i) + 1, literal))
            i = end + 1
            continue
        i += 1
    return found


def test_no_plain_literal_holds_a_backslash() -> None:
    found = [
        f"{path.name}:{line}: {literal[:60]}"
        for path in sorted(SQL.rglob("*.sql"))
        if "released" not in path.parts
        for line, literal in plain_literals_with_backslash(path.read_text())
    ]
    assert found == [], "write these E'...' with each backslash doubled"


def test_the_scanner_finds_one() -> None:
    assert plain_literals_with_backslash("SELECT 'a' ~ '\\d', E'\\\\d', $re$\\d$re$") == [
        (1, "'\\d'")
    ]
