"""PostgresTransport: the real sentry-sdk's envelopes stored in PostgreSQL.

    sentry_sdk.init(transport=PostgresTransport(pool, service="checkout"))

`capture_envelope` runs on the thread that captured; it only queues the envelope (at most
`queue_size`, 100 as the SDK's HTTP transport) and returns. A daemon thread (background.py's
ThreadBatcher, as the error tracker's) takes up to `batch_size` envelopes at once and stores
their items with one call per kind: error events through `monitoring.capture_events`,
transactions (and `span` items, when the SDK streams spans) as spans through
`monitoring.record_spans`, `log` items through `monitoring.record_logs`. Other item types
(sessions, client reports, attachments, check-ins, profiles...) are counted in `received`,
not stored.

Nothing is lost silently: what is dropped goes to `record_lost_event` with Sentry's reason
and data category, and is counted in `lost` as the SDK's client reports count it. A full
queue drops the envelope (`queue_overflow`); an item the database refuses is `send_error`;
while the database is unreachable the connector's circuit breaker refuses at once, the
envelopes wait at the head of the queue and are sent again after its backoff, and what is
still unsent when the SDK kills the transport (at `sentry_sdk.get_client().close()` or exit,
after its flush) is `network_error`. Sent again, nothing is stored twice: the SQL keeps an
event once by its id, a span by its ids and start, a log record by its `log.record.uid`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from sentry_sdk.consts import DEFAULT_QUEUE_SIZE
from sentry_sdk.envelope import Envelope, Item
from sentry_sdk.integrations.logging import ignore_logger
from sentry_sdk.transport import Transport

from .._db.calls import Call
from .._db.connection import Connector, Source
from .._db.warnings import QuietWarnings
from ..errors import UnavailableError
from ..logs.handler import record_logs_call
from ..monitoring.background import ThreadBatcher
from ..monitoring.tracker_base import BATCH_TIMEOUT, capture_batch_call, capture_call
from ..traces.calls import record_spans_call
from . import items

# capture_events takes at most this many events per call (one transaction, bounded)
MAX_EVENTS_PER_CALL = 250
# Spans or log records per record_spans / record_logs call: half of the default
# otlp.max_items_per_call, which refuses a larger request whole (an envelope is not split:
# a transaction holds at most the SDK's max_spans, 1,000 by default)
MAX_ROWS_PER_CALL = 5000
DEFAULT_BATCH_SIZE = 100


class Part:
    """One envelope item converted, until it is stored or counted lost."""

    __slots__ = ("item", "kind", "payload")

    def __init__(self, kind: str, item: Item, payload: Any) -> None:
        self.kind = kind  # "event", "spans" or "logs"
        self.item = item
        self.payload = payload


class Pending:
    """A queued envelope; converted by the worker once, so a resend is the same data."""

    __slots__ = ("envelope", "parts")

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.parts: list[Part] | None = None


class PostgresTransport(Transport):
    """A sentry-sdk transport storing into `monitoring.*` (needs monitoring_writer).

    `source`: a psycopg_pool.ConnectionPool, or a DSN (a small pool of its own, opened by
    the worker). `service` goes on events without one and names the resource of spans and
    logs; `environment` goes on those without one (the SDK sets "production" unless
    `sentry_sdk.init(environment=...)` says otherwise). A batch call may take `timeout`
    seconds; it holds no application thread.

    Counters, read with `stats()`: `received` (items the worker took from the queue, by
    envelope item type), `stored` (events, spans and log records stored), `lost` ((data
    category, reason) -> quantity: the SDK's own drops, such as dedupe's, and ours).
    """

    def __init__(
        self,
        source: Source,
        *,
        service: str | None = None,
        environment: str | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: float = BATCH_TIMEOUT,
    ) -> None:
        super().__init__()  # no options: an instance given to init() needs no DSN
        if isinstance(source, psycopg.Connection):
            raise ValueError(
                "PostgresTransport needs a pool or a DSN: its worker thread can not share "
                "the application's connection"
            )
        self.service = service
        self.environment = environment
        self.timeout = timeout
        self._connector = Connector(source, name="sentry transport")
        self._batcher: ThreadBatcher[Pending] = ThreadBatcher(
            self._send,
            max_queue=queue_size,
            batch_size=batch_size,
            retry_delay=self._connector.breaker.wait_time,
            name="pg_monitoring-sentry",
        )
        self.queue_size = queue_size
        self._killed = False
        self._counts = threading.Lock()
        self._warn = QuietWarnings("sentry transport").warn
        self.received: Counter[str] = Counter()
        self.stored: Counter[str] = Counter()
        self.lost: Counter[tuple[str, str]] = Counter()
        # The breaker's warnings, through the logging integration, would be Sentry logs and
        # breadcrumbs queued here about the database that can not take them.
        ignore_logger("pg_monitoring")

    # The SDK's interface ---------------------------------------------------------------

    def capture_envelope(self, envelope: Envelope) -> None:
        if self._batcher.put(Pending(envelope)):
            return
        reason = "internal_sdk_error" if self._killed else "queue_overflow"
        for item in envelope.items:
            self.record_lost_event(reason, item=item)

    def flush(self, timeout: float, callback: Callable[[int, float], Any] | None = None) -> None:
        """Waits up to `timeout` seconds for the queue to be stored; as the SDK's worker,
        tells `callback` how many envelopes are pending should it take over 0.1 s."""
        if timeout <= 0:
            return
        self._connector.breaker.hurry()  # a flush should not sit out a backoff
        first = min(0.1, timeout)
        if self._batcher.flush(first):
            return
        if callback is not None:
            callback(len(self._batcher), timeout)
        self._batcher.flush(timeout - first)

    def kill(self) -> None:
        """Stops at once (the SDK flushed before): what is queued is counted lost; a batch
        in flight is stored or counted once it ends, then a pool made from a DSN closes."""
        if self._killed:
            return
        self._killed = True
        for pending in self._batcher.stop():
            self._lose(self._unsent_items(pending), "network_error")
        # The pool closes once the batch in flight is done with it, and not on the thread
        # that kills: closing waits for the pool's threads (a connect attempt may hang).
        threading.Thread(target=self._close, name="pg_monitoring-sentry", daemon=True).start()

    def _close(self) -> None:
        # A batch in flight at the kill may have put envelopes back just after it
        self._batcher.join()
        for pending in self._batcher.stop():
            self._lose(self._unsent_items(pending), "network_error")
        self._connector.close()

    def record_lost_event(
        self,
        reason: str,
        data_category: str | None = None,
        item: Item | None = None,
        *,
        quantity: int = 1,
    ) -> None:
        """Counts a loss as the SDK's HTTP transport does for its client reports: an item
        gives its category, a transaction its spans too, a batched item its count."""
        if item is not None:
            data_category, quantity = item.data_category, 1
            if data_category == "transaction":
                event = item.get_transaction_event() or {}
                self.record_lost_event(reason, "span", quantity=len(event.get("spans") or ()) + 1)
            elif data_category in ("span", "log_item", "trace_metric"):
                count = item.headers.get("item_count")
                if isinstance(count, int) and count > 0:
                    quantity = count
                if data_category == "log_item":
                    self.record_lost_event(reason, "log_byte", quantity=len(item.get_bytes()))
                elif data_category == "trace_metric":
                    size = len(item.get_bytes())
                    self.record_lost_event(reason, "trace_metric_byte", quantity=size)
            elif data_category == "attachment":
                quantity = len(item.get_bytes()) or 1
        elif data_category is None:
            raise TypeError("data category not provided")
        with self._counts:
            self.lost[data_category, reason] += quantity

    def is_healthy(self) -> bool:
        """False while the queue is full or the database unreachable: the SDK's backpressure
        monitor then samples fewer transactions."""
        return len(self._batcher) < self.queue_size and self._connector.breaker.closed

    def stats(self) -> dict[str, Any]:
        """The counters at this moment, and the envelopes queued or in flight."""
        with self._counts:
            return {
                "received": dict(self.received),
                "stored": dict(self.stored),
                "lost": dict(self.lost),
                "queued": len(self._batcher),
            }

    # The worker ------------------------------------------------------------------------

    def _send(self, batch: list[Pending]) -> list[Pending]:
        """Stores a batch of envelopes; returns those with items left unsent because the
        database was not reached."""
        for pending in batch:
            if pending.parts is None:
                pending.parts = self._convert(pending.envelope)
        parts = [part for pending in batch for part in pending.parts or ()]
        done: set[int] = set()
        for kind, store in (
            ("event", self._store_events),
            ("spans", self._store_spans),
            ("logs", self._store_logs),
        ):
            of_kind = [part for part in parts if part.kind == kind]
            if of_kind:
                done.update(map(id, store(of_kind)))
        for pending in batch:
            pending.parts = [part for part in pending.parts or () if id(part) not in done]
        return [pending for pending in batch if pending.parts]

    def _convert(self, envelope: Envelope) -> list[Part]:
        parts = []
        for item in envelope.items:
            kind = item.type or "unknown"
            with self._counts:
                self.received[kind] += 1
            try:
                if kind == "event":
                    event = _json(item)
                    payload = items.event_payload(event, self.service, self.environment)
                    parts.append(Part("event", item, payload))
                elif kind == "transaction":
                    spans = items.transaction_spans(_json(item), self.service, self.environment)
                    parts.append(Part("spans", item, spans))
                elif kind == "span":
                    spans = items.streamed_spans(_json(item), self.service, self.environment)
                    parts.append(Part("spans", item, spans))
                elif kind == "log":
                    records = items.log_records(_json(item), self.service, self.environment)
                    parts.append(Part("logs", item, records))
            except Exception as error:
                self._refused([item], "internal_sdk_error", f"could not read a {kind}: {error}")
        return parts

    def _store_events(self, parts: list[Part]) -> list[Part]:
        """capture_events per chunk; a chunk refused whole, event by event (one bad event
        must not lose the others). Returns the parts done with."""
        done: list[Part] = []
        for start in range(0, len(parts), MAX_EVENTS_PER_CALL):
            chunk = parts[start : start + MAX_EVENTS_PER_CALL]
            try:
                self._run(capture_batch_call([part.payload for part in chunk]))
            except UnavailableError:
                return done
            except Exception:
                for part in chunk:
                    try:
                        self._run(capture_call(part.payload))
                    except UnavailableError:
                        return done
                    except Exception as error:
                        self._refused([part.item], "send_error", f"capture_event: {error}")
                    else:
                        self._count_stored("event", 1)
                    done.append(part)
            else:
                self._count_stored("event", len(chunk))
                done.extend(chunk)
        return done

    def _store_spans(self, parts: list[Part]) -> list[Part]:
        return self._store_rows(parts, items.spans_request, record_spans_call, "span")

    def _store_logs(self, parts: list[Part]) -> list[Part]:
        return self._store_rows(parts, items.logs_request, record_logs_call, "log")

    def _store_rows(
        self,
        parts: list[Part],
        request: Callable[[dict[items.Resource, list[items.Json]]], str],
        call: Callable[[str], Call],
        kind: str,
    ) -> list[Part]:
        """record_spans or record_logs per chunk of parts; returns the parts done with."""
        done: list[Part] = []
        for chunk in _chunks(parts):
            stored = self._store_otlp(chunk, call(request(_grouped(chunk))), kind)
            if not stored:  # the database unreachable: the rest waits too
                break
            done.extend(stored)
        return done

    def _store_otlp(self, parts: list[Part], call: Call, kind: str) -> list[Part]:
        """One record_spans or record_logs call: the request stored, less what it refused."""
        name = f"record_{kind}s"
        try:
            result = self._run(call)
        except UnavailableError:
            return []
        except Exception as error:
            self._refused([part.item for part in parts], "send_error", f"{name}: {error}")
            return parts
        self._count_stored(kind, result["stored"] + result.get("duplicates", 0))
        if result["rejected"]:
            category = "span" if kind == "span" else "log_item"
            self.record_lost_event("send_error", category, quantity=result["rejected"])
            self._warn("rejected", f"{name} refused {kind}s: {result['error_message']}")
        return parts

    def _run(self, call: Call) -> Any:
        return self._connector.run(call, self.timeout)

    # Counting --------------------------------------------------------------------------

    def _unsent_items(self, pending: Pending) -> list[Item]:
        if pending.parts is None:  # never converted: every item of it
            return list(pending.envelope.items)
        return [part.item for part in pending.parts]

    def _lose(self, lost: Sequence[Item], reason: str) -> None:
        for item in lost:
            self.record_lost_event(reason, item=item)

    def _refused(self, lost: Sequence[Item], reason: str, message: str) -> None:
        self._lose(lost, reason)
        self._warn(reason, f"{message}; {len(lost)} item(s) lost")

    def _count_stored(self, kind: str, count: int) -> None:
        with self._counts:
            self.stored[kind] += count


def _chunks(parts: list[Part]) -> Iterator[list[Part]]:
    """The parts in runs of at most MAX_ROWS_PER_CALL rows (a larger part alone)."""
    chunk: list[Part] = []
    rows = 0
    for part in parts:
        if chunk and rows + len(part.payload) > MAX_ROWS_PER_CALL:
            yield chunk
            chunk, rows = [], 0
        chunk.append(part)
        rows += len(part.payload)
    if chunk:
        yield chunk


def _grouped(parts: list[Part]) -> dict[items.Resource, list[items.Json]]:
    """The parts' spans or log records, per resource."""
    return items.group(pair for part in parts for pair in part.payload)


def _json(item: Item) -> Any:
    """An item's JSON: as the SDK built it, or parsed from its bytes."""
    if item.payload.json is not None:
        return item.payload.json
    return json.loads(item.get_bytes())
