"""Notification channels, as the design document writes them:

    from pg_monitoring.monitoring.notifications import EmailNotifier, SlackNotifier

    tracker.add_notification_channel(SlackNotifier(webhook_url="https://hooks.slack.com/..."))
    tracker.add_notification_channel(
        EmailNotifier(smtp_host="smtp.example.com", smtp_port=587,
                      from_email="alerts@example.com", to_emails=["team@example.com"])
    )

A notifier is configuration only. `add` writes one channel row through
`monitoring.add_channel` (which needs monitoring_admin); `pg-monitoring worker` delivers.
Secrets (webhook URLs, SMTP passwords, routing keys) land in a column only monitoring_admin
reads, or stay out of the database: `env={"webhook_url": "SLACK_WEBHOOK_URL"}` stores the
variable's name and the worker reads it from its own environment.

A channel is known by its `name` (default: its kind): adding one with the name of an existing
channel updates that channel, so an application may register its channels at every start.
A new channel alerts on new issues and on regressions, at most once per issue per 30 minutes,
unless `default_rules=False`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from psycopg.types.json import Jsonb

from .._db.calls import Call, first_value
from ..alerts import queries


class Notifier:
    """What every channel takes: its name, filters (only these services, environments,
    levels from `min_level` up), whether it is enabled, and environment variables to read
    fields from (`env={"field": "VARIABLE"}`, which wins over a value given for the field)."""

    kind: ClassVar[str]

    def __init__(
        self,
        *,
        name: str | None = None,
        services: Iterable[str] | None = None,
        environments: Iterable[str] | None = None,
        min_level: str | None = None,
        enabled: bool = True,
        default_rules: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name or self.kind
        self.services = None if services is None else list(services)
        self.environments = None if environments is None else list(environments)
        self.min_level = min_level
        self.enabled = enabled
        self.default_rules = default_rules
        self.env = dict(env or {})

    def _fields(self) -> dict[str, Any]:
        """The channel's fields (secret ones included), None for the ones not given."""
        raise NotImplementedError

    def fields(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The fields given as values, and the FIELD_env names of the ones read from the
        worker's environment. Which fields are secrets is the channel rule's to say:
        `monitoring.channel_split` sorts them as `monitoring.add_channel` takes them."""
        # a field read from the environment is not also given as a value
        values = {
            field: value
            for field, value in self._fields().items()
            if value is not None and field not in self.env
        }
        return values, {f"{field}_env": variable for field, variable in self.env.items()}

    def call(self, *, replace: bool = True) -> Call:
        """The `monitoring.add_channel` call that registers this channel."""
        values, env = self.fields()
        return Call(
            queries.ADD_CHANNEL_FIELDS,
            (
                self.name,
                self.kind,
                Jsonb(env),
                self.services,
                self.environments,
                self.min_level,
                self.enabled,
                self.default_rules,
                replace,
                self.kind,
                Jsonb(values),
            ),
            first_value,
        )

    def add(self, source: Any, *, replace: bool = True) -> int:
        """Registers the channel through `source` (a DSN, pool, connection or Connector);
        returns its id. With `replace=False` an existing channel of that name is kept."""
        from .._db.connection import Connector

        connector = source if isinstance(source, Connector) else Connector(source)
        try:
            return int(connector.run(self.call(replace=replace)))
        finally:
            if connector is not source:
                connector.close()

    async def add_async(self, source: Any, *, replace: bool = True) -> int:
        """`add` for an AsyncConnectionPool, AsyncConnection or AsyncConnector."""
        from .._db.connection_async import AsyncConnector

        connector = source if isinstance(source, AsyncConnector) else AsyncConnector(source)
        try:
            return int(await connector.run(self.call(replace=replace)))
        finally:
            if connector is not source:
                await connector.close()

    def __repr__(self) -> str:
        # any text may be a secret (URLs, keys, passwords): shown masked, numbers and flags
        shown: dict[str, Any] = {
            field: ("***" if isinstance(value, str) else value)
            for field, value in self._fields().items()
            if value is not None
        }
        if self.env:
            shown["env"] = self.env
        args = ", ".join(f"{key}={value!r}" for key, value in shown.items())
        return f"{type(self).__name__}(name={self.name!r}{', ' if args else ''}{args})"


class EmailNotifier(Notifier):
    """Email over SMTP. TLS is STARTTLS by default, with the server's certificate verified;
    `ssl=True` speaks TLS from the start (port 465), `starttls=False` only for a relay on
    the same host or network."""

    kind = "email"

    def __init__(
        self,
        smtp_host: str | None = None,
        smtp_port: int | None = 587,
        from_email: str | None = None,
        to_emails: Iterable[str] | str | None = None,
        *,
        smtp_user: str | None = None,
        smtp_password: str | None = None,
        starttls: bool = True,
        ssl: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.from_email = from_email
        self.to_emails = [to_emails] if isinstance(to_emails, str) else to_emails
        self.smtp_user = smtp_user
        self.smtp_password = smtp_password
        self.starttls = starttls
        self.ssl = ssl

    def _fields(self) -> dict[str, Any]:
        return {
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port,
            "from_email": self.from_email,
            "to_emails": None if self.to_emails is None else list(self.to_emails),
            "smtp_user": self.smtp_user,
            "smtp_password": self.smtp_password,
            "starttls": self.starttls,
            "ssl": self.ssl,
        }


class SlackNotifier(Notifier):
    """A Slack incoming webhook. Error text is escaped: it can not mention @channel."""

    kind = "slack"

    def __init__(self, webhook_url: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.webhook_url = webhook_url

    def _fields(self) -> dict[str, Any]:
        return {"webhook_url": self.webhook_url}


class WebhookNotifier(Notifier):
    """A JSON POST to `url`, signed with HMAC-SHA256 of `secret` when one is given (header
    X-PgMonitoring-Signature: t=<unix time>,v1=<hex of HMAC("<t>.<body>")>), with header
    Idempotency-Key: the same on every attempt of one notification."""

    kind = "webhook"

    def __init__(self, url: str | None = None, secret: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.url = url
        self.secret = secret

    def _fields(self) -> dict[str, Any]:
        return {"url": self.url, "secret": self.secret}


class PagerDutyNotifier(Notifier):
    """PagerDuty Events API v2: one incident per issue (the dedup key names the issue)."""

    kind = "pagerduty"

    def __init__(
        self, routing_key: str | None = None, *, api_url: str | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.routing_key = routing_key
        self.api_url = api_url

    def _fields(self) -> dict[str, Any]:
        return {"routing_key": self.routing_key, "api_url": self.api_url}


# The environment variables a channel named only by its kind
# (init_error_tracker(notification_channels=[ErrorNotificationChannel.SLACK])) is read from.
ENVIRONMENT = {
    "email": {
        "smtp_host": "PG_MONITORING_SMTP_HOST",
        "smtp_port": "PG_MONITORING_SMTP_PORT",
        "from_email": "PG_MONITORING_EMAIL_FROM",
        "to_emails": "PG_MONITORING_EMAIL_TO",
        "smtp_user": "PG_MONITORING_SMTP_USER",
        "smtp_password": "PG_MONITORING_SMTP_PASSWORD",
    },
    "slack": {"webhook_url": "PG_MONITORING_SLACK_WEBHOOK_URL"},
    "webhook": {"url": "PG_MONITORING_WEBHOOK_URL", "secret": "PG_MONITORING_WEBHOOK_SECRET"},
    # the name the design document's PagerDuty example reads
    "pagerduty": {"routing_key": "PAGERDUTY_ROUTING_KEY"},
}

NOTIFIERS: dict[str, type[Notifier]] = {
    notifier.kind: notifier
    for notifier in (EmailNotifier, SlackNotifier, WebhookNotifier, PagerDutyNotifier)
}


def from_environment(kind: str) -> Notifier:
    """The channel named `kind`, every field read by the worker from ENVIRONMENT[kind]."""
    return NOTIFIERS[kind](env=ENVIRONMENT[kind])


__all__ = [
    "ENVIRONMENT",
    "EmailNotifier",
    "Notifier",
    "PagerDutyNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "from_environment",
]
