"""The OTLP JSON mapping of what the OpenTelemetry SDK hands an exporter, as
`monitoring.record_spans` and `monitoring.record_logs` read it.

Written out rather than taken from `opentelemetry-exporter-otlp-proto-common`: that package
encodes to protobuf messages, whose generic JSON form (`MessageToDict`) writes ids in base64
and enums by name, so it would need a protobuf dependency and a pass rewriting every id, for
what is a few dozen lines here. OTLP/JSON: ids lowercase hex, enums as integers, int64 as
decimal strings, attributes as lists of {"key", "value": AnyValue}.

Nothing here needs opentelemetry itself: the log handler uses `attributes` and `resource`
without it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Json = dict[str, Any]

# Python's SpanKind counts from INTERNAL = 0; OTLP's from SPAN_KIND_UNSPECIFIED = 0.
_KIND_OFFSET = 1


def any_value(value: Any) -> Json:
    """An AnyValue. bool before int (a bool is an int); NaN and infinities as the protobuf
    JSON mapping writes them (PostgreSQL's jsonb refuses bare NaN); anything else as its str."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        return {
            "doubleValue": "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
        }
    if isinstance(value, bytes | bytearray):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": attributes(value)}}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def attributes(values: Mapping[str, Any] | None) -> list[Json]:
    """A KeyValue list."""
    return [{"key": str(key), "value": any_value(value)} for key, value in (values or {}).items()]


def resource(values: Mapping[str, Any] | None, schema_url: str = "") -> Json:
    """A Resource: {"attributes": [...]}, with its schema URL when there is one."""
    encoded: Json = {"resource": {"attributes": attributes(values)}}
    if schema_url:
        encoded["schemaUrl"] = schema_url
    return encoded


def scope(name: str, version: str | None = None) -> Json:
    encoded: Json = {"name": name}
    if version:
        encoded["version"] = version
    return encoded


def trace_id(value: int) -> str:
    return format(value, "032x")


def span_id(value: int) -> str:
    return format(value, "016x")


# OTLP's SpanFlags: the W3C trace flags in bits 0-7, then whether the parent's (or a link's)
# context says if it is remote, and whether it is: a span whose parent is remote is where
# this service's part of a trace begins.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


def flags(trace_flags: int, other: Any) -> int:
    """A span's `flags` given its parent's context (a link's: the linked context)."""
    value = int(trace_flags) | _HAS_IS_REMOTE
    if other is not None and other.is_remote:
        value |= _IS_REMOTE
    return value


def span(item: Any) -> Json:
    """A ReadableSpan as an OTLP Span."""
    context = item.context
    encoded: Json = {
        "traceId": trace_id(context.trace_id),
        "spanId": span_id(context.span_id),
        "name": item.name,
        "kind": item.kind.value + _KIND_OFFSET,
        "startTimeUnixNano": str(item.start_time),
        # a span exported unended (it should not be) ends where it started
        "endTimeUnixNano": str(item.end_time if item.end_time is not None else item.start_time),
        "attributes": attributes(item.attributes),
        "flags": flags(context.trace_flags, item.parent),
    }
    if context.trace_state:
        encoded["traceState"] = context.trace_state.to_header()
    if item.parent is not None and item.parent.span_id:
        encoded["parentSpanId"] = span_id(item.parent.span_id)
    status = item.status
    if status is not None and status.status_code.value:
        encoded["status"] = {"code": status.status_code.value}
        if status.description:
            encoded["status"]["message"] = status.description
    if item.events:
        encoded["events"] = [
            {
                "timeUnixNano": str(event.timestamp),
                "name": event.name,
                "attributes": attributes(event.attributes),
            }
            for event in item.events
        ]
    if item.links:
        encoded["links"] = [
            {
                "traceId": trace_id(link.context.trace_id),
                "spanId": span_id(link.context.span_id),
                "attributes": attributes(link.attributes),
                "flags": flags(link.context.trace_flags, link.context),
            }
            for link in item.links
        ]
    for field, count in (
        ("droppedAttributesCount", item.dropped_attributes),
        ("droppedEventsCount", item.dropped_events),
        ("droppedLinksCount", item.dropped_links),
    ):
        if count:
            encoded[field] = count
    return encoded


def spans_request(spans: Iterable[Any]) -> Json:
    """An ExportTraceServiceRequest: the spans grouped by resource, then by scope."""
    by_resource: dict[int, tuple[Any, dict[tuple[str, str | None], list[Json]]]] = {}
    for item in spans:
        res = item.resource
        _res, scopes = by_resource.setdefault(id(res), (res, {}))
        library = item.instrumentation_scope
        key = ("", None) if library is None else (library.name, library.version)
        scopes.setdefault(key, []).append(span(item))
    return {
        "resourceSpans": [
            {
                **resource(res.attributes, res.schema_url),
                "scopeSpans": [
                    {"scope": scope(name, version), "spans": items}
                    for (name, version), items in scopes.items()
                ],
            }
            for res, scopes in by_resource.values()
        ]
    }
