"""Sentry envelope items in the shapes our stored functions take.

An error event stays Sentry's JSON (`monitoring.capture_events` reads it as sentry-python 2.x
writes it), with the transport's service and environment where it has none. A transaction
and its spans (or a `span` item's streamed spans) become OTLP spans for
`monitoring.record_spans`, and a `log` item's records OTLP log records for
`monitoring.record_logs`, both in OTLP's JSON mapping as our own span
exporter and log handler send them. No grouping or scrubbing here: the SQL does that.

Used by PostgresTransport and by serve's Sentry ingest (server/envelopes.py), which passes
service "" and environment "": the resource then names neither and
`monitoring.sentry_ingest` gives it the project's.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..logs import otlp_json

Json = dict[str, Any]
# A resource's attributes, hashable: records of one resource go in one group of a request.
Resource = tuple[tuple[str, str], ...]

UNKNOWN_SERVICE = "unknown_service:python"
SCOPE = otlp_json.scope("pg_monitoring.sentry")

# OTLP's SpanKind by the start of a Sentry op (Sentry's span operation conventions).
_KINDS = (
    ("http.server", 2),
    ("websocket.server", 2),
    ("http.client", 3),
    ("db", 3),
    ("cache", 3),
    ("grpc.client", 3),
    ("queue.publish", 4),
    ("queue.submit", 4),
    ("queue.process", 5),
    ("queue.task", 5),
)
# OTLP span flags: whether the parent is in another process is known (0x100), and it is (0x200)
_PARENT_LOCAL = 0x100
_PARENT_REMOTE = 0x300
# Sentry's log levels as OTLP SeverityNumbers (Sentry's logs protocol), for a record that
# lacks sentry.severity_number
_SEVERITIES = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND = dt.timedelta(microseconds=1)


def event_payload(event: Mapping[str, Any], service: str | None, environment: str | None) -> str:
    """The event's JSON for capture_events; `service` and `environment` where it has none
    (a `service` tag counts: the SQL reads it)."""
    defaults: Json = {}
    tags = event.get("tags")
    if service and "service" not in event and not (isinstance(tags, Mapping) and "service" in tags):
        defaults["service"] = service
    if environment and not event.get("environment"):
        defaults["environment"] = environment
    # ensure_ascii, as the tracker: a lone surrogate stays \udXXX, which the SQL sanitises
    return json.dumps({**event, **defaults} if defaults else event, default=str, allow_nan=False)


def transaction_spans(
    event: Mapping[str, Any], service: str | None, environment: str | None
) -> list[tuple[Resource, Json]]:
    """A transaction as OTLP spans, each with its resource: its root (from contexts.trace)
    and its child spans."""
    contexts = event.get("contexts")
    trace = _mapping(contexts.get("trace") if isinstance(contexts, Mapping) else None)
    root = {
        **trace,
        "description": event.get("transaction") or trace.get("description"),
        "start_timestamp": event.get("start_timestamp"),
        "timestamp": event.get("timestamp"),
        "tags": event.get("tags"),
    }
    trace_id = trace.get("trace_id")
    spans = [_span(root, trace_id, root=True)]
    spans.extend(
        _span(span, trace_id, root=False)
        for span in event.get("spans") or ()
        if isinstance(span, Mapping)
    )
    resource = _resource(
        event.get("service") or _mapping(event.get("tags")).get("service") or service,
        event.get("environment") or environment,
        event.get("release"),
        _mapping(event.get("sdk")),
    )
    return [(resource, span) for span in spans]


def streamed_spans(
    payload: Mapping[str, Any], service: str | None, environment: str | None
) -> list[tuple[Resource, Json]]:
    """A `span` item's spans (the SDK's span streaming, `trace_lifecycle="stream"`) as OTLP
    spans, each with its resource."""
    spans = []
    for item in payload.get("items") or ():
        if not isinstance(item, Mapping):
            continue
        values = _values(item)
        span = {
            **item,
            "op": values.get("sentry.op"),
            "description": item.get("name"),
            "timestamp": item.get("end_timestamp"),
            "data": values,
            "tags": None,
        }
        root = bool(item.get("is_segment"))
        spans.append((_resource_of(values, service, environment), _span(span, None, root=root)))
    return spans


def log_records(
    payload: Mapping[str, Any], service: str | None, environment: str | None
) -> list[tuple[Resource, Json]]:
    """A `log` item's records as OTLP log records, each with its resource."""
    records = []
    observed = str(time.time_ns())
    for item in payload.get("items") or ():
        if not isinstance(item, Mapping):
            continue
        values = _values(item)
        severity = values.pop("sentry.severity_number", None)
        values.pop("sentry.severity_text", None)
        level = str(item.get("level") or "")
        record: Json = {
            "timeUnixNano": unix_nanos(item.get("timestamp")),
            "observedTimeUnixNano": observed,
            "severityNumber": severity
            if isinstance(severity, int) and not isinstance(severity, bool)
            else _SEVERITIES.get(level, 0),
            "severityText": level,
            "body": otlp_json.any_value(item.get("body")),
            # record_logs stores a record once by this id: a batch sent again adds nothing
            "attributes": otlp_json.attributes({"log.record.uid": uuid.uuid4().hex, **values}),
        }
        if item.get("trace_id"):
            record["traceId"] = item["trace_id"]
        if item.get("span_id"):
            record["spanId"] = item["span_id"]
        records.append((_resource_of(values, service, environment), record))
    return records


def spans_request(groups: Mapping[Resource, list[Json]]) -> str:
    """An ExportTraceServiceRequest (JSON mapping): one resourceSpans per resource."""
    return _dumps(spans_message(groups))


def logs_request(groups: Mapping[Resource, list[Json]]) -> str:
    """An ExportLogsServiceRequest (JSON mapping): one resourceLogs per resource."""
    return _dumps(logs_message(groups))


def spans_message(groups: Mapping[Resource, list[Json]]) -> Json:
    """spans_request's request, not yet JSON text."""
    return _request("resourceSpans", "scopeSpans", "spans", groups)


def logs_message(groups: Mapping[Resource, list[Json]]) -> Json:
    """logs_request's request, not yet JSON text."""
    return _request("resourceLogs", "scopeLogs", "logRecords", groups)


def unix_nanos(value: Any) -> str | None:
    """A Sentry timestamp (RFC 3339 text, or seconds since 1970) as OTLP's decimal
    nanoseconds; None when it is neither (the SQL then refuses the span with a reason)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:  # through the decimal text: a float's nanoseconds would be off by hundreds
            return str(int(Decimal(repr(value)) * 1_000_000_000))
        except (InvalidOperation, ValueError):
            return None
    if not isinstance(value, str):
        return None
    try:
        # Python 3.10's fromisoformat takes no "Z"
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)  # SDKs send UTC without an offset
    return str((moment - _EPOCH) // _MICROSECOND * 1000)


def _span(span: Mapping[str, Any], trace_id: Any, *, root: bool) -> Json:
    op = span.get("op")
    attributes = {**_mapping(span.get("data")), **_mapping(span.get("tags"))}
    if op:
        attributes["sentry.op"] = op
    if span.get("origin"):
        attributes["sentry.origin"] = span["origin"]
    parent = span.get("parent_span_id") or ""
    return {
        "traceId": span.get("trace_id") or trace_id,
        "spanId": span.get("span_id"),
        "parentSpanId": parent,
        "name": str(span.get("description") or op or "<unlabeled span>"),
        "kind": next((kind for prefix, kind in _KINDS if str(op or "").startswith(prefix)), 1),
        "startTimeUnixNano": unix_nanos(span.get("start_timestamp")),
        "endTimeUnixNano": unix_nanos(span.get("timestamp")),
        "attributes": otlp_json.attributes(attributes),
        "status": _status(span.get("status")),
        # a transaction's parent, when it has one, is in the process that called this one
        "flags": _PARENT_REMOTE if root and parent else _PARENT_LOCAL,
    }


def _status(status: Any) -> Json:
    """Sentry's span status as OTLP's: "ok" is OK, any other an error named by it."""
    if not status:
        return {}
    if status == "ok":
        return {"code": 1}
    return {"code": 2, "message": str(status)}


def _resource(service: Any, environment: Any, release: Any, sdk: Mapping[str, Any]) -> Resource:
    attributes = {
        # "": the receiver's to fill (serve: the Sentry project's service)
        "service.name": UNKNOWN_SERVICE if service is None else service,
        "deployment.environment.name": environment,
        "service.version": release,
        "telemetry.sdk.name": sdk.get("name"),
        "telemetry.sdk.version": sdk.get("version"),
    }
    return tuple((key, str(value)) for key, value in attributes.items() if value)


def _values(item: Mapping[str, Any]) -> Json:
    """A log record's or streamed span's attributes: Sentry's {"value": v, "type": t} as v
    (OTLP's AnyValue says the type)."""
    return {
        str(key): value.get("value") if isinstance(value, Mapping) else value
        for key, value in _mapping(item.get("attributes")).items()
    }


def _resource_of(
    values: Mapping[str, Any], service: str | None, environment: str | None
) -> Resource:
    """The resource of a log record or streamed span, from its sentry.* attributes."""
    return _resource(
        service,
        values.get("sentry.environment") or environment,
        values.get("sentry.release"),
        {"name": values.get("sentry.sdk.name"), "version": values.get("sentry.sdk.version")},
    )


def _request(outer: str, scoped: str, inner: str, groups: Mapping[Resource, list[Json]]) -> Json:
    return {
        outer: [
            {**otlp_json.resource(dict(resource)), scoped: [{"scope": SCOPE, inner: rows}]}
            for resource, rows in groups.items()
        ]
    }


def _dumps(request: Json) -> str:
    return json.dumps(request, default=str, allow_nan=False)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def group(pairs: Iterable[tuple[Resource, Json]]) -> dict[Resource, list[Json]]:
    """Rows (spans, log records) of the same resource together, in order."""
    groups: dict[Resource, list[Json]] = {}
    for resource, row in pairs:
        groups.setdefault(resource, []).append(row)
    return groups
