"""docs/migrating-from-sentry.md runs as written: its shell lines (`pg-monitoring ...`) and
Python snippets in order, against the throwaway cluster, with `serve` on a free port in
place of the doc's address; the DSN path's and the transport path's errors are stored."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import psycopg

from .conftest import login_role
from .test_server import serve

DOC = Path(__file__).resolve().parent.parent / "docs" / "migrating-from-sentry.md"
DOC_HOST = "monitoring.internal:4318"


def blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block, in order; indented blocks dedented."""
    found = re.findall(r"^( *)```(\w+)\n(.*?)^\1```", DOC.read_text(), flags=re.S | re.M)
    return [
        (language, "\n".join(line[len(indent) :] for line in code.splitlines()))
        for indent, language, code in found
    ]


def test_every_snippet_of_the_migration_guide_runs(database: str) -> None:
    assert [language for language, _ in blocks()].count("python") == 2
    env = {**os.environ, "DATABASE_URL": database}
    ran: list[str] = []
    with ExitStack() as stack:
        for language, code in blocks():
            if language == "python":
                done = subprocess.run(
                    [sys.executable, "-c", code],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert done.returncode == 0, done.stderr
                ran.append("python")
                continue
            assert language == "sh", language
            for line in code.splitlines():
                if line.startswith("pip "):
                    continue  # the test's environment has the extras
                words = shlex.split(line)
                assert words[0] == "pg-monitoring", line
                if words[1] == "serve":
                    writer = login_role(database, "pgm_test_doc_serve", "monitoring_writer")
                    server = stack.enter_context(serve(writer))
                    env["SENTRY_DSN"] = env["SENTRY_DSN"].replace(
                        DOC_HOST, server.url.removeprefix("http://")
                    )
                    ran.append("serve")
                    continue
                done = subprocess.run(
                    [sys.executable, "-m", "pg_monitoring", *words[1:]],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert done.returncode == 0, (line, done.stdout, done.stderr)
                if words[1:3] == ["projects", "add"]:
                    env["SENTRY_DSN"] = done.stdout.strip().splitlines()[-1]
                    assert DOC_HOST in env["SENTRY_DSN"]
                ran.append(" ".join(words[:3]))
                if words[1] == "stats":
                    assert "checkout\taccepted\terror" in done.stdout
    assert "serve" in ran
    with psycopg.connect(database) as conn:
        issues = conn.execute(
            "SELECT exception_type, service FROM monitoring.issues ORDER BY exception_type"
        ).fetchall()
    assert issues == [("KeyError", "checkout"), ("ZeroDivisionError", "checkout")]
