"""Roles, as an application's login roles meet them: what a refusal says, and what every role
shares whatever it was granted (alert wake-ups, the cache's key space)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pg_monitoring import AsyncErrorTracker, ErrorTracker, PermissionDeniedError
from pg_monitoring.cli import main

from .conftest import login_role

FINGERPRINT = "payment_timeout_error"
TRIAGE_REFUSED = "Triage (resolve, ignore, reopen, assign) needs monitoring_admin: "
ROLES_HINT = "monitoring_writer captures errors and uses the cache; monitoring_reader reads"


@pytest.fixture
def issue(installed_db: str) -> int:
    with ErrorTracker(installed_db, environment="production", service="shop") as tracker:
        captured = tracker.capture_message(
            "gateway timed out", level="error", fingerprint=FINGERPRINT
        )
    assert captured is not None
    assert captured.issue_id is not None
    return captured.issue_id


def status(dsn: str, issue_id: int) -> tuple[str, str | None]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT status, assignee FROM monitoring.issues WHERE id = %s", (issue_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


# A writer that tries to triage is told which role triage needs ------------------------

TRIAGE_CALLS: dict[str, Callable[[Any], Any]] = {
    "resolve_error": lambda tracker: tracker.resolve_error(FINGERPRINT),
    "ignore_error": lambda tracker: tracker.ignore_error(FINGERPRINT, until_events=10),
    "reopen_error": lambda tracker: tracker.reopen_error(FINGERPRINT),
    "assign_error": lambda tracker: tracker.assign_error(FINGERPRINT, "dev@example.com"),
    "unassign_error": lambda tracker: tracker.unassign_error(FINGERPRINT),
}


@pytest.mark.parametrize("call", TRIAGE_CALLS.values(), ids=TRIAGE_CALLS.keys())
def test_the_tracker_says_triage_needs_monitoring_admin(
    installed_db: str, issue: int, call: Callable[[ErrorTracker], Any]
) -> None:
    writer = login_role(installed_db, "pgm_test_writer", "monitoring_writer")
    with (
        ErrorTracker(writer, environment="production", service="shop") as tracker,
        pytest.raises(PermissionDeniedError) as refused,
    ):
        call(tracker)
    message = str(refused.value)
    assert message.startswith(TRIAGE_REFUSED + "permission denied for function issue_id\n")
    assert ROLES_HINT in message
    assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)
    assert status(installed_db, issue) == ("unresolved", None)

    # What it says is so: granted monitoring_admin, the same role may.
    admin = login_role(installed_db, "pgm_test_writer", "monitoring_admin")
    with ErrorTracker(admin, environment="production", service="shop") as tracker:
        row = call(tracker)
    assert row["id"] == issue


async def test_the_async_tracker_says_so_too(installed_db: str, issue: int) -> None:
    writer = login_role(installed_db, "pgm_test_writer", "monitoring_writer")
    async with AsyncErrorTracker(writer, environment="production", service="shop") as tracker:
        with pytest.raises(PermissionDeniedError, match="^" + re.escape(TRIAGE_REFUSED)):
            await tracker.resolve_error(FINGERPRINT)
        with pytest.raises(PermissionDeniedError, match="^" + re.escape(TRIAGE_REFUSED)):
            await tracker.assign_error(FINGERPRINT, "dev@example.com")
    assert status(installed_db, issue) == ("unresolved", None)


@pytest.mark.parametrize(
    ("command", "refused"),
    [
        (["resolve", FINGERPRINT], "function issue_id"),
        (["resolve", "{issue}"], "function resolve_issue"),
        (["ignore", "{issue}", "--for", "2h"], "function ignore_issue"),
        (["assign", "{issue}", "--to", "dev@example.com"], "function assign_issue"),
        (["reopen", FINGERPRINT], "function issue_id"),
    ],
)
def test_the_cli_says_triage_needs_monitoring_admin(
    installed_db: str, issue: int, command: list[str], refused: str
) -> None:
    writer = login_role(installed_db, "pgm_test_writer", "monitoring_writer")
    args = [arg.format(issue=issue) for arg in command]
    result = CliRunner().invoke(main, [*args, "--dsn", writer])
    assert result.exit_code == 1
    assert f"Error: {TRIAGE_REFUSED}permission denied for {refused}\n" in result.output
    assert ROLES_HINT in result.output
    assert status(installed_db, issue) == ("unresolved", None)


def test_any_other_refusal_names_the_three_roles(installed_db: str, issue: int) -> None:
    writer = login_role(installed_db, "pgm_test_writer", "monitoring_writer")
    result = CliRunner().invoke(main, ["issues", "--dsn", writer])
    assert result.exit_code == 1
    assert result.output.startswith("Error: permission denied for view issues\nHint: ")
    assert ROLES_HINT in result.output
    assert "Triage" not in result.output, "listing is not triage"
