"""`pg-monitoring traces`, `trace ID` and `logs` on real data: a trace made with the SDK and
exported through PostgresSpanExporter, an error captured in one of its spans, its logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from pg_monitoring import ErrorTracker
from pg_monitoring.cli import main
from pg_monitoring.logs import PostgresLogHandler
from pg_monitoring.traces import PostgresSpanExporter

from .conftest import login_role


@dataclass
class Stored:
    trace_id: str
    slow_trace_id: str
    reader: str
    writer: str


def run(*args: str, columns: int = 80) -> str:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def stored(installed_db: str) -> Stored:
    writer = login_role(installed_db, "pgm_cli_writer", "monitoring_writer")
    exporter = PostgresSpanExporter(writer)
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    payments = TracerProvider(resource=Resource.create({"service.name": "payments"}))
    payments.add_span_processor(BatchSpanProcessor(exporter))
    tracker = ErrorTracker(writer, service="shop")
    handler = PostgresLogHandler(writer, service="shop")
    logger = logging.getLogger("tests.cli")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as root:
            logger.info("checkout started for cart 99")
            with tracer.start_as_current_span("load cart"):
                time.sleep(0.01)
            with (
                tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT),
                payments.get_tracer("pay").start_as_current_span(
                    "POST /charge with a name far too long for its column", kind=SpanKind.SERVER
                ) as charge,
            ):
                time.sleep(0.02)
                try:
                    raise TimeoutError("gateway timed out after 30s")
                except TimeoutError as error:
                    tracker.capture_exception(error)
                    logger.exception("charge failed")
                    charge.set_status(Status(StatusCode.ERROR, "gateway timed out"))
            root.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span("GET /report", kind=SpanKind.SERVER) as slow:
            time.sleep(0.3)
        assert handler.flush(10)
        assert provider.force_flush()
        assert payments.force_flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
        tracker.close()
        provider.shutdown()
        payments.shutdown()
    return Stored(
        trace_id=format(root.get_span_context().trace_id, "032x"),
        slow_trace_id=format(slow.get_span_context().trace_id, "032x"),
        reader=login_role(installed_db, "pgm_cli_reader", "monitoring_reader"),
        writer=writer,
    )


def test_trace_draws_a_waterfall_that_fits_80_columns(stored: Stored) -> None:
    out = run("trace", stored.trace_id, "--dsn", stored.reader)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert lines[0] == f"trace {stored.trace_id}"
    assert lines[1].startswith("shop: POST /checkout | ")
    assert "| 4 spans |" in lines[1]
    spans = lines[3:]
    names = [line[:27].rstrip() for line in spans if "█" in line]
    assert names == [
        "POST /checkout",
        "  load cart",
        "  charge card",
        "    POST /charge with a na…",
    ]
    charge = next(line for line in spans if line.startswith("    POST /charge"))
    assert "payments" in charge
    assert charge.endswith(" !"), "a span in error is marked"
    assert charge.rstrip(" !").endswith(" ms")
    assert any("error #" in line and "TimeoutError: gateway timed out" in line for line in spans)
    assert any("status: gateway timed out" in line for line in spans)


def test_trace_json_and_an_unknown_trace(stored: Stored) -> None:
    detail = json.loads(run("trace", stored.trace_id, "--json", "--dsn", stored.reader))
    assert detail["trace"]["span_count"] == 4
    assert [s["depth"] for s in detail["spans"]] == [0, 1, 1, 2]
    assert detail["spans"][3]["errors"][0]["exception_type"] == "TimeoutError"
    result = CliRunner().invoke(main, ["trace", "0" * 31 + "1", "--dsn", stored.reader])
    assert result.exit_code == 1
    assert "no trace" in result.output


def test_traces_lists_filters_and_sorts(stored: Stored) -> None:
    newest = json.loads(run("traces", "--json", "--dsn", stored.reader))
    assert [t["trace_id"] for t in newest] == [stored.slow_trace_id, stored.trace_id]
    errors = json.loads(run("traces", "--errors", "--json", "--dsn", stored.reader))
    assert [t["trace_id"] for t in errors] == [stored.trace_id]
    assert errors[0]["root_operation"] == "POST /checkout"
    slow = json.loads(run("traces", "--slow", "--limit", "1", "--json", "--dsn", stored.reader))
    assert [t["trace_id"] for t in slow] == [stored.slow_trace_id]
    assert json.loads(run("traces", "--service", "nobody", "--json", "--dsn", stored.reader)) == []
    assert json.loads(run("traces", "--since", "1h", "--json", "--dsn", stored.reader))
    table = run("traces", "--dsn", stored.reader)
    assert all(len(line) <= 80 for line in table.splitlines()), table
    assert stored.trace_id in table
    assert "shop: POST /checkout" in table


def test_logs_by_trace_level_and_words(stored: Stored) -> None:
    records = json.loads(run("logs", "--trace", stored.trace_id, "--json", "--dsn", stored.reader))
    assert [r["body"] for r in records] == ["checkout started for cart 99", "charge failed"]
    errors = json.loads(run("logs", "--level", "error", "--json", "--dsn", stored.reader))
    assert [r["body"] for r in errors] == ["charge failed"]
    found = json.loads(
        run("logs", "--grep", "cart", "--since", "1h", "--json", "--dsn", stored.reader)
    )
    assert [r["body"] for r in found] == ["checkout started for cart 99"]
    wrong = CliRunner().invoke(main, ["logs", "--level", "loud", "--dsn", stored.reader])
    assert wrong.exit_code == 1
    assert "--level must be one of trace, debug, info, warn, error, fatal" in wrong.output
    text = run("logs", "--trace", stored.trace_id, "--dsn", stored.reader)
    assert "info  shop checkout started for cart 99 trace=" in text
    assert "error shop charge failed" in text


def test_logs_follow_prints_new_records(stored: Stored) -> None:
    command = [sys.executable, "-m", "pg_monitoring", "logs", "--follow", "--json",
               "--grep", "followed", "--dsn", stored.reader]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    ) as follower:
        try:
            time.sleep(1.5)  # it has printed what there was (nothing) and polls
            handler = PostgresLogHandler(stored.writer, service="shop")
            logger = logging.getLogger("tests.follow")
            logger.addHandler(handler)
            logger.warning("followed record one")
            logger.warning("followed record two")
            handler.close()
            logger.removeHandler(handler)
            assert follower.stdout is not None
            first = json.loads(follower.stdout.readline())
            second = json.loads(follower.stdout.readline())
            assert [first["body"], second["body"]] == ["followed record one", "followed record two"]
        finally:
            follower.terminate()
            follower.wait(10)
