"""`pg-monitoring serve` as a real uvicorn process on 127.0.0.1, against the throwaway cluster:
health, ingest keys (401), body limits (413), garbage (400), every Content-Encoding and zip
bombs, an unreachable database (503 with Retry-After), and OTLP exporters of the real SDK."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import brotli
import httpx
import psycopg
import pytest
import zstandard
from click.testing import CliRunner
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from pg_monitoring.cli import main

from .alert_servers import free_port
from .conftest import login_role, superuser

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
WRITER = "pgm_test_serve"
# Spans and records must be recent: older ones fall outside retention and are refused.
NOW = time.time_ns()


@dataclass
class Serve:
    url: str
    process: subprocess.Popen[bytes]

    def post(self, path: str, body: bytes, headers: dict[str, str], key: str | None = None):
        if key is not None:
            headers = {**headers, "Authorization": f"Bearer {key}"}
        return httpx.post(self.url + path, content=body, headers=headers, timeout=30)

    def peak_memory(self) -> int:
        """The process's peak resident set, in bytes."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")


@contextmanager
def serve(dsn: str, *options: str) -> Iterator[Serve]:
    """`pg-monitoring serve` on a free port, until it answers; stopped with SIGTERM."""
    port = free_port()
    command = [sys.executable, "-m", "pg_monitoring", "serve", "--dsn", dsn, "--port", str(port)]
    process = subprocess.Popen(
        [*command, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
        yield Serve(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def add_key(dsn: str, name: str, *scopes: str) -> str:
    with superuser(dsn) as conn:
        if scopes:
            row = conn.execute(
                "SELECT monitoring.add_ingest_key(%s, %s)", (name, list(scopes))
            ).fetchone()
        else:
            row = conn.execute("SELECT monitoring.add_ingest_key(%s)", (name,)).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def writer_dsn(installed_db: str) -> str:
    return login_role(installed_db, WRITER, "monitoring_writer")


@pytest.fixture
def server(writer_dsn: str) -> Iterator[Serve]:
    with serve(writer_dsn, "--key-cache", "0.5", "--max-body", str(1024 * 1024)) as running:
        yield running


def empty_traces() -> bytes:
    """A request without spans: the server answers it without calling record_spans."""
    resource = resource_pb2.Resource(
        attributes=[
            common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="shop"))
        ]
    )
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(resource=resource)]
    ).SerializeToString()


def status_of(response: httpx.Response) -> status_pb2.Status:
    assert response.headers["content-type"].startswith("application/x-protobuf")
    return status_pb2.Status.FromString(response.content)


def test_healthz(server: Serve) -> None:
    response = httpx.get(server.url + "/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_keys(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    logs_only = add_key(installed_db, "logs", "logs")

    ok = server.post("/v1/traces", empty_traces(), PROTOBUF, key)
    assert ok.status_code == 200, ok.content
    assert trace_service_pb2.ExportTraceServiceResponse.FromString(ok.content) == (
        trace_service_pb2.ExportTraceServiceResponse()
    )

    missing = server.post("/v1/traces", empty_traces(), PROTOBUF)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert status_of(missing).code == 16  # UNAUTHENTICATED
    assert server.post("/v1/traces", empty_traces(), PROTOBUF, "pgm_" + "0" * 64).status_code == 401
    assert server.post("/v1/traces", empty_traces(), PROTOBUF, "x" * 10_000).status_code == 401
    assert server.post("/v1/traces", empty_traces(), PROTOBUF, logs_only).status_code == 401
    assert server.post("/v1/logs", b"{}", JSON, logs_only).status_code == 200
    wrong_json = server.post("/v1/logs", b"{}", JSON, "nope")
    assert wrong_json.status_code == 401
    assert wrong_json.json()["code"] == 16

    with superuser(installed_db) as conn:
        conn.execute("SELECT monitoring.revoke_ingest_key('shop')")
    time.sleep(0.6)  # the server's --key-cache
    assert server.post("/v1/traces", empty_traces(), PROTOBUF, key).status_code == 401


def test_body_limit_is_413(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    big = b"\0" * (1024 * 1024 + 1)
    assert server.post("/v1/traces", big, PROTOBUF, key).status_code == 413
    inflated = server.post(
        "/v1/traces", gzip.compress(big), {**PROTOBUF, "Content-Encoding": "gzip"}, key
    )
    assert inflated.status_code == 413
    assert "inflates" in status_of(inflated).message


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_a_zip_bomb_costs_no_more_than_the_limit(
    writer_dsn: str, installed_db: str, encoding: str
) -> None:
    key = add_key(installed_db, "shop")
    # 512 MiB of zeros: ~500 kB of gzip, ~16 kB of zstd
    compressor: Any = (
        zlib.compressobj(9, wbits=16 + zlib.MAX_WBITS)
        if encoding == "gzip"
        else zstandard.ZstdCompressor().compressobj()
    )
    zeros = bytes(1024 * 1024)
    bomb = b"".join(compressor.compress(zeros) for _ in range(512)) + compressor.flush()
    with serve(writer_dsn) as server:  # the default limit, 16 MiB
        before = server.peak_memory()
        response = server.post("/v1/traces", bomb, {**PROTOBUF, "Content-Encoding": encoding}, key)
        assert response.status_code == 413
        assert server.peak_memory() - before < 100 * 1024 * 1024


def test_garbage_is_400(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    bad = server.post("/v1/traces", b"\xff\xff\xff\xff", PROTOBUF, key)
    assert bad.status_code == 400
    assert status_of(bad).code == 3  # INVALID_ARGUMENT
    bad_json = server.post("/v1/logs", b"{not json", JSON, key)
    assert bad_json.status_code == 400
    assert bad_json.headers["content-type"].startswith("application/json")
    assert bad_json.json()["code"] == 3
    not_gzip = server.post("/v1/traces", b"plain", {**PROTOBUF, "Content-Encoding": "gzip"}, key)
    assert not_gzip.status_code == 400
    assert server.post("/v1/traces", b"x", {"Content-Type": "text/plain"}, key).status_code == 415


def test_content_encodings(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    for encoding, compress in {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "br": brotli.compress,
        "zstd": zstandard.ZstdCompressor().compress,
        "identity": bytes,
    }.items():
        headers = {**PROTOBUF, "Content-Encoding": encoding}
        response = server.post("/v1/traces", compress(empty_traces()), headers, key)
        assert response.status_code == 200, encoding
    refused = server.post("/v1/traces", b"x", {**PROTOBUF, "Content-Encoding": "lzma"}, key)
    assert refused.status_code == 415
    assert "not supported" in status_of(refused).message


def test_database_away_is_503_with_retry_after(installed_db: str) -> None:
    nowhere = f"postgresql://{WRITER}@127.0.0.1:{free_port()}/none"
    with serve(nowhere) as server:
        started = time.monotonic()
        refused = server.post("/v1/traces", empty_traces(), PROTOBUF, "pgm_" + "0" * 64)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        assert status_of(refused).code == 14  # UNAVAILABLE
        assert time.monotonic() - started < 10
        # the breaker is open now: refused at once
        started = time.monotonic()
        assert server.post("/v1/logs", b"{}", JSON, "k").status_code == 503
        assert time.monotonic() - started < 1
        health = httpx.get(server.url + "/healthz", timeout=10)
        assert health.status_code == 503
        assert health.headers["retry-after"] == "5"
    with serve(nowhere, "--allow-anonymous", "--db-timeout", "2") as server:
        spans = trace_service_pb2.ExportTraceServiceRequest(
            resource_spans=[
                trace_pb2.ResourceSpans(
                    scope_spans=[trace_pb2.ScopeSpans(spans=[trace_pb2.Span(name="x")])]
                )
            ]
        )
        away = server.post("/v1/traces", spans.SerializeToString(), PROTOBUF)
        assert away.status_code == 503
        assert away.headers["retry-after"] == "5"


def test_ingest_calls_at_least_one() -> None:
    result = CliRunner().invoke(main, ["serve", "--ingest-calls", "0"])
    assert result.exit_code == 2
    assert "--ingest-calls" in result.output


def test_anonymous_only_on_loopback() -> None:
    everywhere = "0.0.0.0"  # noqa: S104
    result = CliRunner().invoke(main, ["serve", "--allow-anonymous", "--host", everywhere])
    assert result.exit_code == 2
    assert "loopback" in result.output


def test_keys_cli(installed_db: str) -> None:
    runner = CliRunner()
    added = runner.invoke(main, ["keys", "add", "ci", "--scope", "traces", "--dsn", installed_db])
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert key.startswith("pgm_")
    assert "will not be shown again" in added.stderr
    with superuser(installed_db) as conn:
        assert conn.execute(
            "SELECT monitoring.check_ingest_key(%s, 'traces')", (key,)
        ).fetchone() == (True,)
    unknown = runner.invoke(main, ["keys", "add", "x", "--scope", "spans", "--dsn", installed_db])
    assert unknown.exit_code == 1
    assert "--scope: unknown scope spans" in unknown.output
    listed = runner.invoke(main, ["keys", "list", "--json", "--dsn", installed_db])
    assert [(k["name"], k["scopes"], k["revoked_at"]) for k in json.loads(listed.stdout)] == [
        ("ci", ["traces"], None)
    ]
    assert key not in listed.stdout
    revoked = runner.invoke(main, ["keys", "revoke", "ci", "--dsn", installed_db])
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(main, ["keys", "revoke", "ci", "--dsn", installed_db])
    assert again.exit_code == 1
    assert "no ingest key named 'ci'" in again.output


def sdk_spans(count: int = 2) -> list[Any]:
    """Finished spans of the real SDK: a root and `count - 1` children."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.checkout")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("order.id", 7)
        for i in range(count - 1):
            with tracer.start_as_current_span(f"step {i}") as child:
                child.set_status(Status(StatusCode.ERROR, "declined"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def test_an_exporter_without_a_key_gives_up_at_once(server: Serve) -> None:
    exporter = OTLPSpanExporter(endpoint=server.url + "/v1/traces", timeout=10)
    started = time.monotonic()
    assert exporter.export(sdk_spans()) == SpanExportResult.FAILURE
    assert time.monotonic() - started < 5  # 401 is not retried
    exporter.shutdown()


@pytest.fixture
def otlp_sql(installed_db: str) -> None:
    """The happy paths need the traces and logs SQL (branch traces-sql)."""
    with superuser(installed_db) as conn:
        for function in ("monitoring.record_spans(jsonb)", "monitoring.record_logs(jsonb)"):
            if conn.execute("SELECT to_regprocedure(%s)", (function,)).fetchone() == (None,):
                pytest.skip(f"{function} is not installed yet (it comes with branch traces-sql)")


def stored_spans(dsn: str) -> dict[str, dict[str, Any]]:
    """monitoring.spans by span id."""
    with superuser(dsn) as conn:
        rows = conn.execute("SELECT to_jsonb(s) FROM monitoring.spans AS s").fetchall()
    return {row["span_id"]: row for (row,) in rows}


def hex_ids(span: Any) -> tuple[str, str]:
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


@pytest.mark.usefixtures("otlp_sql")
def test_the_sdk_exporter_stores_spans(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop", "traces")
    spans = sdk_spans(3)
    for compression in (Compression.NoCompression, Compression.Gzip):
        exporter = OTLPSpanExporter(
            endpoint=server.url + "/v1/traces",
            headers={"Authorization": f"Bearer {key}"},
            compression=compression,
            timeout=10,
        )
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
    stored = stored_spans(installed_db)
    assert len(stored) == 3
    for span in spans:
        trace_id, span_id = hex_ids(span)
        row = stored[span_id]
        assert row["trace_id"] == trace_id
        assert (row.get("operation") or row.get("name")) == span.name
        assert row["service"] == "shop"
    root = next(span for span in spans if span.parent is None)
    children = [stored[hex_ids(span)[1]] for span in spans if span.parent is not None]
    assert {row["parent_span_id"] for row in children} == {hex_ids(root)[1]}


@pytest.mark.usefixtures("otlp_sql")
def test_a_json_post_stores_spans(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    trace_id = "5b8efff798038103d269b633813fc60c"
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": f"eee19b7ec3c1b17{i}",
                                "name": f"json {i}",
                                "kind": 2,
                                "startTimeUnixNano": str(NOW),
                                "endTimeUnixNano": str(NOW + 100_000_000),
                            }
                            for i in range(2)
                        ],
                    }
                ],
            }
        ]
    }
    response = server.post("/v1/traces", json.dumps(body).encode(), JSON, key)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "partialSuccess" not in response.json()
    stored = stored_spans(installed_db)
    assert {row["trace_id"] for row in stored.values()} == {trace_id}
    assert sorted(stored) == ["eee19b7ec3c1b170", "eee19b7ec3c1b171"]


def test_a_nul_in_an_attribute_is_stored_as_the_replacement_character(
    server: Serve, installed_db: str
) -> None:
    """jsonb refuses \u0000: one NUL in a string attribute must not fail the request."""
    key = add_key(installed_db, "shop")
    span = {
        "traceId": "6b8efff798038103d269b633813fc60c",
        "spanId": "fee19b7ec3c1b170",
        "name": "nul",
        "kind": 2,
        "startTimeUnixNano": str(NOW),
        "endTimeUnixNano": str(NOW + 1_000_000),
        "attributes": [{"key": "raw", "value": {"stringValue": "a\x00b"}}],
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    response = server.post("/v1/traces", json.dumps(body).encode(), JSON, key)
    assert response.status_code == 200, response.text
    with psycopg.connect(installed_db) as conn:
        stored = conn.execute(
            "SELECT attributes ->> 'raw' FROM monitoring.spans WHERE span_id = %s",
            ("fee19b7ec3c1b170",),
        ).fetchone()
    assert stored == ("a\ufffdb",)


@pytest.mark.usefixtures("otlp_sql")
def test_a_large_request_is_stored_in_batches(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    spans = [
        trace_pb2.Span(
            trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
            span_id=(i + 1).to_bytes(8, "big"),
            name=f"span {i % 7}",
            start_time_unix_nano=NOW + i,
            end_time_unix_nano=NOW + 1000 + i,
        )
        for i in range(2500)
    ]
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=spans[:1200])]),
            trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=spans[1200:])]),
        ]
    )
    response = server.post("/v1/traces", request.SerializeToString(), PROTOBUF, key)
    assert response.status_code == 200
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    assert len(stored_spans(installed_db)) == 2500


@pytest.mark.usefixtures("otlp_sql")
def test_refused_spans_are_a_partial_success(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    good = trace_pb2.Span(
        trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        name="good",
        start_time_unix_nano=NOW,
        end_time_unix_nano=NOW + 1000,
    )
    no_ids = trace_pb2.Span(name="no ids", start_time_unix_nano=NOW)
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[good, no_ids])])
        ]
    )
    response = server.post("/v1/traces", request.SerializeToString(), PROTOBUF, key)
    assert response.status_code == 200
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert answer.partial_success.error_message
    assert list(stored_spans(installed_db)) == ["b7ad6b7169203331"]


@pytest.mark.usefixtures("otlp_sql")
def test_logs_from_the_sdk_exporter_and_json(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop", "logs")
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with TracerProvider().get_tracer("t").start_as_current_span("request") as span:
        provider.get_logger("shop.payments").emit(
            body="payment declined", severity_text="WARN", attributes={"order": 7}
        )
    provider.shutdown()
    sender = OTLPLogExporter(
        endpoint=server.url + "/v1/logs",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
        timeout=10,
    )
    assert sender.export(exporter.get_finished_logs()) == LogRecordExportResult.SUCCESS
    sender.shutdown()
    body = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(NOW),
                                "severityNumber": 17,
                                "body": {"stringValue": "from json"},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    response = server.post("/v1/logs", json.dumps(body).encode(), JSON, key)
    assert response.status_code == 200, response.text
    with superuser(installed_db) as conn:
        rows = conn.execute(
            "SELECT trace_id, span_id, body FROM monitoring.logs ORDER BY time"
        ).fetchall()
    assert len(rows) == 2
    assert (rows[1][0], rows[1][1]) == (
        format(span.get_span_context().trace_id, "032x"),
        format(span.get_span_context().span_id, "016x"),
    )
    assert "from json" in json.dumps(rows[0][2])


def test_a_database_that_does_not_answer_in_time_is_503(writer_dsn: str, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    with serve(writer_dsn, "--db-timeout", "1") as server, superuser(installed_db) as locker:
        locker.autocommit = False
        locker.execute("LOCK TABLE monitoring.ingest_keys IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        stuck = server.post("/v1/traces", empty_traces(), PROTOBUF, key)
        assert stuck.status_code == 503
        assert stuck.headers["retry-after"] == "5"
        assert time.monotonic() - started < 5
        locker.rollback()
        deadline = time.monotonic() + 15
        while (
            answer := server.post("/v1/traces", empty_traces(), PROTOBUF, key)
        ).status_code == 503:
            assert time.monotonic() < deadline, f"still 503 after the lock: {status_of(answer)}"
            time.sleep(0.5)
        assert answer.status_code == 200
