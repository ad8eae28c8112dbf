"""Alert rules in SQL, end to end through real connections: when notifications are queued.

Delivery is in test_alerts_worker.py; the SQL functions' details are in pgtap/alerts/.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from .storm import storm

FRAMES = (
    '[{"filename": "app/jobs.py", "module": "app.jobs", "function": "run", '
    '"context_line": "process(batch)", "in_app": true}]'
)


def query(dsn: str, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def outbox(dsn: str) -> list[dict[str, Any]]:
    return query(
        dsn,
        "SELECT id, status, condition, channel, issue_id, payload FROM monitoring.notifications "
        "ORDER BY id",
    )


def add_webhook(dsn: str, name: str = "hook", **options: Any) -> None:
    extra = "".join(f", p_{key} => %({key})s" for key in options)
    query(
        dsn,
        "SELECT monitoring.add_channel(%(name)s, 'webhook', '{}', "
        f"""'{{"url": "http://127.0.0.1:9/{name}"}}'{extra})""",
        {"name": name, **options},
    )


def capture(dsn: str, message: str = "boom", **options: Any) -> int:
    extra = "".join(f", p_{key} => %({key})s" for key in options)
    return query(
        dsn,
        f"SELECT issue_id FROM monitoring.capture_error('JobFailed', %(message)s, %(frames)s::jsonb"
        f"{extra})",
        {"message": message, "frames": FRAMES, **options},
    )[0]["issue_id"]


def test_a_new_channel_alerts_on_new_issues_and_regressions_once_per_interval(
    installed_db: str,
) -> None:
    add_webhook(installed_db)
    issue = capture(installed_db)
    capture(installed_db, "boom again")
    assert [(n["condition"], n["issue_id"]) for n in outbox(installed_db)] == [
        ("new_issue", issue)
    ], "the second event of an issue is no news"

    query(installed_db, "SELECT monitoring.resolve_issue(%s)", (issue,))
    capture(installed_db)
    query(installed_db, "SELECT monitoring.resolve_issue(%s)", (issue,))
    capture(installed_db)
    conditions = [n["condition"] for n in outbox(installed_db)]
    assert conditions == ["new_issue", "regression"], (
        "two regressions within 30 minutes alert once (the default action interval)"
    )
    (regression,) = [n for n in outbox(installed_db) if n["condition"] == "regression"]
    assert regression["payload"]["summary"].startswith("Regression in default/production:")
    assert regression["payload"]["times_seen"] == 3


def test_nothing_is_queued_by_a_capture_that_rolls_back(installed_db: str) -> None:
    add_webhook(installed_db)
    with psycopg.connect(installed_db) as conn:
        conn.execute("SELECT monitoring.capture_error('E', 'rolled back')")
        assert conn.execute("SELECT count(*) FROM monitoring.alert_outbox").fetchone() == (1,)
        conn.rollback()
    assert outbox(installed_db) == [], "the outbox row lives and dies with the event"


def test_ignored_issues_do_not_alert_until_they_escalate(installed_db: str) -> None:
    add_webhook(installed_db)
    query(installed_db, "SELECT monitoring.add_alert_rule('escalating')")
    query(
        installed_db,
        "SELECT monitoring.add_alert_rule('occurrences', p_occurrences => '{2,3,4}', "
        "p_repeat_every => 0)",
    )
    issue = capture(installed_db)
    query(installed_db, "SELECT monitoring.ignore_issue(%s, p_until_events => 3)", (issue,))
    capture(installed_db)
    capture(installed_db)
    query(installed_db, "SELECT monitoring.fold_counts()")
    assert [n["condition"] for n in outbox(installed_db)] == ["new_issue"], (
        "occurrence 2 and 3 of an ignored issue do not alert"
    )
    for _ in range(2):
        capture(installed_db)
    query(installed_db, "SELECT monitoring.fold_counts()")
    alerts = outbox(installed_db)
    assert [n["condition"] for n in alerts] == ["new_issue", "escalating", "occurrences"]
    assert alerts[1]["payload"]["reason"] == "event count reached"
    assert alerts[2]["payload"]["threshold"] == 4, "the 4th event woke it: it is counted"


def test_channel_filters(installed_db: str) -> None:
    add_webhook(installed_db, "shop-errors", services=["shop"], min_level="error")
    add_webhook(installed_db, "staging", environments=["staging"])
    capture(installed_db, "a", service="shop", level="warning", fingerprint=["a"])
    capture(installed_db, "b", service="shop", level="fatal", fingerprint=["b"])
    capture(installed_db, "c", service="billing", level="fatal", fingerprint=["c"])
    capture(installed_db, "d", service="billing", environment="staging", fingerprint=["d"])
    sent = [(n["channel"], n["payload"]["title"]) for n in outbox(installed_db)]
    assert sent == [("shop-errors", "JobFailed: b"), ("staging", "JobFailed: d")]


def test_a_fingerprint_rate_limit_replaces_the_default_rules(installed_db: str) -> None:
    add_webhook(installed_db)
    query(
        installed_db,
        "SELECT monitoring.set_occurrence_alerts('payment_timeout_error', '{1,100,200,300}')",
    )
    with psycopg.connect(installed_db, autocommit=True) as conn:
        for batch in (1, 98, 1, 150, 250):
            conn.execute(
                "SELECT monitoring.capture_error('E', 'timeout', p_fingerprint => "
                "'{payment_timeout_error}') FROM generate_series(1, %s)",
                (batch,),
            )
            conn.execute("SELECT monitoring.fold_counts()")
    thresholds = [n["payload"]["threshold"] for n in outbox(installed_db)]
    assert thresholds == [1, 100, 200, 300, 400, 500], (
        "the 1st and every 100th, each once, however the folds cut the counts; no new_issue "
        "alert: the issue's own rule replaces the channel's defaults"
    )
    capture(installed_db, "another issue")
    assert outbox(installed_db)[-1]["condition"] == "new_issue", "other issues keep them"


def test_frequency_rules_fire_when_the_count_crosses(installed_db: str) -> None:
    add_webhook(installed_db, default_rules=False)
    query(
        installed_db,
        "SELECT monitoring.add_alert_rule('event_frequency', p_threshold => 5, "
        "p_window => '10 minutes', p_action_interval => '0')",
    )
    query(
        installed_db,
        "SELECT monitoring.add_alert_rule('user_frequency', p_threshold => 2, "
        "p_window => '10 minutes', p_action_interval => '0')",
    )
    for i in range(6):
        capture(installed_db, user=f'{{"id": "{i % 3}"}}')
    query(installed_db, "SELECT monitoring.fold_counts()")
    for i in range(6):
        capture(installed_db, user=f'{{"id": "{i % 3}"}}')
    query(installed_db, "SELECT monitoring.fold_counts()")
    assert sorted(n["condition"] for n in outbox(installed_db)) == [
        "event_frequency",
        "user_frequency",
    ], "more than 5 events and more than 2 users: once each while the counts stay above"
    event_alert = next(n for n in outbox(installed_db) if n["condition"] == "event_frequency")
    assert event_alert["payload"]["summary"].startswith(
        "More than 5 events in 10 minutes in default/production"
    )

    # The window moves on: the count falls below, and the next burst is a new crossing.
    query(
        installed_db,
        "UPDATE monitoring.error_events SET occurred_at = occurred_at - interval '1 hour'",
    )
    query(
        installed_db,
        "UPDATE monitoring.error_issue_users SET last_seen = last_seen - interval '1 hour'",
    )
    capture(installed_db, user='{"id": "9"}')
    query(installed_db, "SELECT monitoring.fold_counts()")
    assert len(outbox(installed_db)) == 2
    for i in range(6):
        capture(installed_db, user=f'{{"id": "{i}"}}')
    query(installed_db, "SELECT monitoring.fold_counts()")
    assert sorted(n["condition"] for n in outbox(installed_db)) == [
        "event_frequency",
        "event_frequency",
        "user_frequency",
        "user_frequency",
    ]


WRITERS = 8
EVENTS_EACH = 400


def test_an_error_storm_alerts_exactly_as_configured(installed_db: str) -> None:
    """Thousands of events of one fingerprint from 8 writers while folds run: one new-issue
    alert, one per occurrence threshold, one per frequency rule within its action interval,
    and after a resolve, concurrent regressions alert once."""
    add_webhook(installed_db)
    query(
        installed_db,
        "SELECT monitoring.add_alert_rule('occurrences', p_occurrences => '{1,100,200,300}')",
    )
    query(
        installed_db,
        "SELECT monitoring.add_alert_rule('event_frequency', p_threshold => 500, "
        "p_window => '10 minutes')",
    )
    query(
        installed_db,
        "SELECT monitoring.add_alert_rule('user_frequency', p_threshold => 20, "
        "p_window => '10 minutes')",
    )
    storm(
        installed_db,
        writers=WRITERS,
        events_each=EVENTS_EACH,
        distinct_users=50,
        fold_sql="SELECT monitoring.fold_counts()",
        exception_type="StormError",
    )
    query(installed_db, "SELECT monitoring.fold_counts()")

    total = WRITERS * EVENTS_EACH
    alerts = outbox(installed_db)
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert["condition"]] = counts.get(alert["condition"], 0) + 1
    assert counts == {
        "new_issue": 1,
        "occurrences": 1 + total // 100,
        "event_frequency": 1,
        "user_frequency": 1,
    }
    thresholds = sorted(
        a["payload"]["threshold"] for a in alerts if a["condition"] == "occurrences"
    )
    assert thresholds == [1, *range(100, total + 1, 100)]

    (issue,) = {a["issue_id"] for a in alerts}
    query(installed_db, "SELECT monitoring.resolve_issue(%s)", (issue,))
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def regress() -> None:
        try:
            with psycopg.connect(installed_db, autocommit=True) as conn:
                barrier.wait()
                conn.execute(
                    "SELECT monitoring.capture_error('StormError', 'again', %s::jsonb)", (FRAMES,)
                )
        except BaseException as error:
            errors.append(error)

    regressors = [threading.Thread(target=regress) for _ in range(WRITERS)]
    for thread in regressors:
        thread.start()
    for thread in regressors:
        thread.join(timeout=60)
    assert errors == []
    assert [a["condition"] for a in outbox(installed_db)].count("regression") == 1


def test_the_writer_role_can_not_read_channels(installed_db: str) -> None:
    query(
        installed_db,
        """SELECT monitoring.add_channel('slack', 'slack', '{}',
                  '{"webhook_url": "https://hooks.slack.com/services/T/B/secret"}')""",
    )
    with psycopg.connect(installed_db, autocommit=True) as conn:
        conn.execute("SET ROLE monitoring_writer")
        for table in ("alert_channels", "notification_channels", "alert_outbox"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM monitoring.{table}")
        conn.execute("SET ROLE monitoring_reader")
        row = conn.execute(
            "SELECT config, secret_fields FROM monitoring.notification_channels"
        ).fetchone()
        assert row == ({}, ["webhook_url"]), "readers learn that there is a secret, not which"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT secrets FROM monitoring.alert_channels")
        conn.execute("SET ROLE monitoring_admin")
        assert conn.execute("SELECT secrets FROM monitoring.alert_channels").fetchone() == (
            {"webhook_url": "https://hooks.slack.com/services/T/B/secret"},
        )
