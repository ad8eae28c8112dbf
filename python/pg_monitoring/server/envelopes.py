"""Sentry envelopes as serve's Sentry ingest reads them: the body decompressed within bounds,
parsed into items, and the items sorted into the one argument `monitoring.sentry_ingest`
takes (events as they came, transactions, spans and logs as OTLP JSON by
pg_monitoring.sentry.items, client reports, counts of the rest).

Bounds (Sentry's documented limits): a request 20 MiB as sent, its body `max_body` bytes
decompressed (serve's --max-body), an event, transaction or span item 1 MiB. Decompression
asks each step for no more than the room left, so a zip bomb costs the bound, never what it
would inflate to.
"""

from __future__ import annotations

import io
import zlib
from collections import Counter
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..sentry import items
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


# Content-Encoding --------------------------------------------------------------------------


class _Inflater:
    """Decompresses chunks into `out`, refusing (413) output over `limit` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.out = bytearray()
        self._zlib: Any = None
        self._brotli: Any = None
        self._zstd = bytearray()  # zstandard's streaming object has no output bound: see finish
        if encoding == "gzip":
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "br":
            import brotli

            self._brotli = brotli.Decompressor()
        elif encoding not in ("deflate", "zstd"):
            raise EnvelopeError(415, f"Content-Encoding {encoding!r} is not supported")

    def room(self) -> int:
        return self.limit - len(self.out) + 1

    def check(self) -> None:
        if len(self.out) > self.limit:
            raise EnvelopeError(413, f"the body inflates to more than {self.limit} bytes")

    def feed(self, data: bytes) -> None:
        try:
            if self.encoding == "deflate" and self._zlib is None:
                # RFC 9110's deflate is zlib's format; some clients send raw deflate
                raw = data[:1] and (data[0] & 0x0F) != 8
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
            if self._zlib is not None:
                self._feed_zlib(data)
            elif self._brotli is not None:
                self.out += self._brotli.process(data, output_buffer_limit=self.room())
                self.check()
                while not self._brotli.can_accept_more_data():
                    self.out += self._brotli.process(b"", output_buffer_limit=self.room())
                    self.check()
            else:
                self._zstd += data
        except EnvelopeError:
            raise
        except Exception as error:  # zlib.error, brotli.error
            raise EnvelopeError(400, f"the body is not valid {self.encoding}: {error}") from None

    def _feed_zlib(self, data: bytes) -> None:
        while data:
            self.out += self._zlib.decompress(data, self.room())
            self.check()
            data = self._zlib.unconsumed_tail
            if self._zlib.eof:
                data = self._zlib.unused_data + data
                if not data.strip(b"\0"):
                    return
                # a gzip body may hold several members
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def finish(self) -> bytes:
        if self.encoding == "zstd":
            import zstandard

            try:
                reader = zstandard.ZstdDecompressor().stream_reader(
                    io.BytesIO(bytes(self._zstd)), read_across_frames=True
                )
                while chunk := reader.read(min(self.room(), 1 << 20)):
                    self.out += chunk
                    self.check()
            except zstandard.ZstdError as error:
                raise EnvelopeError(400, f"the body is not valid zstd: {error}") from None
        elif self._zlib is not None and not self._zlib.eof:
            raise EnvelopeError(400, f"the {self.encoding} body ends early")
        return bytes(self.out)


async def read_body(
    chunks: AsyncIterable[bytes], content_encoding: str | None, max_body: int
) -> bytes:
    """The body decompressed: 413 over MAX_COMPRESSED as sent or `max_body` decompressed."""
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()] or [
        "identity"
    ]
    if len(encodings) > 1:
        raise EnvelopeError(415, "one Content-Encoding at most")
    encoding = encodings[0]
    received = 0
    if encoding == "identity":
        body = bytearray()
        async for chunk in chunks:
            received += len(chunk)
            if received > min(MAX_COMPRESSED, max_body):
                raise EnvelopeError(413, "the body is larger than the limit")
            body += chunk
        return bytes(body)
    inflater = _Inflater(encoding, max_body)
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > MAX_COMPRESSED:
                raise EnvelopeError(413, f"the request is larger than {MAX_COMPRESSED} bytes")
            inflater.feed(chunk)
        return inflater.finish()
    except EnvelopeError as error:
        # the envelope header may have arrived before the bound: the key it names counts it
        error.key = _dsn_key(bytes(inflater.out[:4096]).split(b"\n", 1)[0])
        raise


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
