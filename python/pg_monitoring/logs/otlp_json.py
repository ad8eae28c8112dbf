"""The pieces of OTLP's JSON mapping a log record of the standard library needs, as
`monitoring.record_logs` reads them: attributes as lists of {"key", "value": AnyValue},
int64 as decimal strings, a resource and a scope.

OpenTelemetry's own JSON encoder (opentelemetry-exporter-otlp-json-common, which the span
exporter uses) encodes the SDK's log records, not `logging.LogRecord`s, and its value
encoding is private: the handler, which needs no opentelemetry at all, encodes here.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

Json = dict[str, Any]


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
