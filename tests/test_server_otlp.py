"""pg_monitoring.server.otlp on its own: bodies read and bounded (server.decompress, as the OTLP
and Sentry routes read them: gzip, deflate, br and zstd), protobuf turned into the OTLP JSON
the SQL takes (compared with the JSON OpenTelemetry's own encoder writes), batches, and
the answers. Messages are built with opentelemetry-proto's classes and the SDK's encoders."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from typing import Any

import brotli
import pytest
import zstandard
from google.protobuf.json_format import MessageToDict
from opentelemetry import metrics as metrics_api
from opentelemetry.exporter.otlp.json.common._log_encoder import encode_logs as json_logs
from opentelemetry.exporter.otlp.json.common.metrics_encoder import (
    encode_metrics as json_metrics,
)
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as json_spans
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as proto_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
    encode_metrics as proto_metrics,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as proto_spans
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from pg_monitoring.server import decompress, otlp

TRACE_ID = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
SPAN_ID = bytes.fromhex("00f067aa0ba902b7")
PARENT_ID = bytes.fromhex("53995c3f42cd8ad8")


def span_message() -> trace_service_pb2.ExportTraceServiceRequest:
    span = trace_pb2.Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=PARENT_ID,
        name="GET /cart",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_250_000_000,
        attributes=[
            common_pb2.KeyValue(key="http.status_code", value=common_pb2.AnyValue(int_value=500)),
            common_pb2.KeyValue(key="blob", value=common_pb2.AnyValue(bytes_value=b"\x00\xff")),
        ],
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="boom"),
        links=[trace_pb2.Span.Link(trace_id=TRACE_ID, span_id=PARENT_ID)],
    )
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                scope_spans=[trace_pb2.ScopeSpans(spans=[span])],
            )
        ]
    )


def test_protobuf_becomes_otlp_json_with_hex_ids() -> None:
    request = otlp.decode(span_message().SerializeToString(), otlp.PROTOBUF, otlp.TRACES)
    span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == TRACE_ID.hex()
    assert span["spanId"] == SPAN_ID.hex()
    assert span["parentSpanId"] == PARENT_ID.hex()
    assert span["links"] == [{"traceId": TRACE_ID.hex(), "spanId": PARENT_ID.hex()}]
    assert span["kind"] == 2
    assert span["status"] == {"code": 2, "message": "boom"}
    assert span["startTimeUnixNano"] == "1700000000000000000"
    assert span["attributes"][0] == {"key": "http.status_code", "value": {"intValue": "500"}}
    # bytes values other than ids stay base64, as OTLP JSON has them
    assert span["attributes"][1] == {"key": "blob", "value": {"bytesValue": "AP8="}}


def test_every_attribute_value_reads_as_protobufs_json_mapping_has_it() -> None:
    """KeyValue and AnyValue are read by a path of their own: it must write what the
    generic one (protobuf's mapping) writes, for every kind of value."""
    any_value = common_pb2.AnyValue
    values = [
        any_value(string_value="x"),
        any_value(string_value=""),
        any_value(bool_value=False),
        any_value(int_value=-(2**63)),
        any_value(int_value=0),
        any_value(double_value=1.5),
        any_value(double_value=float("nan")),
        any_value(double_value=float("-inf")),
        any_value(bytes_value=b"\x00\xff"),
        any_value(
            array_value=common_pb2.ArrayValue(
                values=[any_value(int_value=7), any_value(string_value="y")]
            )
        ),
        any_value(
            kvlist_value=common_pb2.KeyValueList(
                values=[common_pb2.KeyValue(key="k", value=any_value(bool_value=True))]
            )
        ),
        any_value(),
    ]
    pairs = [common_pb2.KeyValue(key=f"k{i}", value=v) for i, v in enumerate(values)]
    pairs += [common_pb2.KeyValue(key="no value"), common_pb2.KeyValue()]
    for pair in pairs:
        assert otlp._message(pair) == MessageToDict(pair), pair


def sdk_spans() -> list:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.checkout", "1.2")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("order.total", 19.99)
        root.add_event("paid", {"card": "visa"})
        with tracer.start_as_current_span(
            "charge", kind=SpanKind.CLIENT, links=[Link(root.get_span_context())]
        ) as child:
            child.set_status(Status(StatusCode.ERROR, "declined"))
            child.set_attribute("retries", 3)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def test_spans_match_the_json_opentelemetry_encodes() -> None:
    spans = sdk_spans()
    ours = otlp.to_json(proto_spans(spans), otlp.TRACES)
    theirs = json_spans(spans).to_dict()
    assert ours == theirs


def test_log_records_match_the_json_opentelemetry_encodes() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    tracer_provider = TracerProvider()
    with tracer_provider.get_tracer("t").start_as_current_span("in a span"):
        provider.get_logger("shop.log").emit(
            body="payment declined", severity_text="WARN", attributes={"order": 7}
        )
    provider.shutdown()
    records = exporter.get_finished_logs()
    ours = otlp.to_json(proto_logs(records), otlp.LOGS)
    theirs = json_logs(records).to_dict()
    assert ours == theirs
    record = ours["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert len(record["traceId"]) == 32
    assert len(record["spanId"]) == 16


def test_metrics_match_the_json_opentelemetry_encodes() -> None:
    """Every kind of point the SDK makes: sums (monotonic and not), gauges, histograms and
    exponential histograms, with exemplars (their ids in hex, as spans' are)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "shop"}),
        metric_readers=[reader],
        views=[View(instrument_name="db.*", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("shop.metrics", "1.0")
    with TracerProvider().get_tracer("t").start_as_current_span("sampled"):
        meter.create_counter("orders", unit="1").add(3, {"route": "/pay"})
    meter.create_up_down_counter("queue").add(-2)
    meter.create_histogram("latency", unit="s").record(0.3, {"route": "/pay"})
    meter.create_histogram("db.latency").record(0.02)
    meter.create_observable_gauge("temperature", [lambda _options: [metrics_api.Observation(21.5)]])
    data = reader.get_metrics_data()
    provider.shutdown()
    ours = otlp.to_json(proto_metrics(data), otlp.METRICS)
    theirs = json_metrics(data).to_dict()
    assert ours == theirs
    metrics = {m["name"]: m for m in ours["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]}
    assert set(metrics) == {"orders", "queue", "latency", "db.latency", "temperature"}
    assert {"sum", "histogram", "exponentialHistogram", "gauge"} == {
        next(k for k in m if k in otlp.METRICS.point_fields) for m in metrics.values()
    }
    exemplar = metrics["orders"]["sum"]["dataPoints"][0]["exemplars"][0]
    assert len(exemplar["traceId"]) == 32


def test_json_passes_through() -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab", "name": "x"}]}]}]}
    assert otlp.decode(json.dumps(body).encode(), otlp.JSON, otlp.TRACES) == body


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"\xff\xff\xff", otlp.PROTOBUF),
        (b"not json", otlp.JSON),
        (b"[1, 2]", otlp.JSON),
        (b'{"resourceSpans": {}}', otlp.JSON),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": 3}]}]}', otlp.JSON),
    ],
)
def test_garbage_is_400(body: bytes, kind: str) -> None:
    with pytest.raises(otlp.BodyError) as raised:
        otlp.decode(body, kind, otlp.TRACES)
    assert raised.value.status == 400


def spans_request(resources: int, scopes: int, spans: int) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"r": r},
                "scopeSpans": [
                    {"scope": {"s": s}, "spans": [{"name": f"{r}.{s}.{i}"} for i in range(spans)]}
                    for s in range(scopes)
                ],
            }
            for r in range(resources)
        ]
    }


def names(batch: dict) -> list[tuple]:
    return [
        (resource["resource"]["r"], scope["scope"]["s"], span["name"])
        for resource in batch["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]


def test_batches_keep_every_span_with_its_resource_and_scope() -> None:
    request = spans_request(3, 2, 700)
    parts = list(otlp.batches(request, otlp.TRACES, size=1000))
    assert [count for _, count in parts] == [1000, 1000, 1000, 1000, 200]
    assert all(len(names(batch)) == count for batch, count in parts)
    everything = [name for batch, _ in parts for name in names(batch)]
    assert everything == names(request)
    assert all(name.startswith(f"{r}.{s}.") for r, s, name in everything)


def test_no_items_no_batch() -> None:
    assert list(otlp.batches({}, otlp.TRACES)) == []
    assert list(otlp.batches({"resourceSpans": [{"scopeSpans": []}]}, otlp.TRACES)) == []


def metrics_request(points: list[int]) -> dict:
    """A metric per entry of `points`, with that many data points, in two scopes."""
    metrics = [
        {"name": f"m{m}", "gauge": {"dataPoints": [{"asInt": str(p)} for p in range(n)]}}
        for m, n in enumerate(points)
    ]
    half = len(metrics) // 2
    return {
        "resourceMetrics": [
            {
                "resource": {"r": 0},
                "scopeMetrics": [
                    {"scope": {"s": 0}, "metrics": metrics[:half]},
                    {"scope": {"s": 1}, "metrics": metrics[half:]},
                ],
            }
        ]
    }


def metric_points(batch: dict) -> list[tuple]:
    return [
        (scope["scope"]["s"], metric["name"], point["asInt"])
        for resource in batch["resourceMetrics"]
        for scope in resource["scopeMetrics"]
        for metric in scope["metrics"]
        for point in metric["gauge"]["dataPoints"]
    ]


def test_metrics_are_batched_by_their_data_points() -> None:
    request = metrics_request([300, 2500, 10, 900, 0, 5])
    parts = list(otlp.batches(request, otlp.METRICS, size=1000))
    assert [count for _, count in parts] == [300, 1000, 1000, 510, 905]
    assert all(len(metric_points(batch)) == count for batch, count in parts)
    assert [p for batch, _ in parts for p in metric_points(batch)] == metric_points(request)
    # the metric of 2500 points is cut into copies of itself
    assert [m["name"] for m in parts[1][0]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]] == [
        "m1"
    ]
    assert list(otlp.batches({"resourceMetrics": [{"scopeMetrics": [{}]}]}, otlp.METRICS)) == []


async def chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read(
    data: bytes, encoding: str | None, limit: int, max_sent: int | None = None, size: int = 65536
) -> bytes:
    return asyncio.run(decompress.read_body(chunks(data, size), encoding, limit, max_sent))


COMPRESS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_bodies_are_decompressed(encoding: str) -> None:
    body = span_message().SerializeToString() * 10
    data = COMPRESS[encoding](body)
    assert read(data, encoding, 10_000) == body
    assert read(data, encoding.upper(), len(body), size=1) == body  # a byte at a time
    assert read(b"", encoding, 10_000) == b""  # no bytes: no body, in any encoding


def test_identity_and_no_encoding_are_the_body() -> None:
    assert read(b"abc", None, 10) == read(b"abc", "identity", 10) == b"abc"


def test_streams_one_after_another() -> None:
    body = span_message().SerializeToString() * 10
    # gzip members (and zero padding after the last, which gzip(1) ignores too)
    members = gzip.compress(body[:50]) + gzip.compress(body[50:]) + b"\0" * 10
    assert read(members, "gzip", 10_000, size=7) == body
    # zstd frames, a skippable frame between them; one without its size, one with a checksum
    frames = (
        zstandard.ZstdCompressor(write_content_size=False).compress(body[:50])
        + (0x184D2A50).to_bytes(4, "little")
        + (3).to_bytes(4, "little")
        + b"xyz"
        + zstandard.ZstdCompressor(write_checksum=True).compress(body[50:])
    )
    assert read(frames, "zstd", 10_000, size=7) == body


def test_raw_deflate_is_read_too() -> None:
    # RFC 9110's deflate is zlib's format, but some clients send deflate without its header
    body = span_message().SerializeToString()
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert read(raw.compress(body) + raw.flush(), "deflate", 10_000) == body


def zeros_compressed(encoding: str, mib: int) -> bytes:
    """`mib` MiB of zeros in `encoding`, compressed a MiB at a time."""
    compressor: Any = {
        "gzip": lambda: zlib.compressobj(wbits=16 + zlib.MAX_WBITS),
        "deflate": lambda: zlib.compressobj(),
        "br": lambda: brotli.Compressor(quality=5),
        "zstd": lambda: zstandard.ZstdCompressor().compressobj(),
    }[encoding]()
    step = compressor.process if encoding == "br" else compressor.compress
    end = compressor.finish if encoding == "br" else compressor.flush
    zeros = bytes(1024 * 1024)
    return b"".join(step(zeros) for _ in range(mib)) + end()


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_a_bomb_stops_at_the_limit(encoding: str) -> None:
    bomb = zeros_compressed(encoding, 64)  # inflates to 64 MiB
    assert len(bomb) < 64 * 1024
    tracemalloc.start()
    try:
        started = time.monotonic()
        with pytest.raises(decompress.BodyError) as raised:
            read(bomb, encoding, 1024 * 1024)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.status == 413
    assert "inflates" in raised.value.message
    # the limit and a step (a MiB each), not 64 MiB; well under the time to inflate it all
    assert peak < 4 * 1024 * 1024
    assert elapsed < 2


def zstd_window_of_16_mib() -> bytes:
    params = zstandard.ZstdCompressionParameters(window_log=24)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return compressor.compress(b"abc" * 100) + compressor.flush()


@pytest.mark.parametrize(
    ("data", "encoding", "status"),
    [
        (b"x" * 2000, None, 413),
        (b"not gzip", "gzip", 400),
        (gzip.compress(b"abc" * 100)[:-12], "gzip", 400),
        (b"not deflate", "deflate", 400),
        (zlib.compress(b"abc" * 100)[:-3], "deflate", 400),
        (zlib.compress(b"abc") + b"more", "deflate", 400),
        (b"not br", "br", 400),
        (brotli.compress(b"abc" * 100)[:-3], "br", 400),
        (b"not zstd", "zstd", 400),
        (zstandard.ZstdCompressor().compress(b"abc" * 100)[:-3], "zstd", 400),
        (zstandard.ZstdCompressor(write_checksum=True).compress(b"abc")[:-1], "zstd", 400),
        # RFC 9659: a zstd window up to 8 MiB, which the decoder allocates
        (zstd_window_of_16_mib(), "zstd", 400),
        (b"x", "lzma", 415),
        (b"x", "gzip, br", 415),
    ],
)
def test_bodies_refused(data: bytes, encoding: str | None, status: int) -> None:
    with pytest.raises(decompress.BodyError) as raised:
        read(data, encoding, 1000)
    assert raised.value.status == status


def test_bounds_as_sent_and_decompressed() -> None:
    body = os.urandom(3000)  # does not compress
    sent = zstandard.ZstdCompressor().compress(body)
    assert read(sent, "zstd", 5000, max_sent=4000) == body
    with pytest.raises(decompress.BodyError, match="zstd body is larger than 1000 bytes"):
        read(sent, "zstd", 5000, max_sent=1000)
    with pytest.raises(decompress.BodyError, match="inflates to more than 2000 bytes"):
        read(sent, "zstd", 2000, max_sent=4000)
    # uncompressed, the smaller bound holds
    with pytest.raises(decompress.BodyError, match="body is larger than 2000 bytes") as raised:
        read(body, None, 2000, max_sent=4000, size=500)
    # what was read before the refusal: a Sentry envelope's header names the key counted
    assert raised.value.head == body[:2000]


def test_responses() -> None:
    ok = trace_service_pb2.ExportTraceServiceResponse.FromString(
        otlp.encode_response(otlp.TRACES, otlp.PROTOBUF, 0, "")
    )
    assert not ok.HasField("partial_success")
    partial = logs_service_pb2.ExportLogsServiceResponse.FromString(
        otlp.encode_response(otlp.LOGS, otlp.PROTOBUF, 2, "bad severity")
    )
    assert partial.partial_success.rejected_log_records == 2
    assert partial.partial_success.error_message == "bad severity"
    as_json = json.loads(otlp.encode_response(otlp.TRACES, otlp.JSON, 3, "no name"))
    assert as_json == {"partialSuccess": {"rejectedSpans": "3", "errorMessage": "no name"}}
    points = json.loads(otlp.encode_response(otlp.METRICS, otlp.JSON, 4, "no time"))
    assert points == {"partialSuccess": {"rejectedDataPoints": "4", "errorMessage": "no time"}}


def test_status_is_a_google_rpc_status() -> None:
    from google.rpc import status_pb2  # googleapis-common-protos, which the exporter needs

    status = status_pb2.Status.FromString(otlp.encode_status(400, "bad ☃" * 50, otlp.PROTOBUF))
    assert (status.code, status.message) == (3, "bad ☃" * 50)
    assert json.loads(otlp.encode_status(503, "down", otlp.JSON)) == {"code": 14, "message": "down"}
