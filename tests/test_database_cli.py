"""`pg-monitoring db` on a database with a lock wait and pg_stat_statements: the one-screen
summary fits 80 columns, and --json holds every list."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from pg_monitoring.cli import main

from .conftest import lock_wait, poll, superuser


def run(*args: str, columns: int = 80) -> str:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_db_shows_a_lock_wait_top_statements_and_tables(installed_db: str) -> None:
    with superuser(installed_db) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(
            "CREATE TABLE public.orders AS SELECT g AS id FROM generate_series(1, 1000) AS g"
        )
        conn.execute("ANALYZE public.orders")
    with lock_wait(installed_db, "public.orders") as wait:

        def blocked() -> dict[str, Any] | None:
            report = json.loads(run("db", "--dsn", installed_db, "--json"))
            return report if report["blocking"] else None

        report = poll(blocked)
        assert report is not None
        text = run("db", "--dsn", installed_db)
    holder_pid, waiter_pid = wait.holder_pid, wait.waiter_pid

    assert set(report) == {"health", "blocking", "activity", "statements", "tables", "replication"}
    assert report["health"]["blocked"] >= 1
    assert report["blocking"][0]["blocked_pid"] == waiter_pid
    assert report["blocking"][0]["blocking_pid"] == holder_pid
    assert any(row["table_name"] == "orders" for row in report["tables"])
    assert report["statements"]
    assert report["replication"] == []

    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    for title in ("Waiting for locks", "Longest transactions", "Top statements", "Largest tables"):
        assert any(line.startswith(title) for line in lines), title
    assert "waiting for a lock" in lines[1]
    assert str(waiter_pid) in text
    assert "public.orders" in text


def test_db_top_bounds_every_list(installed_db: str) -> None:
    report = json.loads(run("db", "--dsn", installed_db, "--json", "--top", "2"))
    assert len(report["tables"]) == 2
    assert len(report["activity"]) <= 2
    result = CliRunner().invoke(main, ["db", "--dsn", installed_db, "--top", "0"])
    assert result.exit_code == 2
    assert "--top" in result.output
