"""PostgresLogHandler against a real server: records land in monitoring.logs with the trace,
span and request ids; an ERROR with an exception goes to the error tracker too, once; the
application never waits (a full queue drops and counts); flush and close are honoured.
JsonFormatter prints the same ids."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider

from pg_monitoring import ErrorTracker
from pg_monitoring.logs import JsonFormatter, PostgresLogHandler, request_id
from pg_monitoring.logs.context import mark_captured

from .conftest import login_role
from .test_tracker import free_port

tracer = TracerProvider().get_tracer("tests")


@pytest.fixture
def writer(installed_db: str) -> str:
    return login_role(installed_db, "pgm_log_writer", "monitoring_writer")


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("tests.app")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_records_are_stored_with_their_trace_span_and_request(
    installed_db: str, writer: str, app_logger: logging.Logger
) -> None:
    handler = PostgresLogHandler(
        writer, service="shop", resource={"deployment.environment": "test"}
    )
    app_logger.addHandler(handler)
    token = request_id.set("req-7")
    try:
        with tracer.start_as_current_span("checkout") as span:
            app_logger.info("order %s paid", 1234, extra={"user_id": 7, "amount": 9.5})
            app_logger.warning("slow gateway")
            app_logger.debug("details")
    finally:
        request_id.reset(token)
    app_logger.error("outside any request")
    assert handler.flush(10)
    assert (handler.stored_records, handler.dropped_records) == (4, 0)

    context = span.get_span_context()
    with psycopg.connect(installed_db) as conn:
        rows = conn.execute(
            "SELECT body, severity, severity_number, service, trace_id, span_id, attributes,"
            " resource FROM monitoring.logs ORDER BY time"
        ).fetchall()
    paid, slow, details, outside = rows
    assert paid[:4] == ("order 1234 paid", "info", 9, "shop")
    assert paid[4:6] == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    attributes = paid[6]
    assert attributes["user_id"] == 7
    assert attributes["amount"] == 9.5
    assert attributes["request.id"] == "req-7"
    assert attributes["logger.name"] == "tests.app"
    assert (
        attributes["code.function"] == "test_records_are_stored_with_their_trace_span_and_request"
    )
    assert paid[7]["deployment.environment"] == "test"
    assert (slow[1], slow[2], details[1], details[2]) == ("warn", 13, "debug", 5)
    assert outside[1:3] == ("error", 17)
    assert outside[4:6] == (None, None)
    assert "request.id" not in outside[6]


def test_an_error_with_an_exception_goes_to_the_tracker_once(
    installed_db: str, writer: str, app_logger: logging.Logger
) -> None:
    tracker = ErrorTracker(writer, service="shop")
    handler = PostgresLogHandler(writer, tracker=tracker)
    app_logger.addHandler(handler)
    try:
        with tracer.start_as_current_span("checkout") as span:
            try:
                {}["missing"]
            except KeyError:
                app_logger.exception("lookup failed", extra={"user_id": "7"})
            try:
                raise ValueError("seen already")
            except ValueError as error:
                mark_captured(error)  # as the middleware does before the server logs it
                app_logger.exception("again")
            app_logger.error("no exception here")
            try:
                raise RuntimeError("only a warning")
            except RuntimeError:
                app_logger.warning("recovered", exc_info=True)
        assert handler.flush(10)
    finally:
        tracker.close()
    trace_id = format(span.get_span_context().trace_id, "032x")
    with psycopg.connect(installed_db) as conn:
        errors = conn.execute(
            "SELECT exception_type, trace_id, level, context->>'user_id', context->>'logger',"
            " service FROM monitoring.errors"
        ).fetchall()
        assert errors == [("KeyError", trace_id, "error", "7", "tests.app", "shop")]
        stack = conn.execute(
            "SELECT attributes->>'exception.type', attributes->>'exception.stacktrace'"
            " FROM monitoring.logs WHERE body = 'lookup failed'"
        ).fetchone()
    assert stack[0] == "KeyError"
    assert '{}["missing"]' in stack[1]


def test_the_application_never_waits_and_a_full_queue_drops(app_logger: logging.Logger) -> None:
    # nothing listens on that port: every send fails at once, and the records wait
    handler = PostgresLogHandler(
        f"host=127.0.0.1 port={free_port()} dbname=none connect_timeout=1",
        max_queue=50,
        timeout=0.5,
    )
    app_logger.addHandler(handler)
    logging.getLogger("pg_monitoring").addHandler(handler)  # its own warnings: no loop
    try:
        longest = 0.0
        for number in range(200):
            started = time.monotonic()
            app_logger.info("record %s", number)
            longest = max(longest, time.monotonic() - started)
        assert longest < 0.05
        assert handler.stored_records == 0
        assert handler.queued_records <= 50 + 500  # the queue and the batch in flight
        assert handler.dropped_records >= 200 - handler.queued_records
        assert handler.flush(0.5) is False
        started = time.monotonic()
        queued = handler.queued_records
        handler.close(timeout=1.0)
        assert time.monotonic() - started < 1.0 + 0.5 + 0.5  # its bound, one batch's
        assert handler.dropped_records == 200
        assert queued > 0
    finally:
        logging.getLogger("pg_monitoring").removeHandler(handler)


def test_close_stores_what_is_queued(installed_db: str, writer: str) -> None:
    handler = PostgresLogHandler(writer)
    logger = logging.getLogger("tests.close")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for number in range(300):
            logger.info("record %s", number)
    finally:
        logger.removeHandler(handler)
    handler.close()
    assert (handler.stored_records, handler.dropped_records) == (300, 0)
    with psycopg.connect(installed_db) as conn:
        assert conn.execute("SELECT count(*) FROM monitoring.logs").fetchone() == (300,)


def test_the_json_formatter_carries_the_request_and_trace_ids() -> None:
    out = io.StringIO()
    stream = logging.StreamHandler(out)
    stream.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json")
    logger.addHandler(stream)
    logger.propagate = False
    token = request_id.set("req-9")
    try:
        with tracer.start_as_current_span("work") as span:
            logger.warning("hello %s", "there", extra={"user_id": 3})
        logger.warning("bare")
    finally:
        request_id.reset(token)
        logger.removeHandler(stream)
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["message"] == "hello there"
    assert inside["levelname"] == "WARNING"
    assert inside["user_id"] == 3
    assert inside["request_id"] == "req-9"
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["asctime"].endswith("Z")
    assert "trace_id" not in outside


def test_a_batch_sent_again_is_stored_once(installed_db: str, writer: str) -> None:
    """A batch whose answer was lost (a timeout after the commit) is resent: each record
    carries its log.record.uid, and record_logs stores it once."""
    handler = PostgresLogHandler(writer)
    try:
        record = logging.LogRecord("tests.resend", logging.WARNING, __file__, 1, "once", (), None)
        request = json.dumps(
            {"resourceLogs": [{"scopeLogs": [{"logRecords": [handler.encode(record)]}]}]}
        )
    finally:
        handler.close()
    with psycopg.connect(writer, autocommit=True) as conn:
        answers = [
            conn.execute("SELECT monitoring.record_logs(%s::jsonb)", (request,)).fetchone()[0]
            for _ in range(2)
        ]
    assert [(a["stored"], a["duplicates"]) for a in answers] == [(1, 0), (0, 1)]
    with psycopg.connect(installed_db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM monitoring.logs WHERE body = 'once'"
        ).fetchone() == (1,)
