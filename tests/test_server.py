"""`pg-monitoring serve` as a real uvicorn process on 127.0.0.1, against the throwaway cluster:
health, ingest keys (401), body limits (413), garbage (400), gzip and a gzip bomb, an
unreachable database (503 with Retry-After), and OTLP exporters of the real SDK."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from click.testing import CliRunner
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from pg_monitoring.cli import main

from .alert_servers import free_port
from .conftest import login_role, superuser

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
WRITER = "pgm_test_serve"


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


def test_a_gzip_bomb_costs_no_more_than_the_limit(writer_dsn: str, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    bomb = gzip.compress(b"\0" * (512 * 1024 * 1024), compresslevel=9)  # ~500 kB
    with serve(writer_dsn) as server:  # the default limit, 16 MiB
        before = server.peak_memory()
        response = server.post("/v1/traces", bomb, {**PROTOBUF, "Content-Encoding": "gzip"}, key)
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


def test_gzip(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop")
    response = server.post(
        "/v1/traces", gzip.compress(empty_traces()), {**PROTOBUF, "Content-Encoding": "gzip"}, key
    )
    assert response.status_code == 200


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
