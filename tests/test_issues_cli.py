"""Triage from the command line: issues, show, resolve, ignore, reopen, assign, maintain."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from pg_monitoring.cli import main
from pg_monitoring.monitoring import ErrorTracker
from tests.conftest import superuser

TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/payments.py", line 42, in charge
    response = gateway.post(order)
  File "/usr/lib/python3/dist-packages/httpx/_client.py", line 100, in post
    raise ReadTimeout("timed out")
httpx.ReadTimeout: timed out after 30s
"""


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def capture(dsn: str, **kwargs: Any) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT issue_id FROM monitoring.capture_error("
            "%(type)s, %(message)s, %(trace)s::text, %(context)s::jsonb, "
            "p_environment => %(environment)s, p_user => %(user)s::jsonb, "
            "p_release => %(release)s)",
            {
                "type": None,
                "message": None,
                "trace": TRACEBACK,
                "context": '{"order_id": 1}',
                "environment": None,
                "user": None,
                "release": None,
                **kwargs,
            },
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def issue(installed_db: str) -> tuple[str, int]:
    issue_id = capture(installed_db, user='{"id": "u1"}')
    capture(installed_db, user='{"id": "u2"}')
    return installed_db, issue_id


def test_issues_lists_grouped_counts(issue: tuple[str, int]) -> None:
    dsn, issue_id = issue
    result = run("issues", "--dsn", dsn, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["id"], r["times_seen"], r["users_seen"]) for r in rows] == [(issue_id, 2, 2)]
    assert rows[0]["title"] == "ReadTimeout: timed out after 30s"
    assert rows[0]["culprit"] == "payments.py in charge"

    table = run("issues", "--dsn", dsn)
    assert "ReadTimeout: timed out after 30s" in table.output
    assert "unresolved" in table.output
    assert "(new)" in table.output


LONG_TITLE = "PaymentGatewayTimeout: the payment gateway did not answer within 30s for order 1001"
RIGHT_BORDERS = "┓┃┩│┘"


def issues_at(dsn: str, columns: str | None) -> list[str]:
    """The lines `pg-monitoring issues` prints with COLUMNS set (None: unset), piped."""
    result = CliRunner().invoke(
        main, ["issues", "--dsn", dsn], env={"COLUMNS": columns}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def titles(lines: list[str]) -> str:
    """The text of the table's last column (title and culprit), its wrapped lines joined."""
    cells = [line.split("│")[-2] for line in lines if line.startswith("│")]
    return " ".join(" ".join(cells).split())


@pytest.fixture
def long_title(installed_db: str) -> str:
    capture(installed_db)  # ReadTimeout, culprit payments.py in charge
    message = LONG_TITLE.split(": ", 1)[1]
    capture(installed_db, type="PaymentGatewayTimeout", message=message, trace="")
    return installed_db


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_the_issues_table_fits_the_width_and_keeps_the_title_whole(
    long_title: str, columns: int
) -> None:
    lines = issues_at(long_title, str(columns))
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert all(len(line) <= columns for line in lines), lines
    assert all(line.rstrip()[-1] in RIGHT_BORDERS for line in table[1:]), "a right border"
    assert LONG_TITLE in titles(lines)
    assert "payments.py in charge" in titles(lines), "the culprit"
    header = " ".join(" ".join(lines[:3]).split())
    for column in ("id", "status", "events", "last seen"):
        assert column in header, f"{column} at {columns} columns"
    if columns >= 100:
        assert "users" in header
        assert "level" in header
    if columns >= 160:
        assert "first seen" in header
    else:
        assert "first seen: not shown" in " ".join(lines[-3:])


def test_piped_issues_are_as_wide_as_columns_says_or_80(long_title: str) -> None:
    assert max(len(line) for line in issues_at(long_title, None)) <= 80
    wide = issues_at(long_title, "200")
    assert 120 < max(len(line) for line in wide) <= 200


def test_issues_filters(issue: tuple[str, int]) -> None:
    dsn, _ = issue
    capture(dsn, type="KeyError", message="x", trace="", environment="staging")
    staging = json.loads(run("issues", "--dsn", dsn, "--json", "-e", "staging").output)
    assert [r["environment"] for r in staging] == ["staging"]
    assert json.loads(run("issues", "--dsn", dsn, "--json", "--status", "resolved").output) == []
    recent = json.loads(run("issues", "--dsn", dsn, "--json", "--since", "1h").output)
    assert len(recent) == 2
    bad = CliRunner().invoke(main, ["issues", "--dsn", dsn, "--since", "soon"])
    assert bad.exit_code == 2
    assert "not a duration" in bad.output


def test_issues_statuses_are_the_databases(issue: tuple[str, int]) -> None:
    """--status takes the statuses monitoring.issue_statuses() lists, whatever they are."""
    dsn, _ = issue
    lost = CliRunner().invoke(main, ["issues", "--dsn", dsn, "--status", "lost"])
    assert lost.exit_code == 2
    assert "'lost' is not one of unresolved, resolved, ignored, all" in lost.output
    with superuser(dsn) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION monitoring.issue_statuses() RETURNS text[] "
            "LANGUAGE sql IMMUTABLE AS $$SELECT ARRAY['unresolved', 'resolved', 'ignored', "
            "'archived']$$"
        )
    archived = run("issues", "--dsn", dsn, "--status", "archived")
    assert archived.exit_code == 0, archived.output
    assert archived.output == "No issues.\n"


def test_show_prints_the_stack_and_history(issue: tuple[str, int]) -> None:
    dsn, issue_id = issue
    result = run("show", str(issue_id), "--dsn", dsn)
    assert result.exit_code == 0, result.output
    assert 'File "/srv/app/payments.py", line 42, in charge' in result.output
    assert "> response = gateway.post(order)" in result.output
    assert "(library)" in result.output, "the httpx frame is marked as not in-app"
    assert "order_id: 1" in result.output
    assert "first_seen" in result.output

    detail = json.loads(run("show", str(issue_id), "--dsn", dsn, "--json").output)
    assert detail["issue"]["id"] == issue_id
    assert detail["latest_event"]["context"] == {"order_id": 1}
    assert [h["action"] for h in detail["history"]] == ["first_seen"]


def test_lifecycle_commands(issue: tuple[str, int]) -> None:
    dsn, issue_id = issue
    target = str(issue_id)
    assert "resolved" in run("resolve", target, "--dsn", dsn, "--actor", "ann").output
    assert "ignored" in run("ignore", target, "--dsn", dsn, "--for", "2h").output
    assert "unresolved" in run("reopen", target, "--dsn", dsn).output
    assigned = run("assign", target, "--to", "dev@example.com", "--dsn", dsn)
    assert "assigned to dev@example.com" in assigned.output
    assert "assigned to" not in run("unassign", target, "--dsn", dsn).output

    history = json.loads(run("show", target, "--dsn", dsn, "--json").output)["history"]
    assert [h["action"] for h in history] == [
        "first_seen",
        "resolved",
        "ignored",
        "unresolved",
        "assigned",
        "unassigned",
    ]
    assert history[1]["actor"] == "ann"


def test_an_issue_by_fingerprint(installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn:
        conn.execute(
            "SELECT monitoring.capture_message('gateway down', "
            "p_fingerprint => ARRAY['payment_timeout_error'])"
        )
    result = run("resolve", "payment_timeout_error", "--dsn", installed_db)
    assert result.exit_code == 0, result.output
    missing = CliRunner().invoke(main, ["resolve", "no_such_error", "--dsn", installed_db])
    assert missing.exit_code == 1
    assert "no issue with fingerprint 'no_such_error'" in missing.output


def test_ignore_needs_one_way_to_say_until(issue: tuple[str, int]) -> None:
    dsn, issue_id = issue
    result = CliRunner().invoke(
        main, ["ignore", str(issue_id), "--dsn", dsn, "--for", "1h", "--until", "2030-01-01"]
    )
    assert result.exit_code == 2


def test_maintain_folds_counts(issue: tuple[str, int]) -> None:
    dsn, issue_id = issue
    result = run("maintain", "--dsn", dsn)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["events_folded"] == 2
    assert report["partitions_created"] >= 1
    with psycopg.connect(dsn) as conn:
        folded = conn.execute(
            "SELECT times_seen, users_seen FROM monitoring.error_issues WHERE id = %s", (issue_id,)
        ).fetchone()
    assert folded == (2, 2)


def test_a_reader_may_list_but_not_resolve(issue: tuple[str, int]) -> None:
    dsn, issue_id = issue
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE monitoring_reader")
        from pg_monitoring import issues
        from pg_monitoring.connection import Connector
        from pg_monitoring.errors import PermissionDeniedError

        db = Connector(conn)
        assert issues.list_issues(db, issues.IssueFilter())[0]["id"] == issue_id
        with pytest.raises(PermissionDeniedError):
            issues.resolve(db, issue_id)


def test_show_prints_a_stack_trace_text_it_could_not_parse(installed_db: str) -> None:
    java = "java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add(Cart.java:42)"
    issue_id = capture(installed_db, type="IllegalStateException", message="boom", trace=java)
    result = run("show", str(issue_id), "--dsn", installed_db)
    assert result.exit_code == 0, result.output
    assert "at com.shop.Cart.add(Cart.java:42)" in result.output
    assert "Traceback (most recent call last)" not in result.output, "there are no frames"
    assert "IllegalStateException: boom" in result.output


def test_a_database_without_the_schema_is_named(database: str) -> None:
    result = CliRunner().invoke(main, ["issues", "--dsn", database])
    assert result.exit_code == 1
    assert 'schema "monitoring" does not exist' in result.output
    assert "is pg_monitoring installed in this database?" in result.output


def test_show_says_when_a_time_sent_was_not_kept(installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn:
        row = conn.execute(
            "SELECT issue_id FROM monitoring.capture_error('ClockError', 'm', "
            "p_occurred_at => '2001-02-03 04:05:06+00')"
        ).fetchone()
    assert row is not None
    result = run("show", str(row[0]), "--dsn", installed_db)
    assert result.exit_code == 0, result.output
    assert "(older than errors.retention_days)" in result.output
    detail = json.loads(run("show", str(row[0]), "--dsn", installed_db, "--json").output)
    sent = detail["latest_event"]["data"]["timestamp_adjusted"]["sent"]
    assert datetime.fromisoformat(sent) == datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    assert sent in result.output


def test_show_prints_what_the_limits_cut(installed_db: str) -> None:
    """A chain of 300 exceptions, deep in the stack: markers where exceptions were cut."""
    chain = [
        {"type": f"Link{i}", "value": f"step {i}", "stacktrace": {"frames": [{"function": "f"}]}}
        for i in range(300)
    ]
    with psycopg.connect(installed_db) as conn:
        row = conn.execute(
            "SELECT issue_id FROM monitoring.capture_event(%s::jsonb)",
            (json.dumps({"exception": {"values": chain}}),),
        ).fetchone()
    assert row is not None
    result = run("show", str(row[0]), "--dsn", installed_db)
    assert result.exit_code == 0, result.output
    assert "... [290 exceptions omitted] ..." in result.output
    assert "Link0: step 0" in result.output
    assert "Link299: step 299" in result.output


def parse_when_given(text: str) -> int:
    if text:
        return int(text)
    return 0


def test_show_keeps_the_indentation_of_the_line_that_failed(installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn:
        tracker = ErrorTracker(conn)
        try:
            parse_when_given("x")
        except ValueError as error:
            tracker.capture_exception(error)
        tracker.close()
    output = run("show", "1", "--dsn", installed_db).output
    assert "          if text:\n    >         return int(text)\n" in output, output
