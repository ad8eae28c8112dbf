"""Sentry envelopes as serve's Sentry ingest reads them: the body decompressed within bounds,
parsed into items, and the items sorted into the one argument `monitoring.sentry_ingest`
takes (events as they came, transactions, spans and logs as OTLP JSON by
pg_monitoring.sentry.items, client reports, counts of the rest).

Bounds (Sentry's documented limits): a request 20 MiB as sent, its body `max_body` bytes
decompressed (serve's --max-body; decompress.py keeps both, a zip bomb costing the bound),
an event, transaction or span item 1 MiB.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..sentry import items
from . import decompress
from .jsonb import without_nul

MAX_COMPRESSED = 20 * 1024 * 1024
MAX_EVENT = 1024 * 1024
# Items under MAX_EVENT, as Sentry limits them
EVENT_LIKE = frozenset({"event", "transaction", "span"})
# Sentry's data category of an item type, for the counts of drops
CATEGORIES = {
    "event": "error",
    "transaction": "transaction",
    "span": "span",
    "log": "log_item",
    "attachment": "attachment",
    "session": "session",
    "sessions": "session",
    "profile": "profile",
    "check_in": "monitor",
}


class EnvelopeError(Exception):
    """A request refused: `status` to answer; `key` the DSN key of the envelope header if it
    was read before the refusal (a 413 is counted for the project it names)."""

    def __init__(self, status: int, message: str, category: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.key: str | None = None


# The body -------------------------------------------------------------------------------


async def read_body(
    chunks: AsyncIterable[bytes], content_encoding: str | None, max_body: int
) -> bytes:
    """The body decompressed (decompress.read_body): 413 over MAX_COMPRESSED as sent or
    `max_body` decompressed."""
    try:
        return await decompress.read_body(chunks, content_encoding, max_body, MAX_COMPRESSED)
    except decompress.BodyError as error:
        refused = EnvelopeError(error.status, error.message)
        # the envelope header may have arrived before the bound: the key it names counts it
        refused.key = _dsn_key(error.head.split(b"\n", 1)[0])
        raise refused from None


# Envelopes ---------------------------------------------------------------------------------


@dataclass
class Parsed:
    """A request's items sorted for sentry_ingest; `key` from the envelope header's dsn."""

    event_id: str | None = None
    key: str | None = None
    events: list[bytes] = field(default_factory=list)
    transactions: int = 0
    spans: list[tuple[items.Resource, items.Json]] = field(default_factory=list)
    logs: list[tuple[items.Resource, items.Json]] = field(default_factory=list)
    client_reports: list[Any] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)

    def argument(self) -> bytes:
        """sentry_ingest's p_items as JSON. Events go as they came (checked to be JSON
        objects), not parsed and written again."""
        rest: dict[str, Any] = {"transactions": self.transactions}
        if self.spans:
            rest["spans"] = items.spans_message(items.group(self.spans))
        if self.logs:
            rest["logs"] = items.logs_message(items.group(self.logs))
        if self.client_reports:
            rest["client_reports"] = self.client_reports
        if self.skipped:
            rest["skipped"] = dict(self.skipped)
        if self.invalid:
            rest["invalid"] = dict(self.invalid)
        tail = orjson.dumps(rest, default=str)
        return without_nul(b'{"events":[' + b",".join(self.events) + b"]," + tail[1:])


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _dsn_key(header_line: bytes) -> str | None:
    header = _json_object(header_line)
    dsn = header.get("dsn") if header else None
    if not isinstance(dsn, str) or "@" not in dsn:
        return None
    # scheme://<public key>[:<secret>]@host/project
    userinfo = dsn.split("://", 1)[-1].split("@", 1)[0]
    return userinfo.split(":", 1)[0] or None


def parse_envelope(body: bytes) -> Parsed:
    """An envelope's items, sorted; EnvelopeError(400) when it is no envelope, (413) when an
    event-like item is over MAX_EVENT."""
    end = body.find(b"\n")
    header_line = body if end < 0 else body[:end]
    header = _json_object(header_line)
    if header is None:
        raise EnvelopeError(400, "the envelope header is not a JSON object")
    parsed = Parsed(key=_dsn_key(header_line))
    event_id = header.get("event_id")
    parsed.event_id = event_id if isinstance(event_id, str) else None
    position = len(body) if end < 0 else end + 1
    while position < len(body):
        end = body.find(b"\n", position)
        line = body[position:] if end < 0 else body[position:end]
        position = len(body) if end < 0 else end + 1
        if not line.strip():
            continue
        item_header = _json_object(line)
        if item_header is None:
            raise EnvelopeError(400, "an item header is not a JSON object")
        length = item_header.get("length")
        if isinstance(length, int) and not isinstance(length, bool) and length >= 0:
            payload = body[position : position + length]
            if len(payload) < length:
                raise EnvelopeError(400, "an item is shorter than its length")
            position += length
            if body[position : position + 1] == b"\n":
                position += 1
        else:
            end = body.find(b"\n", position)
            payload = body[position:] if end < 0 else body[position:end]
            position = len(body) if end < 0 else end + 1
        _sort(parsed, str(item_header.get("type") or ""), payload)
    return parsed


def parse_store(body: bytes) -> Parsed:
    """The legacy /store/ body: one event as JSON."""
    if len(body) > MAX_EVENT:
        raise EnvelopeError(413, f"the event is larger than {MAX_EVENT} bytes")
    event = _json_object(body)
    if event is None:
        raise EnvelopeError(400, "the body is not a JSON object (a Sentry event)")
    event_id = event.get("event_id")
    return Parsed(event_id=event_id if isinstance(event_id, str) else None, events=[body])


def _sort(parsed: Parsed, kind: str, payload: bytes) -> None:
    if kind in EVENT_LIKE and len(payload) > MAX_EVENT:
        raise EnvelopeError(
            413, f"a {kind} item is larger than {MAX_EVENT} bytes", CATEGORIES[kind]
        )
    if kind not in ("event", "transaction", "span", "log", "client_report"):
        parsed.skipped[kind or "unknown"] += 1
        return
    value = _json_object(payload)
    if value is None:
        parsed.invalid[CATEGORIES.get(kind, kind)] += 1
        return
    try:
        if kind == "event":
            if parsed.event_id is None and isinstance(value.get("event_id"), str):
                parsed.event_id = value["event_id"]
            parsed.events.append(payload)
        elif kind == "transaction":
            parsed.spans.extend(items.transaction_spans(value, "", ""))
            parsed.transactions += 1
        elif kind == "span":
            parsed.spans.extend(items.streamed_spans(value, "", ""))
        elif kind == "log":
            parsed.logs.extend(items.log_records(value, "", ""))
        else:
            for discarded in value.get("discarded_events") or ():
                if isinstance(discarded, dict):
                    parsed.client_reports.append(
                        {
                            "category": discarded.get("category"),
                            "reason": discarded.get("reason"),
                            "quantity": discarded.get("quantity"),
                        }
                    )
    except (AttributeError, TypeError, ValueError):
        parsed.invalid[CATEGORIES.get(kind, kind)] += 1
