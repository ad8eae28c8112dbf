"""The delivery worker against real receivers on 127.0.0.1: an HTTP server (webhook, Slack,
PagerDuty) and an SMTP server (aiosmtpd). Retries use the short backoff set in `alerts_db`.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pg_monitoring.alerts import Worker, WorkerOptions
from pg_monitoring.alerts.senders import Timeouts
from pg_monitoring.cli import main

from .alert_servers import http_receiver, self_signed_certificate, smtp_server
from .conftest import poll
from .test_alerts import capture, outbox, query

PG_MONITORING = str(Path(sys.executable).parent / "pg-monitoring")
SECRET = "whsec-test"


@pytest.fixture
def alerts_db(installed_db: str) -> str:
    query(installed_db, "SELECT monitoring.set_setting('alerts.retry_base_seconds', '0.05')")
    query(installed_db, "SELECT monitoring.set_setting('alerts.retry_max_seconds', '0.2')")
    return installed_db


def options(**overrides: Any) -> WorkerOptions:
    settings: dict[str, Any] = {
        "poll_interval": 0.2,
        "lease": 5.0,
        "fold_every": 0,
        "maintenance_every": 0,
        "timeouts": Timeouts(http=2, smtp=3),
        **overrides,
    }
    return WorkerOptions(**settings)


@contextmanager
def running_worker(
    dsn: str, worker_options: WorkerOptions | None = None, **kwargs: Any
) -> Iterator[Worker]:
    worker = Worker(dsn, worker_options or options(), **kwargs)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the worker stops when asked"


def statuses(dsn: str) -> list[str]:
    return [n["status"] for n in outbox(dsn)]


def add_webhook(dsn: str, url: str, name: str = "hook", secret: str | None = SECRET) -> None:
    secrets = {"url": url, **({"secret": secret} if secret else {})}
    query(
        dsn,
        "SELECT monitoring.add_channel(%s, 'webhook', '{}', %s::jsonb)",
        (name, psycopg.types.json.Jsonb(secrets)),
    )


def add_mail(dsn: str, smtp_port: int) -> None:
    """An email channel with the default (required) STARTTLS."""
    query(
        dsn,
        "SELECT monitoring.add_channel('mail', 'email', %s::jsonb)",
        (
            f'{{"smtp_host": "127.0.0.1", "smtp_port": {smtp_port}, '
            '"from_email": "alerts@example.com", "to_emails": "oncall@example.com"}',
        ),
    )


def keys(dsn: str) -> set[str]:
    return {
        str(row["idempotency_key"])
        for row in query(dsn, "SELECT idempotency_key FROM monitoring.notifications")
    }


def test_each_kind_of_channel_receives_its_message(alerts_db: str) -> None:
    hostile = "card declined for @channel <!here> <@U0123> & <https://evil.example|click> <b>"
    with http_receiver(secret=SECRET) as http, smtp_server() as (smtp_port, mailbox):
        add_webhook(alerts_db, f"{http.url}/hook")
        query(
            alerts_db,
            "SELECT monitoring.add_channel('slack', 'slack', '{}', %s::jsonb)",
            (f'{{"webhook_url": "{http.url}/services/T0/B0/secret-token"}}',),
        )
        query(
            alerts_db,
            "SELECT monitoring.add_channel('pd', 'pagerduty', %s::jsonb, "
            """'{"routing_key": "R0UTING"}')""",
            (f'{{"api_url": "{http.url}/enqueue"}}',),
        )
        query(
            alerts_db,
            "SELECT monitoring.add_channel('mail', 'email', %s::jsonb)",
            (
                f'{{"smtp_host": "127.0.0.1", "smtp_port": {smtp_port}, "starttls": false, '
                '"from_email": "alerts@example.com", "to_emails": ["oncall@example.com"]}',
            ),
        )
        issue = capture(alerts_db, hostile, level="fatal")
        with Worker(alerts_db, options()) as worker:
            outcomes = worker.deliver_once()
        assert sorted((o.channel, o.status) for o in outcomes) == [
            ("hook", "sent"),
            ("mail", "sent"),
            ("pd", "sent"),
            ("slack", "sent"),
        ]
        assert mailbox.arrived.wait(5)

    (hook,) = http.received("/hook")
    assert hook.signature_valid, "HMAC-SHA256 over '<t>.<body>' with the channel's secret"
    key = hook.headers["Idempotency-Key"]
    assert key in keys(alerts_db)
    document = hook.json()
    assert document["idempotency_key"] == key
    assert document["condition"] == "new_issue"
    assert document["issue"]["issue_id"] == issue
    assert document["issue"]["title"] == f"JobFailed: {hostile}"

    (slack,) = http.received("/services/T0/B0/secret-token")
    text = slack.body.decode()
    for mention in ("<!here>", "<@U0123>", "<https://evil.example|click>", "@channel"):
        assert mention not in slack.json()["text"], mention
    assert "&lt;!here&gt;" in slack.json()["text"]
    assert "@\u2060channel" in slack.json()["text"]
    assert "secret-token" not in text

    (page,) = http.received("/enqueue")
    event = page.json()
    assert event["routing_key"] == "R0UTING"
    assert event["event_action"] == "trigger"
    assert event["payload"]["severity"] == "critical"
    fingerprint = query(alerts_db, "SELECT fingerprint FROM monitoring.issues")[0]["fingerprint"]
    assert event["dedup_key"] == f"pg_monitoring:default:production:{fingerprint}"

    ((recipients, mail),) = mailbox.messages
    assert recipients == ["oncall@example.com"]
    assert mail["Subject"].startswith("[pg_monitoring] New issue in default/production")
    (mail_key,) = query(
        alerts_db, "SELECT idempotency_key FROM monitoring.notifications WHERE channel = 'mail'"
    )
    assert mail["Message-ID"] == f"<{mail_key['idempotency_key']}@pg-monitoring>"
    plain = mail.get_body(("plain",)).get_content()
    rich = mail.get_body(("html",)).get_content()
    assert hostile in plain
    assert "<b>" not in rich.replace("<body>", "")
    assert "&lt;b&gt;" in rich
    assert "&lt;!here&gt;" in rich
    assert statuses(alerts_db) == ["sent"] * 4


def test_email_requires_starttls_unless_told_otherwise(alerts_db: str) -> None:
    """The local SMTP server offers no STARTTLS: the default channel refuses to send in clear
    text (dead at once: retrying will not add TLS to the server)."""
    with smtp_server() as (smtp_port, mailbox):
        add_mail(alerts_db, smtp_port)
        capture(alerts_db)
        with Worker(alerts_db, options()) as worker:
            (outcome,) = worker.deliver_once()
    assert outcome.status == "dead"
    assert outcome.error is not None
    assert "STARTTLS" in outcome.error
    assert mailbox.messages == []


def test_email_starttls_verifies_the_certificate(
    alerts_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server whose certificate nobody vouches for gets nothing; once the worker trusts that
    certificate (SSL_CERT_FILE, read by the default context), the mail goes over TLS."""
    cert, key = self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with smtp_server(tls=server_tls) as (smtp_port, mailbox):
        add_mail(alerts_db, smtp_port)
        capture(alerts_db)
        with Worker(alerts_db, options()) as worker:
            (refused,) = worker.deliver_once()
        assert refused.status != "sent"
        assert refused.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in refused.error
        assert mailbox.messages == []

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        time.sleep(0.3)  # past the retry backoff of alerts_db
        with Worker(alerts_db, options()) as worker:
            (delivered,) = worker.deliver_once()
        assert delivered.status == "sent", delivered.error
        assert mailbox.arrived.wait(10)
        assert mailbox.messages[0][0] == ["oncall@example.com"]


def test_retries_with_backoff_until_the_receiver_recovers(alerts_db: str) -> None:
    with http_receiver(statuses=[500, 500, 503], secret=SECRET) as http:
        add_webhook(alerts_db, f"{http.url}/hook")
        capture(alerts_db)
        started = time.monotonic()
        with running_worker(alerts_db):
            assert poll(lambda: statuses(alerts_db) == ["sent"])
        elapsed = time.monotonic() - started
    assert http.answers == [500, 500, 503, 200]
    assert {r.headers["Idempotency-Key"] for r in http.requests} == keys(alerts_db)
    assert [r.headers["X-PgMonitoring-Attempt"] for r in http.requests] == ["1", "2", "3", "4"]
    assert len({r.body for r in http.requests}) == 1, "every attempt sends the same bytes"
    # base 0.05 s doubling, of which half is jitter: at least 0.025 + 0.05 + 0.1 s
    assert elapsed >= 0.175
    (row,) = query(alerts_db, "SELECT attempts, last_error FROM monitoring.notifications")
    assert row["attempts"] == 4
    assert "HTTP 503" in row["last_error"], "the last failure stays on record"


def test_a_receiver_that_never_recovers_ends_in_dead_letters(alerts_db: str) -> None:
    with http_receiver(status=500) as http:
        add_webhook(alerts_db, f"{http.url}/hook", secret=None)
        capture(alerts_db)
        with running_worker(alerts_db, options(max_attempts=3)):
            assert poll(lambda: statuses(alerts_db) == ["dead"])
            assert http.answers == [500, 500, 500]
            (dead,) = outbox(alerts_db)
            (row,) = query(alerts_db, "SELECT last_error FROM monitoring.notifications")
            assert row["last_error"].startswith(f"HTTP 500 from {http.url}")

            listing = CliRunner().invoke(main, ["alerts", "--dsn", alerts_db])
            assert listing.exit_code == 0, listing.output
            assert "dead: 1" in listing.output
            assert "HTTP 500" in listing.output

            http.status = 200
            retried = CliRunner().invoke(
                main, ["alerts", "retry", str(dead["id"]), "--dsn", alerts_db]
            )
            assert retried.exit_code == 0, retried.output
            assert poll(lambda: statuses(alerts_db) == ["sent"]), "NOTIFY wakes the worker"
    assert http.answers == [500, 500, 500, 200]


def test_a_refused_request_is_dead_at_once(alerts_db: str) -> None:
    with http_receiver(status=404) as http:
        add_webhook(alerts_db, f"{http.url}/gone")
        capture(alerts_db)
        with Worker(alerts_db, options()) as worker:
            (outcome,) = worker.deliver_once()
    assert outcome.status == "dead"
    assert http.answers == [404], "a 4xx is the receiver's answer to the request itself"


def test_alerts_wait_in_the_outbox_for_a_worker(alerts_db: str) -> None:
    with http_receiver(secret=SECRET) as http:
        add_webhook(alerts_db, f"{http.url}/hook")
        for n in range(3):
            capture(alerts_db, f"issue {n}", fingerprint=[f"issue-{n}"])
        time.sleep(0.3)
        assert statuses(alerts_db) == ["pending"] * 3, "nobody listens: nothing is lost"
        with running_worker(alerts_db):
            assert poll(lambda: statuses(alerts_db) == ["sent"] * 3)
            capture(alerts_db, "while it runs", fingerprint=["later"])
            assert poll(lambda: statuses(alerts_db) == ["sent"] * 4)
    assert {r.headers["Idempotency-Key"] for r in http.requests} == keys(alerts_db)


def test_secrets_from_the_workers_environment(alerts_db: str) -> None:
    with http_receiver() as http:
        query(
            alerts_db,
            """SELECT monitoring.add_channel('slack', 'slack',
                      '{"webhook_url_env": "TEST_SLACK_WEBHOOK_URL"}')""",
        )
        capture(alerts_db)
        with Worker(alerts_db, options(), environ={}) as worker:
            (outcome,) = worker.deliver_once()
        assert outcome.status == "failed"
        assert outcome.error is not None
        assert "TEST_SLACK_WEBHOOK_URL" in outcome.error
        time.sleep(0.1)
        environ = {"TEST_SLACK_WEBHOOK_URL": f"{http.url}/slack"}
        with Worker(alerts_db, options(), environ=environ) as worker:
            (outcome,) = worker.deliver_once()
        assert outcome.status == "sent"
    assert len(http.received("/slack")) == 1


def test_a_typo_in_an_environment_variable_is_refused_as_add_channel_refuses_it(
    alerts_db: str,
) -> None:
    """ "ture" once read as False and turned STARTTLS off: the worker now checks a FIELD_env
    value with the channel rule SQL holds, and a secret's bad value is not quoted."""
    with smtp_server() as (smtp_port, mailbox):
        query(
            alerts_db,
            "SELECT monitoring.add_channel('mail', 'email', %s::jsonb)",
            (
                f'{{"smtp_host": "127.0.0.1", "smtp_port": {smtp_port}, '
                '"from_email": "alerts@example.com", "to_emails": "oncall@example.com", '
                '"starttls_env": "TEST_STARTTLS"}',
            ),
        )
        capture(alerts_db)
        with Worker(alerts_db, options(), environ={"TEST_STARTTLS": "ture"}) as worker:
            (outcome,) = worker.deliver_once()
        assert outcome.status == "failed"
        assert outcome.error is not None
        assert "environment variable TEST_STARTTLS" in outcome.error
        assert "true or false" in outcome.error
        assert mailbox.messages == []
    query(
        alerts_db,
        """SELECT monitoring.add_channel('slack', 'slack',
                  '{"webhook_url_env": "TEST_SLACK_WEBHOOK_URL"}')""",
    )
    environ = {"TEST_SLACK_WEBHOOK_URL": "not-a-url-but-a-s3cret"}
    with Worker(alerts_db, options(), environ=environ) as worker:
        outcomes = worker.deliver_once(ids=[queued_test_notification(alerts_db, "slack")])
    assert [o.status for o in outcomes] == ["failed"]
    assert "http:// or https:// URL" in (outcomes[0].error or "")
    assert "s3cret" not in (outcomes[0].error or "")


def queued_test_notification(dsn: str, channel: str) -> int:
    return int(query(dsn, "SELECT monitoring.test_channel(%s) AS id", (channel,))[0]["id"])


def fold_in_a_running_worker(dsn: str) -> None:
    with running_worker(dsn, options(fold_every=0.2)):
        assert poll(lambda: statuses(dsn) == ["sent", "sent"])


def fold_in_worker_once(dsn: str) -> None:
    once = CliRunner().invoke(main, ["worker", "--once", "--dsn", dsn])
    assert once.exit_code == 0, once.output
    assert "2 notification(s) handled." in once.output


@pytest.mark.parametrize(
    "deliver", [fold_in_a_running_worker, fold_in_worker_once], ids=["running", "once"]
)
def test_threshold_alerts_go_out_at_the_workers_fold(
    alerts_db: str, deliver: Callable[[str], None]
) -> None:
    with http_receiver() as http:
        add_webhook(alerts_db, f"{http.url}/hook")
        query(alerts_db, "SELECT monitoring.set_occurrence_alerts('busy', '{1,5}', 0)")
        for _ in range(5):
            capture(alerts_db, fingerprint=["busy"])
        assert outbox(alerts_db) == [], "counted, not folded yet"
        deliver(alerts_db)
    assert statuses(alerts_db) == ["sent", "sent"]
    # sender threads deliver side by side: arrival order is not part of the contract
    assert sorted(r.json()["issue"]["threshold"] for r in http.requests) == [1, 5]


def worker_log(dsn: str, *args: str) -> str:
    """What `pg-monitoring worker --once ARGS` logs while it delivers one alert."""
    with http_receiver() as http:
        add_webhook(dsn, f"{http.url}/hook")
        capture(dsn, fingerprint=[f"log {args}"])
        once = subprocess.run(
            [PG_MONITORING, "worker", "--once", "--dsn", dsn, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert once.returncode == 0, once.stderr
    assert "1 notification(s) handled." in once.stdout
    return once.stderr


def test_verbose_logs_the_workers_steps_and_not_the_http_librarys(alerts_db: str) -> None:
    verbose = worker_log(alerts_db, "-v")
    assert "fold_counts" in verbose, "-v logs every fold"
    assert "sent notification" in verbose
    assert not [line for line in verbose.splitlines() if " DEBUG httpcore" in line]
    assert "httpcore" in worker_log(alerts_db, "-vv"), "-vv: the HTTP library's lines too"


def test_the_workers_errors_say_its_options_not_sqls_arguments(
    alerts_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The stored functions check the worker's options too; what they say names the option
    (WorkerOptions' field, the CLI's flag), never the function's p_ argument."""
    with http_receiver(status=500) as http:
        add_webhook(alerts_db, f"{http.url}/hook")
        capture(alerts_db)
        refused = options(retry_base=100000.0)
        with caplog.at_level("WARNING", "pg_monitoring.worker"), Worker(alerts_db, refused) as w:
            (outcome,) = w.deliver_once()
    assert outcome.status is None, "the outcome was refused, so the claim runs out"
    logged = [record.getMessage() for record in caplog.records]
    assert any("(retry_base must be from 0 to 86400 and retry_max" in m for m in logged), logged
    assert not [m for m in logged if "p_" in m], logged

    once = subprocess.run(
        [PG_MONITORING, "worker", "--once", "--dsn", alerts_db, "--lease", "1000000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert once.returncode == 1
    assert (
        once.stderr == "Error: --lease must be positive and at most 604800 (a week), not 1000000\n"
    )

    running = start_worker(alerts_db, "--retry-max", "1000000")
    try:
        capture(alerts_db, fingerprint=["retry-max"])
        # claimed: SIGTERM lets the send in flight finish, and its outcome be refused
        assert poll(lambda: statuses(alerts_db)[1:] == ["sending"], seconds=60)
    finally:
        running.send_signal(signal.SIGTERM)
        _, log = running.communicate(timeout=20)
    assert "cannot record an outcome (--retry-base must be from 0 to 86400 and --retry-max" in (
        log.decode()
    ), log.decode()
    assert "p_" not in log.decode()


# The worker as a process: killed in the middle of deliveries, and stopped with SIGTERM.


def start_worker(dsn: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            PG_MONITORING,
            "worker",
            "--dsn",
            dsn,
            "--poll-interval",
            "0.2",
            "--fold-every",
            "0",
            "--maintenance-every",
            "0",
            "--http-timeout",
            "1",
            "--smtp-timeout",
            "1",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


NOTIFICATIONS = 30


def test_a_killed_worker_loses_nothing(alerts_db: str) -> None:
    with http_receiver(delay=0.3, secret=SECRET) as http:
        add_webhook(alerts_db, f"{http.url}/hook")
        for n in range(NOTIFICATIONS):
            capture(alerts_db, f"issue {n}", fingerprint=[f"issue-{n}"])
        first = start_worker(alerts_db, "--lease", "2", "--concurrency", "3")
        try:
            assert http.wait_for(lambda h: h.started >= 5), "the worker delivers"
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        in_flight = statuses(alerts_db).count("sending")
        # The killed worker's claims expire after its 2 s lease; the second one's own lease is
        # long, so a slow, loaded machine can not make it redeliver what it is still sending.
        second = start_worker(alerts_db, "--lease", "30", "--concurrency", "3")
        try:
            assert poll(lambda: statuses(alerts_db) == ["sent"] * NOTIFICATIONS, seconds=60), (
                statuses(alerts_db)
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=20) == 0
        assert http.wait_for(lambda h: h.started == len(h.requests), timeout=10)

    received: dict[str, set[bytes]] = {}
    for request in http.requests:
        assert request.signature_valid
        received.setdefault(request.headers["Idempotency-Key"], set()).add(request.body)
    assert set(received) == keys(alerts_db), "every notification delivered at least once"
    assert all(len(bodies) == 1 for bodies in received.values()), (
        "a duplicate carries the same idempotency key and the same body"
    )
    duplicates = len(http.requests) - len(received)
    assert in_flight > 0, "the kill hit deliveries in flight"
    assert duplicates <= in_flight


def test_sigterm_finishes_the_send_in_flight(alerts_db: str) -> None:
    with http_receiver(delay=1.5) as http:
        add_webhook(alerts_db, f"{http.url}/hook")
        capture(alerts_db)
        process = start_worker(alerts_db, "--http-timeout", "5", "--lease", "10")
        try:
            assert http.wait_for(lambda h: h.started == 1)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
        assert process.stderr is not None
        log = process.stderr.read().decode()
    assert http.answers == [200]
    assert statuses(alerts_db) == ["sent"], "the outcome was recorded before the exit"
    assert "finishing the sends in flight" in log
