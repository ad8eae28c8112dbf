"""`pg-monitoring channels` as a user meets it: the messages it prints, as a process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from .alert_servers import http_receiver

PG_MONITORING = str(Path(sys.executable).parent / "pg-monitoring")


def pg_monitoring(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PG_MONITORING, *args], capture_output=True, text=True, timeout=60)


def test_a_failed_test_notification_is_reported_once(installed_db: str) -> None:
    with http_receiver(status=400) as http:
        added = pg_monitoring(
            "channels",
            "add",
            "ops",
            "webhook",
            "--dsn",
            installed_db,
            "--secret",
            f"url={http.url}",
        )
        assert added.returncode == 0, added.stderr
        tested = pg_monitoring("channels", "test", "ops", "--dsn", installed_db)
    assert tested.returncode == 1
    assert tested.stdout == ""
    (line,) = tested.stderr.splitlines()
    assert line.startswith("Error: test notification #1 to ops: dead: "), line
    assert "400" in line


def test_a_refused_channel_is_explained_with_the_commands_flags(installed_db: str) -> None:
    def refusal(*args: str) -> str:
        added = pg_monitoring("channels", "add", *args, "--dsn", installed_db)
        assert added.returncode == 1
        (line,) = added.stderr.splitlines()
        assert "p_" not in line, "no argument of the stored function"
        return line

    assert refusal("x", "slack", "--set", "webhook_url=https://hooks.example.com/T/B/x") == (
        "Error: --set webhook_url is a secret: pass it in --secret webhook_url, or name an "
        "environment variable with --env webhook_url=VARIABLE"
    )
    assert (
        refusal("x", "webhook")
        == "Error: a webhook channel needs --secret url or --env url=VARIABLE"
    )
    assert refusal("x", "webhook", "--env", "url=1st").startswith(
        "Error: --env url=VARIABLE must name an environment variable"
    )
    assert refusal("x", "webhook", "--env", "url=URL", "--secret", "token=t").startswith(
        "Error: --secret token is not a secret of a webhook channel"
    )
    assert refusal(" ", "webhook", "--env", "url=URL") == "Error: NAME must not be empty"


def test_kinds_levels_and_statuses_are_checked_by_the_rule_sql_holds(installed_db: str) -> None:
    """The CLI lists no kinds, levels or statuses of its own: SQL refuses, the CLI relays."""
    kind = pg_monitoring("channels", "add", "x", "sms", "--dsn", installed_db)
    assert kind.returncode == 1
    assert "KIND must be one of email, slack, webhook, pagerduty" in kind.stderr, kind.stderr
    level = pg_monitoring(
        "channels",
        "add",
        "x",
        "webhook",
        "--env",
        "url=URL",
        "--min-level",
        "loud",
        "--dsn",
        installed_db,
    )
    assert level.returncode == 1
    assert "--min-level" in level.stderr, level.stderr
    assert "warning" in level.stderr, level.stderr
    status = pg_monitoring("alerts", "--status", "lost", "--dsn", installed_db)
    assert status.returncode == 2
    assert "'lost' is not one of pending, sending, sent, failed, dead" in status.stderr


def _words(output: str) -> set[str]:
    """The words a table shows, without its borders."""
    return set(re.sub(r"[\u2500-\u257f]", " ", output).split())


@pytest.mark.parametrize("columns", ["80", None], ids=["COLUMNS=80", "piped"])
def test_channels_and_alerts_fit_80_columns_in_whole_words(
    installed_db: str, columns: str | None
) -> None:
    mail = (
        "channels add ops-mail email --set smtp_host=smtp.example.com "
        "--set from_email=alerts@example.com --set to_emails=oncall@example.com,dev@example.com "
        "--secret smtp_password=pw --service shop --environment production "
        "--environment staging --min-level warning"
    )
    hook = "channels add ops-hook webhook --env url=HOOK_URL"
    added = [pg_monitoring(*args.split(), "--dsn", installed_db) for args in (mail, hook)]
    assert [a.returncode for a in added] == [0, 0], [a.stderr for a in added]
    with psycopg.connect(installed_db) as conn:
        conn.execute(
            "SELECT monitoring.capture_error('PaymentTimeout', 'gateway timed out after 30 "
            "seconds while charging the customer card for order', NULL, '{}', "
            "p_environment => 'production', p_service => 'shop')"
        )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    shown = {}
    for command in ("channels list", "alerts"):
        done = subprocess.run(
            [PG_MONITORING, *command.split(), "--dsn", installed_db],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert max(len(line) for line in done.stdout.splitlines()) <= 80, done.stdout
        shown[command] = _words(done.stdout)
    assert {
        "ops-mail",
        "ops-hook",
        "webhook",
        "services:",
        "shop",
        "environments:",
        "production,",
        "staging",
        "warning",
        "smtp_host=smtp.example.com",
        "from_email=alerts@example.com",
        "to_emails=oncall@example.com,",
        "dev@example.com",
        "smtp_password",
        "url_env=HOOK_URL",
    } <= shown["channels list"], shown["channels list"]
    assert {
        "pending",
        "ops-mail",
        "ops-hook",
        "shop/production:",
        "PaymentTimeout:",
        "gateway",
        "seconds",
        "charging",
        "customer",
        "attempts,",
        "condition:",
    } <= shown["alerts"], shown["alerts"]
