"""Roles, as an application's login roles meet them: what a refusal says, and what every role
shares whatever it was granted (alert wake-ups, the cache's key space)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from pg_monitoring import AsyncErrorTracker, ErrorTracker, PermissionDeniedError, installer
from pg_monitoring.cli import main

from .alert_servers import http_receiver
from .conftest import login_role, poll, superuser
from .test_alerts import add_webhook, capture, outbox, query
from .test_alerts_worker import add_webhook as add_receiver
from .test_alerts_worker import options, running_worker

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


# What every role shares ----------------------------------------------------------------


def test_any_role_may_listen_and_hears_only_outbox_ids(
    installed_db: str, make_database: Callable[..., str]
) -> None:
    stranger = login_role(installed_db, "pgm_test_stranger")  # no monitoring_* role at all
    other_tenant = login_role(make_database(), "pgm_test_stranger")
    add_webhook(installed_db)  # alerts on new issues
    with (
        psycopg.connect(stranger, autocommit=True) as listener,
        psycopg.connect(other_tenant, autocommit=True) as elsewhere,
    ):
        listener.execute("LISTEN pg_monitoring_alerts")
        elsewhere.execute("LISTEN pg_monitoring_alerts")
        with psycopg.connect(installed_db) as app:
            app.execute(
                "SELECT monitoring.capture_error('CardDeclined', %s)",
                ("card 4111 1111 1111 1111 of alice@example.com declined",),
            )
            capturing_pid = app.info.backend_pid
        heard = list(listener.notifies(timeout=5, stop_after=1))
        (queued,) = outbox(installed_db)
        assert [(n.channel, n.payload, n.pid) for n in heard] == [
            ("pg_monitoring_alerts", str(queued["id"]), capturing_pid)
        ]
        assert list(elsewhere.notifies(timeout=0.5)) == [], "wake-ups stay in their database"

        # Resuming a channel wakes the worker with no payload at all.
        query(installed_db, "SELECT monitoring.set_channel_enabled('hook', false)")
        query(installed_db, "SELECT monitoring.set_channel_enabled('hook', true)")
        assert [n.payload for n in listener.notifies(timeout=5, stop_after=1)] == [""]

        # The id leads nowhere without a grant.
        for relation in ("alert_outbox", "notifications", "issues"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema monitoring"):
                listener.execute(f"SELECT * FROM monitoring.{relation}")


def test_any_role_may_notify_but_a_forged_wake_up_sends_nothing(installed_db: str) -> None:
    stranger = login_role(installed_db, "pgm_test_stranger")
    with http_receiver() as http:
        add_receiver(installed_db, f"{http.url}/hook")
        # No polling to speak of: only NOTIFY wakes this worker.
        with running_worker(installed_db, options(poll_interval=60)):
            capture(installed_db)
            assert poll(lambda: [n["status"] for n in outbox(installed_db)] == ["sent"])
            (sent,) = outbox(installed_db)
            with psycopg.connect(stranger, autocommit=True) as conn:
                for payload in (str(sent["id"]), "999999", "send everything"):
                    conn.execute("SELECT pg_notify('pg_monitoring_alerts', %s)", (payload,))
            time.sleep(1)  # the worker wakes, claims what is due (nothing) and waits again
        assert len(http.requests) == 1
    assert [(n["id"], n["status"]) for n in outbox(installed_db)] == [(sent["id"], "sent")]


def cache(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else [(cursor.rowcount,)]


def test_every_writer_shares_one_cache_key_space(installed_db: str) -> None:
    app1 = login_role(installed_db, "pgm_test_app1", "monitoring_writer")
    app2 = login_role(installed_db, "pgm_test_app2", "monitoring_writer")
    cache(app1, """SELECT monitoring.cache_set('app1:session:7', '{"user": 7}', NULL)""")
    cache(app1, """SELECT monitoring.cache_set('user:7', '"Ada"', NULL)""")

    # Another application reads and lists them.
    assert cache(app2, "SELECT value FROM monitoring.cache_get('app1:session:7')") == [
        ({"user": 7},)
    ]
    assert cache(app2, "SELECT monitoring.cache_keys('*')") == [("app1:session:7",), ("user:7",)]

    # With a prefix of its own, its deletes touch only its keys.
    cache(app2, "SELECT monitoring.cache_set('app2:page:1', '1', NULL)")
    assert cache(app2, "SELECT monitoring.cache_delete_pattern('app2:*')") == [(1,)]
    assert cache(app1, "SELECT monitoring.cache_keys('*')") == [("app1:session:7",), ("user:7",)]

    # cache_flush() is monitoring_admin's, but '*' (or a plain DELETE) empties it for everyone.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        cache(app2, "SELECT monitoring.cache_flush()")
    assert cache(app2, "SELECT monitoring.cache_delete_pattern('*')") == [(2,)]
    assert cache(app1, "SELECT monitoring.cache_keys('*')") == []
    cache(app1, """SELECT monitoring.cache_set('app1:session:8', '{"user": 8}', NULL)""")
    assert cache(app2, "DELETE FROM monitoring.cache_entries") == [(1,)]


def test_a_tenants_database_keeps_out_only_the_roles_it_does_not_let_connect(
    installed_db: str, make_database: Callable[..., str]
) -> None:
    tenant = make_database()
    with psycopg.connect(tenant) as conn:
        installer.install(conn)
    app1 = login_role(tenant, "pgm_test_app1", "monitoring_writer")
    # The monitoring_* roles are cluster-wide: another application's writer is one here too.
    assert cache(app1, "SELECT monitoring.cache_set('app1:x', '1', NULL)") == [(True,)]
    with superuser(tenant) as conn:
        conn.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(conn.info.dbname)
            )
        )
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(app1).close()
