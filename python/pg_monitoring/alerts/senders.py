"""Rendering and sending one notification: email, Slack, webhook, PagerDuty.

The database decided that the alert goes out and wrote everything needed into the outbox
row's payload; this module only turns that into a message for the channel's kind and sends
it. A failure raises `DeliveryError`, saying whether a retry can help.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import html
import json
import smtplib
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

import httpx

try:
    USER_AGENT = f"pg-monitoring/{version('pg-monitoring')}"
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    USER_AGENT = "pg-monitoring"
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
SIGNATURE_HEADER = "X-PgMonitoring-Signature"
# Receivers should refuse signatures older than this (replayed requests).
SIGNATURE_TOLERANCE = 300

# HTTP statuses worth retrying: timeouts, conflicts, rate limits, and every 5xx.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


class DeliveryError(Exception):
    """A delivery attempt failed. `permanent`: the receiver refused the request itself and
    retrying cannot help (the notification is dead-lettered at once); `retry_after`: the
    receiver asked for this many seconds of quiet."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Notification:
    """One claimed outbox row, as `monitoring.claim_notifications` returns it."""

    id: int
    claim_token: uuid.UUID
    idempotency_key: uuid.UUID
    attempt: int
    condition: str
    channel_name: str
    channel_kind: str
    config: Mapping[str, Any]
    secrets: Mapping[str, Any]
    payload: Mapping[str, Any]
    created_at: dt.datetime

    def __repr__(self) -> str:  # never the secrets
        return (
            f"Notification(id={self.id}, channel={self.channel_name!r}, "
            f"condition={self.condition!r}, attempt={self.attempt})"
        )


@dataclass(frozen=True)
class Timeouts:
    http: float = 10.0
    smtp: float = 30.0


# Rendering -------------------------------------------------------------------------------


def details(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The payload's facts as (label, text) lines, in reading order, present ones only."""
    rows = [
        ("Issue", f"#{payload['issue_id']}" if "issue_id" in payload else None),
        ("Service", payload.get("service")),
        ("Environment", payload.get("environment")),
        ("Level", payload.get("level")),
        ("Where", payload.get("culprit")),
        ("Events", payload.get("times_seen")),
        ("Users", payload.get("users_seen")),
        ("Threshold", payload.get("threshold")),
        ("Window", f"{payload['window_minutes']} minutes" if "window_minutes" in payload else None),
        ("Reason", payload.get("reason")),
        ("Release", payload.get("release") or payload.get("first_release")),
        ("First seen", payload.get("first_seen")),
        ("Fingerprint", payload.get("fingerprint")),
        ("Assignee", payload.get("assignee")),
    ]
    return [(label, str(value)) for label, value in rows if value is not None]


def summary(payload: Mapping[str, Any]) -> str:
    return str(payload.get("summary") or payload.get("title") or "pg_monitoring alert")


def one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def text_body(notification: Notification) -> str:
    payload = notification.payload
    lines = [summary(payload), ""]
    lines += [f"{label}: {value}" for label, value in details(payload)]
    if "issue_id" in payload:
        lines += ["", f"See it with: pg-monitoring show {payload['issue_id']}"]
    lines += ["", f"Notification {notification.id}, key {notification.idempotency_key}"]
    return "\n".join(lines) + "\n"


def html_body(notification: Notification) -> str:
    """The same as text_body; every value escaped (error text is attacker-controlled)."""
    payload = notification.payload
    rows = "".join(
        f"<tr><th align=left>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in details(payload)
    )
    hint = (
        f"<p>See it with: <code>pg-monitoring show {html.escape(str(payload['issue_id']))}"
        "</code></p>"
        if "issue_id" in payload
        else ""
    )
    return (
        "<!DOCTYPE html><html><body>"
        f"<h3>{html.escape(summary(payload))}</h3><table>{rows}</table>{hint}"
        f"<p><small>Notification {notification.id}, key "
        f"{html.escape(str(notification.idempotency_key))}</small></p>"
        "</body></html>"
    )


def slack_escape(text: str) -> str:
    """Text for Slack mrkdwn that cannot mention anyone or form a link: &, < and > escaped
    (Slack's own rule, which disarms <!channel>, <@U123> and <url|text>), and a word joiner
    after each @ so that "@channel" or "@here" in an error message stays plain text even
    where a workspace links names."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("@", "@\u2060")


def slack_message(notification: Notification) -> dict[str, Any]:
    payload = notification.payload
    head = slack_escape(one_line(summary(payload), 2900))
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{slack_escape(one_line(value, 1900))}"}
        for label, value in details(payload)[:10]
    ]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    return {"text": head, "blocks": blocks}


def webhook_body(notification: Notification) -> bytes:
    """The JSON a webhook receives: the same bytes on every attempt of one notification."""
    payload = dict(notification.payload)
    document = {
        "id": notification.id,
        "idempotency_key": str(notification.idempotency_key),
        "condition": notification.condition,
        "channel": notification.channel_name,
        "created_at": notification.created_at.isoformat(),
        "summary": summary(payload),
        "issue": payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: float = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> bool:
    """For receivers: whether `header` (X-PgMonitoring-Signature) signs `body` with `secret`
    and is at most `tolerance` seconds old."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def pagerduty_event(notification: Notification, routing_key: str) -> dict[str, Any]:
    payload = notification.payload
    if "fingerprint" in payload:
        # one incident per issue: PagerDuty folds repeated triggers of a dedup key into it
        dedup = "pg_monitoring:{service}:{environment}:{fingerprint}".format(**payload)
    else:
        dedup = f"pg_monitoring:{notification.condition}:{notification.channel_name}"
    severity = {"fatal": "critical", "error": "error", "warning": "warning"}.get(
        str(payload.get("level")), "info"
    )
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup[:255],
        "client": "pg_monitoring",
        "payload": {
            "summary": one_line(summary(payload), 1024),
            "source": f"{payload.get('service', 'pg_monitoring')}/"
            f"{payload.get('environment', '-')}",
            "severity": severity,
            "component": payload.get("culprit"),
            "group": payload.get("service"),
            "class": notification.condition,
            "custom_details": dict(details(payload)),
        },
    }


# Sending ---------------------------------------------------------------------------------


def _redacted(url: str) -> str:
    """Scheme and host: webhook URLs carry their secret in the path (Slack's do)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max((when - dt.datetime.now(dt.timezone.utc)).total_seconds(), 0.0)


def post(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]) -> None:
    """POSTs; any 2xx is a delivery. Errors never show the URL past its host."""
    where = _redacted(url)
    try:
        response = client.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
    except httpx.HTTPError as error:
        message = str(error).replace(url, where) or type(error).__name__
        raise DeliveryError(f"{type(error).__name__} posting to {where}: {message}") from None
    if response.is_success:
        return
    code = response.status_code
    raise DeliveryError(
        f"HTTP {code} from {where}: {one_line(response.text, 300)}",
        permanent=400 <= code < 500 and code not in RETRYABLE_4XX,
        retry_after=_retry_after(response),
    )


def send_slack(
    client: httpx.Client, notification: Notification, settings: Mapping[str, Any]
) -> None:
    body = json.dumps(slack_message(notification)).encode()
    post(client, settings["webhook_url"], body, {})


def send_webhook(
    client: httpx.Client, notification: Notification, settings: Mapping[str, Any]
) -> None:
    body = webhook_body(notification)
    headers = {
        "Idempotency-Key": str(notification.idempotency_key),
        "X-PgMonitoring-Event": notification.condition,
        "X-PgMonitoring-Attempt": str(notification.attempt),
    }
    if settings.get("secret"):
        headers[SIGNATURE_HEADER] = sign(settings["secret"], int(time.time()), body)
    post(client, settings["url"], body, headers)


def send_pagerduty(
    client: httpx.Client, notification: Notification, settings: Mapping[str, Any]
) -> None:
    event = pagerduty_event(notification, settings["routing_key"])
    post(client, settings.get("api_url") or PAGERDUTY_URL, json.dumps(event).encode(), {})


def email_message(notification: Notification, settings: Mapping[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = one_line(f"[pg_monitoring] {summary(notification.payload)}", 200)
    message["From"] = settings["from_email"]
    message["To"] = ", ".join(settings["to_emails"])
    message["Date"] = email.utils.formatdate(localtime=False)
    # The same Message-ID on every attempt: mail systems drop the duplicates of a resend.
    message["Message-ID"] = f"<{notification.idempotency_key}@pg-monitoring>"
    message["X-PgMonitoring-Idempotency-Key"] = str(notification.idempotency_key)
    message.set_content(text_body(notification))
    message.add_alternative(html_body(notification), subtype="html")
    return message


def send_email(notification: Notification, settings: Mapping[str, Any], timeout: float) -> None:
    """SMTP with certificate verification whenever TLS is used: STARTTLS (the default;
    `starttls: false` for a local relay without TLS) or TLS from the start (`ssl: true`,
    port 465). A server without STARTTLS is refused, never fallen back from."""
    message = email_message(notification, settings)
    context = ssl.create_default_context()
    host = settings["smtp_host"]
    use_ssl = bool(settings.get("ssl", False))
    port = int(settings.get("smtp_port") or (465 if use_ssl else 587))
    try:
        smtp: smtplib.SMTP
        if use_ssl:
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if not use_ssl and settings.get("starttls", True):
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.get("smtp_user"):
                smtp.login(settings["smtp_user"], settings.get("smtp_password", ""))
            smtp.send_message(message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
        raise DeliveryError(f"SMTP {host}:{port} refused: {error}", permanent=True) from None
    except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as error:
        # wrong credentials, or no STARTTLS: retrying would not change the answer
        raise DeliveryError(f"SMTP {host}:{port}: {error}", permanent=True) from None
    except smtplib.SMTPResponseException as error:
        raise DeliveryError(
            f"SMTP {host}:{port} answered {error.smtp_code}: {error.smtp_error!r}",
            permanent=500 <= error.smtp_code < 600,
        ) from None
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryError(f"SMTP {host}:{port}: {type(error).__name__}: {error}") from None


def send(
    notification: Notification,
    settings: Mapping[str, Any],
    client: httpx.Client,
    timeouts: Timeouts = Timeouts(),
) -> None:
    """Delivers one notification with its channel's `settings` (every FIELD_env read and
    checked by `monitoring.channel_environment`); raises DeliveryError when it did not go
    out."""
    kind = notification.channel_kind
    if kind == "email":
        send_email(notification, settings, timeouts.smtp)
    elif kind == "slack":
        send_slack(client, notification, settings)
    elif kind == "webhook":
        send_webhook(client, notification, settings)
    elif kind == "pagerduty":
        send_pagerduty(client, notification, settings)
    else:
        raise DeliveryError(f"unknown channel kind {kind!r}", permanent=True)
