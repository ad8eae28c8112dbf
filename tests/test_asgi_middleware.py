"""A real FastAPI application under uvicorn (tests/asgi_app.py), instrumented with the
OpenTelemetry SDK and PostgresSpanExporter, PostgresLogHandler and MonitoringMiddleware: a
failing request leaves its spans, an error event of the same trace, log records carrying
both ids, and the design document's errors-to-traces query returns the pair. With the
database stopped the application goes on serving, and the exporter counts what it drops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from .conftest import REPO, login_role, poll
from .test_outage import BIN, Server, app_db, server  # noqa: F401 - fixtures
from .test_server import add_key
from .test_server import serve as run_serve
from .test_tracker import free_port

# How long the application may take to store what a request left (spans go out every 0.1 s).
SETTLE = 15.0

DESIGN_QUERY = """
SELECT e.message, e.context->>'user_id', t.trace_id, t.duration_ms, t.status_code
FROM monitoring.errors e
LEFT JOIN monitoring.traces t ON e.trace_id = t.trace_id
WHERE e.fingerprint = %s
ORDER BY e.occurred_at DESC
"""


class App:
    """tests/asgi_app.py (or another `target`) under uvicorn on a free port of 127.0.0.1."""

    def __init__(
        self,
        dsn: str,
        out: Path,
        mode: str = "inside",
        target: str = "tests.asgi_app:app",
        **env: str,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = out
        env = {
            **os.environ,
            "PGM_APP_DSN": dsn,
            "PGM_APP_MODE": mode,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
            stdout=out.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=5.0)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, out.read_text()
            try:
                self.client.get("/stats")
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.1)

    def stats(self) -> dict[str, int]:
        return self.client.get("/stats").json()

    def lines(self) -> list[dict[str, Any]]:
        """What the JSON formatter printed."""
        return [
            json.loads(line) for line in self.out.read_text().splitlines() if line.startswith("{")
        ]

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def writer_dsn(installed_db: str) -> str:
    return login_role(installed_db, "pgm_app_writer", "monitoring_writer")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def start(dsn: str, mode: str = "inside", **env: str) -> App:
        apps.append(App(dsn, tmp_path / f"app{len(apps)}.log", mode, **env))
        return apps[-1]

    yield start
    for app in apps:
        app.stop()


def wait_for(check: Callable[[], Any], what: str, seconds: float = SETTLE) -> Any:
    outcome = poll(check, seconds)
    assert outcome, f"not within {seconds} s: {what}"
    return outcome


@pytest.mark.parametrize("mode", ["inside", "outside", "otlp"])
def test_a_failing_request_leaves_its_spans_error_and_logs_joined_by_trace(
    installed_db: str, writer_dsn: str, serve: Callable[..., App], mode: str
) -> None:
    """inside and outside FastAPI's telemetry, spans through PostgresSpanExporter; otlp: the
    spans go over OTLP/HTTP, with OpenTelemetry's own exporter, through `pg-monitoring serve`."""
    with ExitStack() as stack:
        if mode == "otlp":
            server = stack.enter_context(run_serve(writer_dsn))
            key = add_key(installed_db, "asgi-app", "traces")
            app = serve(writer_dsn, "inside", PGM_APP_OTLP=server.url, PGM_APP_KEY=key)
        else:
            app = serve(writer_dsn, mode)
        check_a_failing_request(installed_db, app, mode)


def check_a_failing_request(installed_db: str, app: App, mode: str) -> None:
    response = app.client.get(
        "/pay?order=1234&password=hunter2",
        headers={"X-Request-ID": "req-42", "Authorization": "Bearer abc.def"},
    )
    assert response.status_code == 500
    if mode == "outside":  # inside, Starlette's error middleware answers, outside ours
        assert response.headers["x-request-id"] == "req-42"

    with psycopg.connect(installed_db, autocommit=True) as conn:

        def error() -> Any:
            return conn.execute(
                "SELECT trace_id, span_id, fingerprint, context FROM monitoring.errors"
                " WHERE exception_type LIKE '%%PaymentTimeout'"
            ).fetchall()

        [(trace_id, span_id, fingerprint, context)] = wait_for(error, "the error event")
        assert trace_id
        assert span_id
        assert context["request_id"] == "req-42"
        assert context["user_id"] == "7"
        request = context["request"]
        assert (request["method"], request["route"]) == ("GET", "/pay")
        assert "hunter2" not in json.dumps(context), "the SQL scrubbed the query string"
        assert "abc.def" not in json.dumps(context), "and the Authorization header"

        def spans() -> Any:
            rows = conn.execute(
                "SELECT operation, span_id, parent_span_id, kind, status_code, attributes"
                " FROM monitoring.spans WHERE trace_id = %s",
                (trace_id,),
            ).fetchall()
            named = {row[0]: row[1:] for row in rows}
            return named if {"GET /pay", "charge"} <= named.keys() else None

        # inside, FastAPI's telemetry adds spans of its own (fastapi.endpoint...)
        named = wait_for(spans, "the request's spans")
        server, charge = named["GET /pay"], named["charge"]
        assert server[1] is None
        assert server[2:4] == ("server", "error")
        assert server[4]["http.route"] == "/pay"
        assert server[4]["http.response.status_code"] == 500
        assert server[4]["request.id"] == "req-42"
        assert charge[2:4] == ("internal", "error")
        assert span_id == server[0], "the error was captured in the server span"

        def logs() -> Any:
            rows = conn.execute(
                "SELECT severity, body, trace_id, span_id, attributes->>'request.id'"
                " FROM monitoring.logs WHERE trace_id = %s ORDER BY time",
                (trace_id,),
            ).fetchall()
            return rows if len(rows) >= 2 else None

        records = wait_for(logs, "the request's log records")
        warning = next(r for r in records if r[1] == "charging order 1234")
        assert warning[0] == "warn"
        assert warning[3] == charge[0]
        assert warning[4] == "req-42"
        failed = next(r for r in records if r[1].startswith("request failed: GET /pay 500"))
        assert failed[0] == "error"
        assert failed[3] == server[0]

        # the design document's query, as written
        [(message, user_id, joined, duration_ms, status)] = conn.execute(
            DESIGN_QUERY, (fingerprint,)
        ).fetchall()
        assert message.startswith("gateway timed out after 30s")
        assert (user_id, joined, status) == ("7", trace_id, "error")
        assert duration_ms > 0

        # the request failed once: captured by the middleware, not again from its log line
        assert conn.execute("SELECT count(*) FROM monitoring.errors").fetchone()[0] == 1

    # JSON lines on stdout carry the request id and the trace id
    printed = [line for line in app.lines() if line.get("request_id") == "req-42"]
    assert {line["trace_id"] for line in printed} == {trace_id}


def test_request_ids_log_lines_slow_requests_and_metrics(
    installed_db: str, writer_dsn: str, serve: Callable[..., App]
) -> None:
    app = serve(writer_dsn)
    first = app.client.get("/items/5")
    assert first.status_code == 200
    generated = first.headers["x-request-id"]
    assert len(generated) == 32
    assert app.client.get("/items/6").headers["x-request-id"] != generated
    bad = app.client.get("/items/7", headers={"X-Request-ID": "x" * 500})
    assert len(bad.headers["x-request-id"]) == 32, "an unusable id is replaced"
    assert app.client.get("/slow").status_code == 200
    # uvicorn drops the connection of a request that raised: not one to keep alive
    app.client.get("/pay", headers={"Connection": "close"})
    app.client.get("/items/8", headers={"X-Operation-Name": "GetItem"})

    metrics = app.client.get("/metrics").text
    requests = "pg_monitoring_graphql_requests_total"
    assert f'{requests}{{operation="/items/{{item_id}}",status="success"}} 3.0' in metrics
    assert f'{requests}{{operation="/pay",status="error"}} 1.0' in metrics
    assert f'{requests}{{operation="GetItem",status="success"}} 1.0' in metrics
    assert 'pg_monitoring_graphql_request_duration_seconds_count{operation="/slow"} 1.0' in metrics

    with psycopg.connect(installed_db, autocommit=True) as conn:

        def lines() -> Any:
            rows = conn.execute(
                "SELECT severity, body, attributes FROM monitoring.logs"
                " WHERE attributes->>'logger.name' = 'pg_monitoring.requests' ORDER BY time"
            ).fetchall()
            return rows if len(rows) >= 6 else None

        rows = wait_for(lines, "a line per request")
        done = next(r for r in rows if r[1].startswith("GET /items/{item_id} 200 in "))
        assert done[0] == "info"
        assert done[2]["request_id"] == generated
        assert done[2]["status_code"] == 200
        assert done[2]["duration_ms"] > 0
        slow = next(r for r in rows if r[1].startswith("slow request: GET /slow 200 in "))
        assert slow[0] == "warn"


@pytest.mark.parametrize("mode", ["inside", "outside"])
def test_the_callers_trace_goes_on(
    installed_db: str, writer_dsn: str, serve: Callable[..., App], mode: str
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    app = serve(writer_dsn, mode)
    headers = {"traceparent": f"00-{caller_trace}-{caller_span}-01"}
    assert app.client.get("/items/3", headers=headers).status_code == 200
    with psycopg.connect(installed_db, autocommit=True) as conn:

        def server_span() -> Any:
            return conn.execute(
                "SELECT trace_id, parent_span_id FROM monitoring.spans"
                " WHERE operation = 'GET /items/{item_id}'"
            ).fetchone()

        assert wait_for(server_span, "the request's span") == (caller_trace, caller_span)


@pytest.mark.skipif(not (BIN / "initdb").exists(), reason="needs initdb")
def test_with_the_database_stopped_the_application_keeps_serving(
    server: Server,  # noqa: F811 - test_outage's fixture
    app_db: str,  # noqa: F811
    serve: Callable[..., App],
) -> None:
    app = serve(app_db)
    assert app.client.get("/items/1").status_code == 200
    wait_for(lambda: app.stats()["exported_spans"] >= 1, "the first span stored")

    server.stop("fast")
    try:
        timings = []
        for number in range(20):
            started = time.monotonic()
            response = app.client.get(
                f"/items/{number}" if number % 5 else "/pay", headers={"Connection": "close"}
            )
            timings.append(time.monotonic() - started)
            assert response.status_code == (500 if number % 5 == 0 else 200)
        assert max(timings) < 0.5, timings
        stats = wait_for(
            lambda: (s := app.stats())["dropped_spans"] > 0 and s, "spans counted as dropped"
        )
        assert stats["queued_records"] > 0, "log records wait for the database"
    finally:
        server.start()
    wait_for(lambda: app.stats()["queued_records"] == 0, "the waiting records stored", 30)
    with psycopg.connect(app_db) as conn:
        bodies = [b for (b,) in conn.execute("SELECT body FROM monitoring.logs")]
    assert "item 19 looked up" in bodies
