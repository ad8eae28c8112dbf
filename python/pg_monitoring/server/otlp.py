"""OTLP/HTTP bodies (read by decompress.py): decoded into the OTLP JSON mapping the SQL
takes, cut into batches, and the answers encoded (opentelemetry-proto's messages).

`monitoring.record_spans(jsonb)`, `monitoring.record_logs(jsonb)` and
`monitoring.record_metrics(jsonb)` take a request in OTLP's JSON mapping: lowerCamelCase
names, enums as integers, int64 values as decimal strings, and trace and span ids as
lowercase hex. That is what `MessageToDict` gives for a protobuf body, but for the ids, which
protobuf's JSON mapping writes in base64: `to_json` writes the mapping itself, ids in hex. A
JSON body is that mapping already and passes through as it came.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from . import DEFAULT_MAX_BODY
from .decompress import BodyError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# How many items (spans, log records, metric data points) one stored-function call gets at
# most.
BATCH_ITEMS = 1000


@dataclass(frozen=True)
class Signal:
    """One OTLP signal as the server handles it: its messages, its JSON mapping's nesting
    (resources, scopes, items), the SQL function that stores it, and its scope for keys."""

    scope: str
    function: str
    query: str
    request: type[Message]
    response: type[Message]
    rejected_field: str
    resources: str
    scopes: str
    items: str
    # the fields of an item, and of each of its links, that hold ids (hex in OTLP JSON)
    id_fields: tuple[str, ...]
    link_id_fields: tuple[str, ...] = ()
    # metrics: an item (a metric) holds its data points under one of these fields, and
    # batches count and cut those, not items
    point_fields: tuple[str, ...] = ()


TRACES = Signal(
    scope="traces",
    function="monitoring.record_spans",
    query="SELECT monitoring.record_spans(%s::jsonb)",
    request=trace_service_pb2.ExportTraceServiceRequest,
    response=trace_service_pb2.ExportTraceServiceResponse,
    rejected_field="rejected_spans",
    resources="resourceSpans",
    scopes="scopeSpans",
    items="spans",
    id_fields=("traceId", "spanId", "parentSpanId"),
    link_id_fields=("traceId", "spanId"),
)
LOGS = Signal(
    scope="logs",
    function="monitoring.record_logs",
    query="SELECT monitoring.record_logs(%s::jsonb)",
    request=logs_service_pb2.ExportLogsServiceRequest,
    response=logs_service_pb2.ExportLogsServiceResponse,
    rejected_field="rejected_log_records",
    resources="resourceLogs",
    scopes="scopeLogs",
    items="logRecords",
    id_fields=("traceId", "spanId"),
)
METRICS = Signal(
    scope="metrics",
    function="monitoring.record_metrics",
    query="SELECT monitoring.record_metrics(%s::jsonb)",
    request=metrics_service_pb2.ExportMetricsServiceRequest,
    response=metrics_service_pb2.ExportMetricsServiceResponse,
    rejected_field="rejected_data_points",
    resources="resourceMetrics",
    scopes="scopeMetrics",
    items="metrics",
    # exemplars' (kept as sent: record_metrics does not store exemplars)
    id_fields=(),
    point_fields=("gauge", "sum", "histogram", "exponentialHistogram", "summary"),
)


def media_type(content_type: str | None) -> str | None:
    """PROTOBUF or JSON for a Content-Type header (parameters ignored), else None."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind if kind in (PROTOBUF, JSON) else None


def decode(body: bytes, kind: str, signal: Signal) -> dict[str, Any]:
    """The request in OTLP's JSON mapping, as the SQL takes it; BodyError(400) when `body`
    is not a request of `signal` in `kind` (PROTOBUF or JSON)."""
    if kind == PROTOBUF:
        message = signal.request()
        try:
            message.ParseFromString(body)
        except DecodeError as error:
            raise BodyError(400, f"the body is not a {signal.request.__name__}: {error}") from None
        return to_json(message, signal)
    try:
        # orjson: a third of json's time, and strict JSON (no NaN, no lone surrogates)
        request = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BodyError(400, f"the body is not JSON: {error}") from None
    _check_shape(request, signal)
    return request


def to_json(message: Message, signal: Signal) -> dict[str, Any]:
    """A decoded request as OTLP JSON: protobuf's JSON mapping with ids in hex. What
    `MessageToDict(message, use_integers_for_enums=True)` gives (then ids to hex), written
    for OTLP's messages: 5-10 times faster, which is most of what serve spends on a span."""
    del signal  # every OTLP request's ids are in fields of the same names
    return _message(message)


# OTLP's trace and span ids: bytes, which OTLP JSON writes in hex (protobuf's mapping: base64)
_HEX_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_STRING_INTEGERS = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_SINT64,
    }
)
# Per field: its JSON name, how its value converts, whether it repeats. Learnt once.
_PLANS: dict[FieldDescriptor, tuple[str, str, bool]] = {}


def _plan(field: FieldDescriptor) -> tuple[str, str, bool]:
    plan = _PLANS.get(field)
    if plan is None:
        if field.message_type is not None:
            how = "message"
        elif field.type == FieldDescriptor.TYPE_BYTES:
            how = "hex" if field.name in _HEX_FIELDS else "base64"
        elif field.type in _STRING_INTEGERS:
            how = "string"
        elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            how = "float"
        else:  # strings, booleans, 32-bit integers, enums (as integers)
            how = "plain"
        # is_repeated in protobuf 6 and later; label before
        repeated = (
            field.is_repeated
            if hasattr(field, "is_repeated")
            else field.label == FieldDescriptor.LABEL_REPEATED
        )
        plan = (field.json_name, how, repeated)
        _PLANS[field] = plan
    return plan


def _message(message: Message) -> dict[str, Any]:
    if message.DESCRIPTOR is _KEY_VALUE:
        return _key_value(message)
    # ListFields gives the fields that are set, as MessageToDict writes them: a default
    # value (0, "", empty) is left out, and a oneof's member is kept even when it is one
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        name, how, repeated = _plan(field)
        if repeated:
            out[name] = [_value(how, v) for v in value]
        else:
            out[name] = _value(how, value)
    return out


# Attributes are most of a span's fields: their KeyValue and AnyValue messages are read
# directly (what the loop above would write, in half the time: no field list per message).
_KEY_VALUE = common_pb2.KeyValue.DESCRIPTOR
_SCALARS = {
    "string_value": ("stringValue", "plain"),
    "bool_value": ("boolValue", "plain"),
    "int_value": ("intValue", "string"),
    "double_value": ("doubleValue", "float"),
    "bytes_value": ("bytesValue", "base64"),
}


def _key_value(kv: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if kv.key:
        out["key"] = kv.key
    if kv.HasField("value"):
        value = kv.value
        which = value.WhichOneof("value")
        if which is None:
            out["value"] = {}
        elif which in _SCALARS:
            name, how = _SCALARS[which]
            out["value"] = {name: _value(how, getattr(value, which))}
        else:  # arrays and key-value lists
            out["value"] = _message(value)
    return out


def _value(how: str, value: Any) -> Any:
    if how == "message":
        return _message(value)
    if how == "plain":
        return value
    if how == "string":
        return str(value)
    if how == "hex":
        return value.hex()
    if how == "base64":
        return base64.b64encode(value).decode()
    # protobuf's JSON mapping of doubles: what JSON has no number for, as strings
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _check_shape(request: Any, signal: Signal) -> None:
    """What `batches` relies on: objects and lists where OTLP has them. Anything inside an
    item is the SQL's to judge."""

    def refuse(where: str, what: str) -> BodyError:
        return BodyError(400, f"{where} must be {what}")

    if not isinstance(request, dict):
        raise refuse("the body", f"a JSON object (an {signal.request.__name__})")
    resources = request.get(signal.resources, [])
    if not isinstance(resources, list):
        raise refuse(signal.resources, "a list")
    for resource in resources:
        if not isinstance(resource, dict):
            raise refuse(f"each of {signal.resources}", "an object")
        scopes = resource.get(signal.scopes, [])
        if not isinstance(scopes, list):
            raise refuse(f"{signal.resources}[].{signal.scopes}", "a list")
        for scope in scopes:
            if not isinstance(scope, dict):
                raise refuse(f"each of {signal.scopes}", "an object")
            if not isinstance(scope.get(signal.items, []), list):
                raise refuse(f"{signal.scopes}[].{signal.items}", "a list")


def batches(
    request: dict[str, Any], signal: Signal, size: int = BATCH_ITEMS
) -> Iterator[tuple[dict[str, Any], int]]:
    """`request` cut into requests of at most `size` items each, with their item counts;
    each keeps its items' resource and scope. A request without items gives none. The
    batches share the request's objects: together they hold what it holds. Metrics are
    counted and cut by their data points."""
    if signal.point_fields:
        yield from _point_batches(request, signal, size)
        return
    resources: list[dict[str, Any]] = []
    count = 0
    for resource in request.get(signal.resources, ()):
        for scope in resource.get(signal.scopes, ()):
            items = scope.get(signal.items, [])
            start = 0
            while start < len(items):
                part = items[start : start + size - count]
                start += len(part)
                count += len(part)
                if not resources or resources[-1]["_from"] is not resource:
                    resources.append({"_from": resource, signal.scopes: []})
                resources[-1][signal.scopes].append({**scope, signal.items: part})
                if count == size:
                    yield _batch(resources, signal), count
                    resources, count = [], 0
    if count:
        yield _batch(resources, signal), count


def _point_batches(
    request: dict[str, Any], signal: Signal, size: int
) -> Iterator[tuple[dict[str, Any], int]]:
    """`batches` for metrics: at most `size` data points each, a metric with more cut into
    copies that each hold a part of its points."""
    resources: list[dict[str, Any]] = []
    count = 0
    last_scope = None
    for resource in request.get(signal.resources, ()):
        for scope in resource.get(signal.scopes, ()):
            for piece, weight in _pieces(scope.get(signal.items, []), signal, size):
                if count and count + weight > size:
                    yield _batch(resources, signal), count
                    resources, count, last_scope = [], 0, None
                if not resources or resources[-1]["_from"] is not resource:
                    resources.append({"_from": resource, signal.scopes: []})
                    last_scope = None
                if last_scope is not scope:
                    resources[-1][signal.scopes].append({**scope, signal.items: []})
                    last_scope = scope
                resources[-1][signal.scopes][-1][signal.items].append(piece)
                count += weight
    if count:
        yield _batch(resources, signal), count


def _pieces(items: list[Any], signal: Signal, size: int) -> Iterator[tuple[Any, int]]:
    """Each metric with its number of data points; one with more than `size` as several."""
    for item in items:
        field = (
            next((f for f in signal.point_fields if f in item), None)
            if isinstance(item, dict)
            else None
        )
        data = item[field] if field else None
        points = data.get("dataPoints") if isinstance(data, dict) else None
        if not isinstance(points, list):
            yield item, 0
        elif len(points) <= size:
            yield item, len(points)
        else:
            for start in range(0, len(points), size):
                part = points[start : start + size]
                yield {**item, field: {**data, "dataPoints": part}}, len(part)


def _batch(parts: list[dict[str, Any]], signal: Signal) -> dict[str, Any]:
    return {
        signal.resources: [{**part["_from"], signal.scopes: part[signal.scopes]} for part in parts]
    }


def encode_response(signal: Signal, kind: str, rejected: int, error_message: str) -> bytes:
    """The Export*ServiceResponse: `partial_success` only when something was refused."""
    response = signal.response()
    if rejected or error_message:
        partial = response.partial_success
        setattr(partial, signal.rejected_field, rejected)
        partial.error_message = error_message
    if kind == JSON:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return response.SerializeToString()


# google.rpc.Status codes (google/rpc/code.proto) for the errors the server answers.
STATUS_CODES = {400: 3, 401: 16, 413: 3, 415: 3, 500: 13, 503: 14}


def encode_status(http_status: int, message: str, kind: str | None) -> bytes:
    """A `google.rpc.Status` (code, message) in `kind`, protobuf when the request's type is
    neither. Written out by hand: its two fields do not justify googleapis-common-protos."""
    code = STATUS_CODES.get(http_status, 2)  # 2: UNKNOWN
    if kind == JSON:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    # field 1 (code, varint): tag 0x08; field 2 (message, bytes): tag 0x12
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


__all__ = [
    "BATCH_ITEMS",
    "DEFAULT_MAX_BODY",
    "JSON",
    "LOGS",
    "METRICS",
    "PROTOBUF",
    "TRACES",
    "BodyError",
    "Signal",
    "batches",
    "decode",
    "encode_response",
    "encode_status",
    "media_type",
    "to_json",
]
