"""Exporters of several services writing the spans of the same traces at once, while
maintenance folds: every span stored once, every trace counted exactly, nobody waits on
anybody's trace row (no deadlock, no serialization error), and the fold changes nothing a
reader sees."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg

WRITERS = 4
TRACES = 200
ROUNDS = 5


def span(trace: int, service: int, parent: str | None, now_ns: int) -> dict[str, Any]:
    start = now_ns - 60_000_000_000 + service * 1_000_000
    return {
        "traceId": f"{trace:032x}",
        "spanId": f"{trace:08x}{service:08x}",
        "parentSpanId": parent or "",
        "name": f"op{service}",
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 5_000_000),
        "status": {"code": 2 if service == 1 else 0},
    }


def request(service: int, spans: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": f"service-{service}"}}
                        ]
                    },
                    "scopeSpans": [{"spans": spans}],
                }
            ]
        }
    )


def test_services_writing_the_same_traces_at_once(installed_db: str) -> None:
    now_ns = time.time_ns()
    # service 0 holds each trace's root; service k's span is the child of service k-1's.
    # Each writer sends its service's spans of every trace, in rounds, and each round a
    # retry of the one before: the same traces from all writers at the same moment.
    batches = {
        w: [
            request(
                w,
                [
                    span(t, w, None if w == 0 else f"{t:08x}{w - 1:08x}", now_ns)
                    # trace ids from 1: an all-zero id is invalid
                    for t in range(1 + r * TRACES // ROUNDS, 1 + (r + 1) * TRACES // ROUNDS)
                ],
            )
            for r in range(ROUNDS)
        ]
        for w in range(WRITERS)
    }
    barrier = threading.Barrier(WRITERS + 1)
    errors: list[BaseException] = []
    stored: list[int] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        try:
            with psycopg.connect(installed_db, autocommit=True) as conn:
                barrier.wait()
                for i, body in enumerate(batches[w]):
                    for attempt in (body, body) if i % 2 else (body,):
                        answer = conn.execute(
                            "SELECT monitoring.record_spans(%s::jsonb)", (attempt,)
                        ).fetchone()[0]
                        with lock:
                            stored.append(answer["stored"])
        except BaseException as error:
            errors.append(error)

    def maintainer() -> None:
        try:
            with psycopg.connect(installed_db, autocommit=True) as conn:
                barrier.wait()
                while any(t.is_alive() for t in threads):
                    conn.execute("SELECT monitoring.run_maintenance()")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    folding = threading.Thread(target=maintainer)
    for thread in [*threads, folding]:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    folding.join(timeout=60)

    assert errors == []
    assert sum(stored) == WRITERS * TRACES, "each span stored once, retries included"
    query = """SELECT count(*), sum(span_count), sum(error_count),
        count(*) FILTER (WHERE root_service = 'service-0' AND root_operation = 'op0'),
        count(*) FILTER (WHERE duration_ms = %s)
        FROM monitoring.traces"""
    expected = (TRACES, WRITERS * TRACES, TRACES, TRACES, TRACES)
    duration = (WRITERS - 1) * 1 + 5  # ms: the last service's span ends there
    with psycopg.connect(installed_db, autocommit=True) as conn:
        assert conn.execute(query, (duration,)).fetchone() == expected
        edges = conn.execute(
            "SELECT caller_service, callee_service, calls FROM monitoring.service_map() ORDER BY 1"
        ).fetchall()
        conn.execute("SELECT monitoring.run_maintenance()")
        assert conn.execute(query, (duration,)).fetchone() == expected, "the fold changes nothing"
        assert conn.execute("SELECT count(*) FROM monitoring.trace_parts").fetchone() == (
            TRACES,
        ), "one summary row per trace once folded"
        edges_after = conn.execute(
            "SELECT caller_service, callee_service, calls FROM monitoring.service_map() ORDER BY 1"
        ).fetchall()
    assert edges_after == [
        (f"service-{w - 1}", f"service-{w}", TRACES) for w in range(1, WRITERS)
    ], "every cross-service call found its parent, whichever batch came first"
    assert len(edges) <= WRITERS - 1
