"""Alerts (monitoring_admin): channels, rules and the outbox's worker functions with bad input.

A bad setting, scope, count or time is refused naming it (22023, 22004 for a missing one);
an unknown channel, rule or notification is no_data_found (P0002). What is stored stays
readable and keeps maintenance (the fold that evaluates threshold rules) running: after the
family, events are captured and folded under every rule the cases left behind.
"""

from __future__ import annotations

from typing import Any

import pytest

from .suite import (
    MB,
    Case,
    Database,
    assert_healthy,
    call,
    js,
    noise,
    ok,
    refused,
    select,
    table,
    text_of,
)

NOT_FOUND = ("P0002",)
HOOK = "bad-input-hook"


@pytest.fixture(scope="module", autouse=True)
def channel(db: Database) -> None:
    db.admin.execute(
        "SELECT monitoring.add_channel(%s, 'webhook', p_secrets => %s)",
        (HOOK, js({"url": "http://127.0.0.1:9/hook"})),
    )


ADD = select("add_channel", "::text", "::text", "p_config::jsonb", "p_secrets::jsonb")


def webhook(config: Any = None, secrets: Any = None, name: str = "bad-input") -> tuple[Any, ...]:
    """add_channel's arguments for a webhook channel: its config and secrets as JSON."""
    return (name, "webhook", js(config or {}), js(secrets or {"url": "https://example.com/h"}))


def email(**config: Any) -> tuple[Any, ...]:
    settings = {
        "smtp_host": "smtp.example.com",
        "from_email": "a@example.com",
        "to_emails": ["b@example.com"],
        **config,
    }
    return ("bad-input-mail", "email", js(settings), "{}")


CHANNELS = [
    refused("channel-null-name", ADD, webhook(name=None), states=("22004",), names="p_name"),
    refused("channel-blank-name", ADD, webhook(name=" \t "), states=("22004",), names="p_name"),
    refused("channel-10k-noise-name", ADD, lambda: webhook(name=noise(10_000)), names="p_name"),
    ok("channel-name-injection", ADD, webhook(name="x'); DROP TABLE monitoring.alert_rules; --")),
    ok("channel-name-200-emoji", ADD, webhook(name="\U0001f600" * 200)),
    refused("channel-kind-null", ADD, (HOOK, None, "{}", "{}"), names="p_kind"),
    refused("channel-kind-unknown", ADD, (HOOK, "sms", "{}", "{}"), names="p_kind"),
    refused("channel-kind-upper-case", ADD, (HOOK, "SLACK", "{}", "{}"), names="p_kind"),
    refused("channel-config-array", ADD, ("x", "webhook", "[]", "{}"), names="p_config"),
    refused("channel-secrets-string", ADD, ("x", "webhook", "{}", '"s"'), names="p_secrets"),
    refused(
        "channel-config-and-secrets-json-null",
        ADD,
        ("x", "webhook", "null", "null"),
        names="p_secrets.url",
    ),
    refused("channel-unknown-setting", ADD, webhook({"colour": "red"}), names="p_config.colour"),
    refused(
        "channel-100k-unknown-settings",
        ADD,
        lambda: webhook({f"k{i}": i for i in range(100_000)}),
        names="p_config.k",
    ),
    refused(
        "channel-secret-as-setting",
        ADD,
        webhook({"url": "https://x.example"}),
        names="p_config.url",
    ),
    refused(
        "channel-bad-environment-variable-name",
        ADD,
        webhook({"url_env": "1 BAD; rm -rf /"}, {"secret": "s"}),
        names="p_config.url_env",
    ),
    refused(
        "channel-value-and-environment-variable",
        ADD,
        webhook({"url_env": "HOOK_URL"}),
        names="given twice",
    ),
    refused(
        "channel-url-ftp", ADD, webhook(secrets={"url": "ftp://x.example/h"}), names="p_secrets.url"
    ),
    refused(
        "channel-url-javascript",
        ADD,
        webhook(secrets={"url": "javascript:alert(1)"}),
        names="p_secrets.url",
    ),
    refused(
        "channel-url-header-injection",
        ADD,
        webhook(secrets={"url": "https://x.example/\r\nHost: evil"}),
        names="p_secrets.url",
    ),
    refused(
        "channel-url-10mb",
        ADD,
        lambda: webhook(secrets={"url": "https://x.example/" + text_of(10 * MB)}),
        names="p_secrets.url",
        timeout=5,
    ),
    refused(
        "channel-secret-not-a-string",
        ADD,
        webhook(secrets={"url": ["https://x"]}),
        names="p_secrets.url",
    ),
    refused(
        "channel-slack-without-its-webhook", ADD, ("x", "slack", "{}", "{}"), names="webhook_url"
    ),
    refused("channel-port-0", ADD, email(smtp_port=0), names="p_config.smtp_port"),
    refused("channel-port-65536", ADD, email(smtp_port=65536), names="p_config.smtp_port"),
    refused("channel-port-1e308", ADD, email(smtp_port=1e308), names="p_config.smtp_port"),
    refused("channel-port-fraction", ADD, email(smtp_port=587.5), names="p_config.smtp_port"),
    refused(
        "channel-port-12-digits", ADD, email(smtp_port="999999999999"), names="p_config.smtp_port"
    ),
    ok("channel-port-as-text", ADD, email(smtp_port=" 587 ")),
    refused("channel-emails-empty", ADD, email(to_emails=[]), names="p_config.to_emails"),
    refused(
        "channel-emails-with-a-blank",
        ADD,
        email(to_emails="a@x.example, ,b@x.example"),
        names="p_config.to_emails",
    ),
    refused("channel-emails-of-numbers", ADD, email(to_emails=[1]), names="p_config.to_emails"),
    refused(
        "channel-email-header-injection",
        ADD,
        email(from_email="a@x.example\r\nBcc: all@x.example"),
        names="p_config.from_email",
    ),
    refused("channel-starttls-maybe", ADD, email(starttls="maybe"), names="p_config.starttls"),
    refused("channel-host-multiline", ADD, email(smtp_host="a\nb"), names="p_config.smtp_host"),
    refused(
        "channel-services-empty",
        select("add_channel", "::text", "::text", "p_secrets::jsonb", "p_services::text[]"),
        (HOOK, "webhook", js({"url": "https://x.example"}), []),
        names="p_services",
    ),
    refused(
        "channel-min-level-bogus",
        select("add_channel", "::text", "::text", "p_secrets::jsonb", "p_min_level::text"),
        (HOOK, "webhook", js({"url": "https://x.example"}), "loud"),
        names="p_min_level",
    ),
    ok(
        "channel-100k-services",
        select("add_channel", "::text", "::text", "p_secrets::jsonb", "p_services::text[]"),
        lambda: (
            "bad-input-services",
            "webhook",
            js({"url": "https://x.example"}),
            [f"s{i}" for i in range(100_000)],
        ),
    ),
    ok(
        "channel-null-flags",
        select(
            "add_channel",
            "::text",
            "::text",
            "p_secrets::jsonb",
            "p_enabled::boolean",
            "p_default_rules::boolean",
            "p_replace::boolean",
        ),
        ("bad-input-flags", "webhook", js({"url": "https://x.example"}), None, None, None),
    ),
    refused(
        "remove-channel-null",
        select("remove_channel", "::text"),
        (None,),
        states=NOT_FOUND,
        names="channel",
    ),
    refused(
        "remove-channel-10mb",
        select("remove_channel", "::text"),
        lambda: (text_of(10 * MB),),
        states=NOT_FOUND,
        names="channel",
        timeout=5,
    ),
    refused(
        "enable-channel-null",
        select("set_channel_enabled", "::text", "::boolean"),
        (HOOK, None),
        states=("22004",),
        names="p_enabled",
    ),
    refused(
        "enable-channel-unknown",
        select("set_channel_enabled", "::text", "::boolean"),
        ("%", True),
        states=NOT_FOUND,
        names="channel",
    ),
    refused(
        "test-channel-null",
        select("test_channel", "::text"),
        (None,),
        states=NOT_FOUND,
        names="channel",
    ),
    ok("test-channel-name-with-blanks", select("test_channel", "::text"), (f"  {HOOK}  ",)),
]

RULE = select(
    "add_alert_rule",
    "::text",
    "p_threshold::bigint",
    "p_window::interval",
    "p_action_interval::interval",
)
OCCURRENCES = (
    "SELECT * FROM monitoring.add_alert_rule('occurrences',"
    " p_occurrences => %s::bigint[], p_repeat_every => %s::bigint)"
)
SCOPED = select(
    "add_alert_rule",
    "::text",
    "p_occurrences::bigint[]",
    "p_service::text",
    "p_environment::text",
    "p_fingerprint::text",
)
SET_OCCURRENCES = select("set_occurrence_alerts", "::text", "::bigint[]", "p_channel::text")
RULES = [
    refused("rule-condition-null", RULE, (None, None, None, None), names="p_condition"),
    refused(
        "rule-condition-10mb",
        RULE,
        lambda: (text_of(10 * MB), None, None, None),
        names="p_condition",
        timeout=5,
    ),
    refused(
        "rule-channel-unknown",
        select("add_alert_rule", "::text", "p_channel::text"),
        ("new_issue", "no such channel"),
        states=NOT_FOUND,
        names="channel",
    ),
    refused(
        "rule-threshold-on-new-issue", RULE, ("new_issue", 5, "1 hour", None), names="p_threshold"
    ),
    refused(
        "rule-frequency-without-threshold",
        RULE,
        ("event_frequency", None, "1 hour", None),
        names="p_threshold",
    ),
    refused(
        "rule-frequency-negative-threshold",
        RULE,
        ("event_frequency", -1, "1 hour", None),
        names="p_threshold",
    ),
    refused(
        "rule-frequency-largest-threshold",
        RULE,
        ("event_frequency", 2**63 - 1, "1 hour", None),
        names="p_threshold",
    ),
    refused("rule-frequency-zero-window", RULE, ("user_frequency", 5, "0", None), names="p_window"),
    refused(
        "rule-frequency-negative-window",
        RULE,
        ("user_frequency", 5, "-1 hour", None),
        names="p_window",
    ),
    refused(
        "rule-frequency-window-10000-years",
        RULE,
        ("event_frequency", 5, "10000 years", None),
        names="p_window",
    ),
    refused(
        "rule-window-not-an-interval-is-refused-by-postgresql",
        RULE,
        ("event_frequency", 5, "soon", None),
        states=("22007",),
    ),
    refused(
        "rule-negative-action-interval",
        RULE,
        ("regression", None, None, "-1 second"),
        names="p_action_interval",
    ),
    refused(
        "rule-action-interval-178-million-years",
        RULE,
        ("regression", None, None, "178000000 years"),
        names="p_action_interval",
    ),
    ok("rule-zero-action-interval", RULE, ("escalating", None, None, "0")),
    refused("rule-occurrences-empty", OCCURRENCES, ([], None), names="p_occurrences"),
    refused("rule-occurrences-null", OCCURRENCES, (None, None), names="p_occurrences"),
    refused("rule-occurrences-null-element", OCCURRENCES, ([1, None], None), names="p_occurrences"),
    refused("rule-occurrences-zero", OCCURRENCES, ([0, 10], None), names="p_occurrences"),
    refused(
        "rule-occurrences-100k-and-a-zero",
        OCCURRENCES,
        lambda: ([*range(1, 100_001), 0], None),
        names="p_occurrences",
    ),
    refused("rule-repeat-every-negative", OCCURRENCES, ([1], -1), names="p_repeat_every"),
    ok("rule-occurrences-largest-count", OCCURRENCES, ([2**63 - 1], 2**63 - 1)),
    ok("rule-occurrences-duplicates-and-disorder", OCCURRENCES, ([100, 1, 100, 10], None)),
    refused(
        "rule-occurrences-on-a-regression-rule",
        select("add_alert_rule", "::text", "p_occurrences::bigint[]"),
        ("regression", [1]),
        names="p_occurrences",
    ),
    refused(
        "rule-scope-10k-noise",
        SCOPED,
        lambda: ("occurrences", [1], noise(10_000), noise(10_000), noise(10_000)),
        names="p_service",
    ),
    refused(
        "rule-scope-empty-fingerprint",
        SCOPED,
        ("occurrences", [1], None, None, ""),
        names="p_fingerprint",
    ),
    ok("rule-scope-200-emoji", SCOPED, ("occurrences", [1], *["\U0001f600" * 200] * 3)),
    ok(
        "rule-scope-injection",
        SCOPED,
        ("occurrences", [1], "x'; --", "%", "'); DROP TABLE monitoring.alert_rules; --"),
    ),
    refused(
        "occurrence-alerts-empty-fingerprint",
        SET_OCCURRENCES,
        ("", [1], None),
        names="p_fingerprint",
    ),
    refused(
        "occurrence-alerts-10k-fingerprint",
        SET_OCCURRENCES,
        lambda: (noise(10_000), [1], None),
        names="p_fingerprint",
    ),
    refused(
        "occurrence-alerts-null-counts", SET_OCCURRENCES, ("fp", None, None), names="p_occurrences"
    ),
    refused(
        "occurrence-alerts-unknown-channel",
        SET_OCCURRENCES,
        ("fp", [1], "nope"),
        states=NOT_FOUND,
        names="channel",
    ),
    refused(
        "remove-rule-null",
        select("remove_alert_rule", "::bigint"),
        (None,),
        states=NOT_FOUND,
        names="rule",
    ),
    refused(
        "remove-rule-unknown",
        select("remove_alert_rule", "::bigint"),
        (-1,),
        states=NOT_FOUND,
        names="rule",
    ),
]

# A notification of the test channel, claimed in the statement that fails or completes it.
CLAIMED = (
    "FROM monitoring.claim_notifications(1, 60, p_ids => ARRAY[monitoring.test_channel('"
    + HOOK
    + "')]) AS c"
)
CLAIM = select(
    "claim_notifications", "::integer", "::double precision", "::text", "p_max_attempts::integer"
)
# the same with a due notification of its own to claim
CLAIM_DUE = CLAIM.replace(
    "p_max_attempts", "p_ids => ARRAY[monitoring.test_channel('" + HOOK + "')], p_max_attempts"
)
FAIL = (
    "SELECT monitoring.fail_notification(c.id, c.claim_token, 'x', p_retry_after_seconds => %s,"
    " p_retry_base_seconds => %s, p_retry_max_seconds => %s) " + CLAIMED
)
OUTBOX = [
    refused("claim-limit-null", CLAIM, (None, 60, None, None), names="p_limit"),
    refused("claim-limit-zero", CLAIM, (0, 60, None, None), names="p_limit"),
    refused("claim-lease-null", CLAIM, (1, None, None, None), names="p_lease_seconds"),
    refused("claim-lease-negative", CLAIM, (1, -1, None, None), names="p_lease_seconds"),
    refused(
        "claim-lease-nan",
        CLAIM_DUE,
        (1, float("nan"), None, None),
        names="p_lease_seconds",
    ),
    refused(
        "claim-lease-infinity",
        CLAIM_DUE,
        (1, float("inf"), None, None),
        names="p_lease_seconds",
    ),
    refused("claim-lease-1e12", CLAIM_DUE, (1, 1e12, None, None), names="p_lease_seconds"),
    refused("claim-max-attempts-zero", CLAIM, (1, 60, None, 0), names="p_max_attempts"),
    refused(
        "claim-worker-10mb",
        CLAIM,
        lambda: (1, 60, text_of(10 * MB), None),
        names="p_worker",
        timeout=5,
    ),
    ok(
        "claim-ids-with-nulls",
        select("claim_notifications", "p_ids::bigint[]"),
        ([None, -1, None],),
        returns=[],
    ),
    ok(
        "complete-null",
        select("complete_notification", "::bigint", "::uuid"),
        (None, None),
        returns=[(False,)],
    ),
    refused(
        "complete-bad-token-is-refused-by-postgresql",
        select("complete_notification", "::bigint", "::uuid"),
        (1, "not-a-uuid"),
        states=("22P02",),
    ),
    ok(
        "fail-unknown-claim",
        select("fail_notification", "::bigint", "::uuid", "::text"),
        (-1, "00000000-0000-0000-0000-000000000000", "x"),
        returns=[(None,)],
    ),
    ok(
        "fail-error-10mb",
        "SELECT length(monitoring.fail_notification(c.id, c.claim_token, %s)) " + CLAIMED,
        lambda: (text_of(10 * MB),),
        returns=[(6,)],
        timeout=5,
    ),
    ok("fail-retry-after-nan", FAIL, (float("nan"), None, None), returns=[("failed",)]),
    ok("fail-retry-after-infinity", FAIL, (float("inf"), None, None), returns=[("failed",)]),
    refused(
        "fail-base-minus-infinity", FAIL, (None, float("-inf"), None), names="p_retry_base_seconds"
    ),
    refused("fail-base-and-cap-1e308", FAIL, (None, 1e308, 1e308), names="p_retry_base_seconds"),
    refused("fail-cap-nan", FAIL, (None, None, float("nan")), names="p_retry_max_seconds"),
    ok(
        "fail-max-attempts-negative",
        "SELECT monitoring.fail_notification(c.id, c.claim_token, NULL, p_max_attempts => -1) "
        + CLAIMED,
        returns=[("dead",)],
    ),
    refused(
        "retry-null",
        select("retry_notification", "::bigint"),
        (None,),
        states=NOT_FOUND,
        names="notification",
    ),
    refused(
        "retry-pending",
        "SELECT monitoring.retry_notification(monitoring.test_channel(%s))",
        (HOOK,),
        names="pending",
    ),
    ok(
        "next-notification-at",
        "SELECT monitoring.next_notification_at() IS NOT NULL",
        returns=[(True,)],
    ),
]


@table(CHANNELS + RULES + OUTBOX)
def test_alerts(db: Database, case: Case) -> None:
    call(db.admin, case)


def test_after_alerts(db: Database) -> None:
    """Events of a new issue, and of more, folded under every rule left behind."""
    for message in ("alert me", "alert me", "alert me too"):
        db.writer.execute("SELECT monitoring.capture_message(%s, 'fatal')", (message,))
    assert_healthy(db)
