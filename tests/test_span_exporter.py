"""PostgresSpanExporter against a real server: what the SDK hands it lands in
monitoring.spans as sent; a retry stores nothing twice; with the database stopped an
export fails within its bound, then at once, and counts its spans as dropped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from pg_monitoring.traces import PostgresSpanExporter

from .conftest import login_role
from .test_outage import BIN, SLACK, Server, app_db, server  # noqa: F401 - fixtures


class Keep(SpanExporter):
    """Keeps what it is given, to export again by hand."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: object) -> SpanExportResult:
        self.spans.extend(spans)  # type: ignore[arg-type]
        return SpanExportResult.SUCCESS


def finished_spans() -> list[ReadableSpan]:
    """A server span with a child in error (an event, a link, attributes of each type)."""
    keep = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("tests", "1.0")
    with (
        tracer.start_as_current_span(
            "POST /pay",
            kind=SpanKind.SERVER,
            attributes={"http.route": "/pay", "http.response.status_code": 500, "retry": False},
        ) as root,
        tracer.start_as_current_span(
            "charge",
            kind=SpanKind.CLIENT,
            links=[Link(root.get_span_context(), {"why": "test"})],
            attributes={"ratio": 0.5, "tags": ["a", "b"], "bad": float("nan")},
        ) as child,
    ):
        child.add_event("retrying", {"attempt": 2})
        child.set_status(Status(StatusCode.ERROR, "gateway timed out"))
    provider.shutdown()
    return sorted(keep.spans, key=lambda span: span.start_time or 0)  # the root first


@pytest.fixture
def writer(installed_db: str) -> str:
    return login_role(installed_db, "pgm_span_writer", "monitoring_writer")


@pytest.fixture
def exporter(writer: str) -> Iterator[PostgresSpanExporter]:
    exporter = PostgresSpanExporter(writer)
    yield exporter
    exporter.shutdown()


def test_spans_are_stored_as_the_sdk_made_them(
    installed_db: str, exporter: PostgresSpanExporter
) -> None:
    spans = finished_spans()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.exported_spans == 2
    trace_id = format(spans[0].context.trace_id, "032x")
    with psycopg.connect(installed_db) as conn:
        rows = conn.execute(
            "SELECT operation, kind, status_code, status_message, service, parent_span_id,"
            " attributes, events, links, scope_name FROM monitoring.spans"
            " WHERE trace_id = %s ORDER BY start_time",
            (trace_id,),
        ).fetchall()
        root, child = rows
        assert root[:3] == ("POST /pay", "server", "unset")
        assert root[4] == "checkout"
        assert root[5] is None
        assert root[6] == {"http.route": "/pay", "http.response.status_code": 500, "retry": False}
        assert child[:4] == ("charge", "client", "error", "gateway timed out")
        assert child[5] == format(spans[0].context.span_id, "016x")
        assert child[6] == {"ratio": 0.5, "tags": ["a", "b"], "bad": "NaN"}
        assert [(e["name"], e["attributes"]) for e in child[7]] == [("retrying", {"attempt": 2})]
        assert child[8][0]["span_id"] == child[5]
        assert child[9] == "tests"
        trace = conn.execute(
            "SELECT root_service, root_operation, span_count, error FROM monitoring.traces"
            " WHERE trace_id = %s",
            (trace_id,),
        ).fetchone()
        assert trace == ("checkout", "POST /pay", 2, True)


def test_a_retried_export_stores_nothing_twice(
    installed_db: str, exporter: PostgresSpanExporter
) -> None:
    spans = finished_spans()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert (exporter.exported_spans, exporter.duplicate_spans) == (2, 2)
    with psycopg.connect(installed_db) as conn:
        assert conn.execute("SELECT count(*) FROM monitoring.spans").fetchone() == (2,)
        assert conn.execute("SELECT span_count FROM monitoring.traces").fetchone() == (2,)


def test_refused_spans_are_counted_and_the_rest_stored(
    exporter: PostgresSpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    spans = finished_spans()
    old = spans[0]._start_time - 400 * 86400 * 10**9  # before the retention window
    spans[0]._start_time, spans[0]._end_time = old, old + 1000
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert (exporter.exported_spans, exporter.rejected_spans) == (1, 1)
    assert "retention window" in caplog.text


def test_without_the_role_an_export_fails_and_counts_its_spans(installed_db: str) -> None:
    exporter = PostgresSpanExporter(
        login_role(installed_db, "pgm_span_reader", "monitoring_reader")
    )
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.FAILURE
        assert exporter.dropped_spans == 2
    finally:
        exporter.shutdown()


def test_after_shutdown_exports_fail_and_flush_returns(exporter: PostgresSpanExporter) -> None:
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert exporter.export(finished_spans()) is SpanExportResult.FAILURE


@pytest.mark.skipif(not (BIN / "initdb").exists(), reason="needs initdb")
def test_with_the_database_stopped_exports_fail_within_their_bound(
    server: Server,  # noqa: F811 - test_outage's fixture
    app_db: str,  # noqa: F811
) -> None:
    exporter = PostgresSpanExporter(app_db, timeout=1.0)
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=50)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests")
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
        server.stop("fast")
        try:
            started = time.monotonic()
            assert exporter.export(finished_spans()) is SpanExportResult.FAILURE
            assert time.monotonic() - started < exporter.timeout + SLACK
            started = time.monotonic()
            assert exporter.export(finished_spans()) is SpanExportResult.FAILURE
            assert time.monotonic() - started < 0.1, "the breaker refuses at once"
            assert exporter.dropped_spans == 4

            # the application's spans meanwhile: ending one never waits on the database
            longest = 0.0
            for _ in range(200):
                started = time.monotonic()
                with tracer.start_as_current_span("work"):
                    pass
                longest = max(longest, time.monotonic() - started)
                time.sleep(0.005)
            assert longest < 0.05
            assert processor.force_flush(5000)
        finally:
            server.start()
        deadline = time.monotonic() + 15
        while exporter.export(finished_spans()) is not SpanExportResult.SUCCESS:
            assert time.monotonic() < deadline, "the exporter found the database back"
            time.sleep(0.2)
        assert exporter.dropped_spans > 4
    finally:
        provider.shutdown()


def test_a_span_continuing_a_remote_callers_trace(
    installed_db: str, exporter: PostgresSpanExporter
) -> None:
    keep = Keep()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(keep))
    caller = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    tracer = provider.get_tracer("tests")
    with (
        tracer.start_as_current_span(
            "GET /x", kind=SpanKind.SERVER, context=set_span_in_context(NonRecordingSpan(caller))
        ),
        tracer.start_as_current_span("inner"),
    ):
        pass
    assert exporter.export(keep.spans) is SpanExportResult.SUCCESS
    with psycopg.connect(installed_db) as conn:
        rows = conn.execute(
            "SELECT operation, kind, trace_id, parent_span_id FROM monitoring.spans"
            " ORDER BY start_time"
        ).fetchall()
    entry, inner = rows
    assert entry == ("GET /x", "server", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert inner[:3] == ("inner", "internal", entry[2])
