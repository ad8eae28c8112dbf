"""The design document's notification API and the channel commands of the CLI."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest
from click.testing import CliRunner
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pg_monitoring import ErrorNotificationChannel, init_error_tracker
from pg_monitoring.cli import main
from pg_monitoring.monitoring.notifications import (
    EmailNotifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
)

from .alert_servers import http_receiver
from .test_alerts import query

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"


def channels(dsn: str) -> list[tuple[str, str, dict[str, object], list[str]]]:
    return [
        (row["name"], row["kind"], row["config"], row["secret_fields"])
        for row in query(
            dsn,
            "SELECT name, kind, config, secret_fields FROM monitoring.notification_channels "
            "ORDER BY name",
        )
    ]


def rules(dsn: str) -> list[tuple[str, str | None, str | None]]:
    return [
        (row["condition"], row["channel"], row["fingerprint"])
        for row in query(
            dsn,
            "SELECT condition, channel, fingerprint FROM monitoring.notification_rules ORDER BY id",
        )
    ]


def design_document_setup(pool: ConnectionPool) -> None:
    """The design document's code, with fraiseql read as pg_monitoring (sync pool)."""
    tracker = init_error_tracker(
        pool,
        environment="production",
        notification_channels=[ErrorNotificationChannel.EMAIL, ErrorNotificationChannel.SLACK],
    )
    email_notifier = EmailNotifier(
        smtp_host="smtp.gmail.com",
        smtp_port=587,
        from_email="alerts@myapp.com",
        to_emails=["team@myapp.com"],
    )
    slack_notifier = SlackNotifier(webhook_url=SLACK_URL)
    tracker.add_notification_channel(email_notifier)
    tracker.add_notification_channel(slack_notifier)
    tracker.set_notification_rate_limit(
        fingerprint="payment_timeout_error",
        notify_on_occurrence=[1, 100, 200, 300],  # 1st, 100th, 200th, etc.
    )
    tracker.close()


def test_the_design_documents_notification_api(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        design_document_setup(pool)
        design_document_setup(pool)  # the application starts again: nothing doubles
    assert channels(installed_db) == [
        (
            "email",
            "email",
            {
                "smtp_host": "smtp.gmail.com",
                "smtp_port": 587,
                "from_email": "alerts@myapp.com",
                "to_emails": ["team@myapp.com"],
                "starttls": True,
                "ssl": False,
            },
            [],
        ),
        ("slack", "slack", {}, ["webhook_url"]),
    ]
    assert rules(installed_db) == [
        ("new_issue", "email", None),
        ("regression", "email", None),
        ("new_issue", "slack", None),
        ("regression", "slack", None),
        ("occurrences", None, "payment_timeout_error"),
    ]
    (limit,) = query(
        installed_db,
        "SELECT environment, occurrences, repeat_every, action_interval "
        "FROM monitoring.notification_rules WHERE condition = 'occurrences'",
    )
    assert limit["environment"] == "production", "scoped to the tracker's environment"
    assert limit["occurrences"] == [1, 100, 200, 300]
    assert limit["repeat_every"] == 100
    assert str(limit["action_interval"]) == "0:00:00"


def test_a_bare_kind_is_read_from_the_workers_environment(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=1) as pool:
        init_error_tracker(pool, notification_channels=["webhook", "pagerduty"]).close()
    assert channels(installed_db) == [
        ("pagerduty", "pagerduty", {"routing_key_env": "PAGERDUTY_ROUTING_KEY"}, []),
        (
            "webhook",
            "webhook",
            {
                "url_env": "PG_MONITORING_WEBHOOK_URL",
                "secret_env": "PG_MONITORING_WEBHOOK_SECRET",
            },
            [],
        ),
    ]


async def test_the_async_tracker_needs_no_await_for_configuration(installed_db: str) -> None:
    async with AsyncConnectionPool(installed_db, min_size=1, max_size=2) as db_pool:
        tracker = init_error_tracker(
            db_pool, environment="production", notification_channels=["slack"]
        )
        # as the design document writes them: not awaited
        tracker.add_notification_channel(WebhookNotifier(url="https://example.com/hook"))
        tracker.set_notification_rate_limit(
            fingerprint="payment_timeout_error", notify_on_occurrence=[1, 100, 200, 300]
        )
        channel_id = await tracker.add_notification_channel(
            PagerDutyNotifier(routing_key="R0UTING", name="pages")
        )
        assert isinstance(channel_id, int)
        await tracker.close()
    assert [name for name, *_ in channels(installed_db)] == ["pages", "slack", "webhook"]
    assert ("occurrences", None, "payment_timeout_error") in rules(installed_db)


def test_a_writer_tracker_logs_that_it_can_not_add_channels(
    installed_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(installed_db, autocommit=True) as conn:
        conn.execute("SET ROLE monitoring_writer")
        with caplog.at_level(logging.WARNING, logger="pg_monitoring"):
            tracker = init_error_tracker(conn, notification_channels=["slack"])
        assert "could not register the notification channels" in caplog.text
        assert tracker.capture_message("still captures") is not None
        with pytest.raises(PermissionError):
            tracker.add_notification_channel(SlackNotifier(webhook_url=SLACK_URL))


def test_notifiers_keep_their_secrets_out_of_sight(installed_db: str) -> None:
    """Which fields are secrets is SQL's rule (monitoring.channel_fields): the notifiers
    send their fields in one object and the secrets land in the admin-only column."""
    slack = SlackNotifier(webhook_url=SLACK_URL)
    assert SLACK_URL not in repr(slack)
    email = EmailNotifier(
        "smtp.example.com",
        465,
        "a@example.com",
        "b@example.com",
        smtp_user="a",
        smtp_password="hunter2",
        ssl=True,
    )
    assert "hunter2" not in repr(email)
    assert "465" in repr(email)
    hook = WebhookNotifier(env={"url": "HOOK_URL", "secret": "HOOK_SECRET"})
    for notifier in (slack, email, hook):
        notifier.add(installed_db)
    with psycopg.connect(installed_db) as conn:
        stored = {
            name: (config, secrets)
            for name, config, secrets in conn.execute(
                "SELECT name, config, secrets FROM monitoring.alert_channels"
            )
        }
    assert stored["slack"] == ({}, {"webhook_url": SLACK_URL})
    config, secrets = stored["email"]
    assert secrets == {"smtp_password": "hunter2"}
    assert config["to_emails"] == ["b@example.com"]
    assert config["smtp_port"] == 465
    assert stored["webhook"] == ({"url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}, {})


def test_channel_commands(installed_db: str) -> None:
    cli = CliRunner()
    with http_receiver() as http:
        added = cli.invoke(
            main,
            [
                "channels",
                "add",
                "ops",
                "webhook",
                "--dsn",
                installed_db,
                "--secret",
                "url",
                "--secret",
                "secret=s3cr3t",
                "--environment",
                "production",
                "--min-level",
                "error",
            ],
            input=f"{http.url}/ops\n",
        )
        assert added.exit_code == 0, added.output
        assert "Channel ops (webhook) is #1, with 2 rule(s) of its own." in added.output
        assert http.url not in added.output, "the prompt does not echo the secret"

        # wide enough for each filter on a line of its own
        listed = cli.invoke(
            main, ["channels", "list", "--dsn", installed_db], env={"COLUMNS": "160"}
        )
        assert listed.exit_code == 0, listed.output
        assert "secret, url" in listed.output
        assert "s3cr3t" not in listed.output
        assert "level >= error" in listed.output

        tested = cli.invoke(main, ["channels", "test", "ops", "--dsn", installed_db])
        assert tested.exit_code == 0, tested.output
        assert "Sent test notification" in tested.output
        (request,) = http.requests
        assert request.path == "/ops"
        assert request.json()["condition"] == "test"

    failing = cli.invoke(main, ["channels", "test", "ops", "--dsn", installed_db])
    assert failing.exit_code == 1
    assert "ConnectError" in failing.output, "the receiver is gone"

    bad = cli.invoke(
        main, ["channels", "add", "x", "slack", "--dsn", installed_db, "--set", "webhook_url=u"]
    )
    assert bad.exit_code == 1
    assert "--set webhook_url is a secret" in bad.output

    mail = cli.invoke(
        main,
        [
            "channels",
            "add",
            "mail",
            "email",
            "--dsn",
            installed_db,
            "--set",
            "smtp_host=smtp.example.com",
            "--set",
            "smtp_port=2525",
            "--set",
            "from_email=alerts@example.com",
            "--set",
            "to_emails=a@example.com, b@example.com",
            "--env",
            "smtp_password=SMTP_PASSWORD",
            "--no-default-rules",
        ],
    )
    assert mail.exit_code == 0, mail.output
    assert "with 0 rule(s)" in mail.output
    (config,) = query(
        installed_db, "SELECT config FROM monitoring.notification_channels WHERE name = 'mail'"
    )
    assert config["config"]["to_emails"] == ["a@example.com", "b@example.com"]
    assert config["config"]["smtp_port"] == 2525

    removed = cli.invoke(main, ["channels", "remove", "ops", "--yes", "--dsn", installed_db])
    assert removed.exit_code == 0, removed.output
    assert [name for name, *_ in channels(installed_db)] == ["mail"]
    missing = cli.invoke(main, ["channels", "remove", "ops", "--yes", "--dsn", installed_db])
    assert missing.exit_code == 1
    assert "no channel named 'ops'" in missing.output


def test_async_configuration_outside_a_loop_says_so(installed_db: str) -> None:
    tracker = init_error_tracker(installed_db, async_=True)
    with pytest.raises(RuntimeError, match="event loop"):
        tracker.add_notification_channel(SlackNotifier(webhook_url=SLACK_URL))
    asyncio.run(tracker.close())
