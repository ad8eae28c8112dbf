"""Sentry's ingest protocol on `pg-monitoring serve` (POST /api/<id>/envelope/, /store/), with
projects from `pg-monitoring projects add`: the real sentry-sdk over a DSN (gzip), quotas it
backs off from, keys, size bounds and a zip bomb, every Content-Encoding, every item type,
and `pg-monitoring stats`. Everything real: a uvicorn process, the throwaway cluster."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import brotli
import httpx
import psycopg
import pytest
import sentry_sdk
import zstandard
from click.testing import CliRunner
from psycopg.rows import dict_row

from pg_monitoring.cli import main

from .conftest import login_role
from .test_server import Serve, serve

WRITER = "pgm_test_sentry_ingest"


def rows(dsn: str, text: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(text, params).fetchall()


def add_project(dsn: str, name: str, *options: str, host: str = "127.0.0.1:4318") -> str:
    """`pg-monitoring projects add NAME --service ...`: the DSN it prints."""
    result = CliRunner().invoke(
        main,
        [
            "projects",
            "add",
            name,
            "--dsn",
            dsn,
            "--service",
            f"{name}-svc",
            "--host",
            host,
            *options,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def parts(project_dsn: str) -> tuple[str, int]:
    """(public key, project id) of a DSN."""
    key = project_dsn.split("://", 1)[1].split("@", 1)[0]
    return key, int(project_dsn.rsplit("/", 1)[1])


def outcomes(dsn: str, project_id: int) -> dict[tuple[str, str, str], int]:
    return {
        (r["outcome"], r["category"], r["reason"]): r["quantity"]
        for r in rows(
            dsn,
            """SELECT outcome, category, reason, sum(quantity)::int AS quantity
            FROM monitoring.sentry_outcomes WHERE project_id = %s
            GROUP BY outcome, category, reason""",
            (project_id,),
        )
    }


def envelope(*items: tuple[dict[str, Any], bytes], header: dict[str, Any] | None = None) -> bytes:
    lines = [json.dumps(header or {}).encode()]
    for item_header, payload in items:
        lines += [json.dumps({**item_header, "length": len(payload)}).encode(), payload]
    return b"\n".join(lines) + b"\n"


def event(message: str, **fields: Any) -> bytes:
    return json.dumps(
        {
            "event_id": uuid.uuid4().hex,
            "timestamp": time.time(),
            "level": "error",
            "platform": "python",
            "exception": {"values": [{"type": "ValueError", "value": message}]},
            **fields,
        }
    ).encode()


def post(server: Serve, project_id: int, body: bytes, key: str | None, **headers: str):
    if key is not None:
        headers["X-Sentry-Auth"] = f"Sentry sentry_version=7, sentry_key={key}, sentry_client=t/1"
    return httpx.post(
        f"{server.url}/api/{project_id}/envelope/", content=body, headers=headers, timeout=30
    )


@pytest.fixture
def writer_dsn(installed_db: str) -> str:
    return login_role(installed_db, WRITER, "monitoring_writer")


@pytest.fixture
def server(writer_dsn: str) -> Iterator[Serve]:
    with serve(writer_dsn) as running:
        yield running


@contextmanager
def sentry_client(dsn: str, **options: Any) -> Iterator[sentry_sdk.Client]:
    sentry_sdk.init(dsn=dsn, **options)
    try:
        yield sentry_sdk.get_client()
    finally:
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.init()


def test_the_real_sdk_over_a_dsn_stores_one_issue(installed_db: str, server: Serve) -> None:
    host = server.url.removeprefix("http://")
    dsn = add_project(installed_db, "shop", "--environment", "staging", host=host)
    key, project_id = parts(dsn)
    assert dsn == f"http://{key}@{host}/{project_id}"
    assert key.startswith("pgm_")
    with sentry_client(dsn, _experiments={"transport_compression_algo": "gzip"}):
        try:
            raise KeyError("basket 42 is gone")
        except KeyError:
            event_id = sentry_sdk.capture_exception()
        sentry_sdk.flush(5)
    stored = rows(
        installed_db,
        """SELECT e.issue_id, i.service, i.environment, i.title
        FROM monitoring.error_events AS e JOIN monitoring.issues AS i ON i.id = e.issue_id
        WHERE e.event_id = %s""",
        (event_id,),
    )
    assert len(stored) == 1
    # the project's environment is for events without one; the SDK sends "production"
    assert stored[0]["service"] == "shop-svc"
    assert stored[0]["environment"] == "production"
    assert "KeyError" in stored[0]["title"]
    assert outcomes(installed_db, project_id)[("accepted", "error", "")] == 1


def test_over_quota_the_sdk_gets_429_and_backs_off(installed_db: str, server: Serve) -> None:
    dsn = add_project(installed_db, "noisy", host=server.url.removeprefix("http://"))
    key, project_id = parts(dsn)
    result = CliRunner().invoke(
        main, ["projects", "quota", "noisy", "--dsn", installed_db, "--per-hour", "3"]
    )
    assert result.exit_code == 0, result.output
    with sentry_client(dsn, _experiments={"transport_compression_algo": "gzip"}) as client:
        for n in range(4):  # 3 within the quota, the 4th answered 429
            sentry_sdk.capture_message(f"storm {n}", level="error")
            sentry_sdk.flush(5)
        transport = client.transport
        assert transport is not None
        # X-Sentry-Rate-Limits: the SDK stops sending errors until the hour ends
        until = transport._disabled_until.get("error")  # type: ignore[attr-defined]
        assert until is not None
        assert until.timestamp() > time.time() + 1
        for n in range(5):  # dropped by the SDK itself, reported in a client report
            sentry_sdk.capture_message(f"after {n}", level="error")
        sentry_sdk.flush(5)
    counts = outcomes(installed_db, project_id)
    assert counts[("accepted", "error", "")] == 3
    assert counts[("dropped", "error", "ratelimited")] == 1  # the one answered 429
    assert counts[("client_dropped", "error", "ratelimit_backoff")] == 5
    stored = rows(
        installed_db,
        "SELECT count(*) AS n FROM monitoring.error_events WHERE message LIKE 'storm%%'",
    )
    assert stored[0]["n"] == 3
    # and by hand: the headers
    answer = post(server, project_id, envelope(({"type": "event"}, event("x"))), key)
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > 0
    seconds, categories, scope, reason = answer.headers["X-Sentry-Rate-Limits"].split(":")
    assert seconds == answer.headers["Retry-After"]
    assert "error" in categories.split(";")
    assert (scope, reason) == ("project", "project_quota_hour")
    stats = CliRunner().invoke(main, ["stats", "--dsn", installed_db, "--json"])
    assert stats.exit_code == 0, stats.output
    dropped = [r for r in json.loads(stats.stdout) if r["outcome"] == "dropped"]
    assert dropped == [
        {
            "project_id": project_id,
            "project": "noisy",
            "outcome": "dropped",
            "category": "error",
            "reason": "ratelimited",
            "this_hour": 2,
            "last_24_hours": 2,
        }
    ]


def test_keys(installed_db: str, server: Serve) -> None:
    key, project_id = parts(add_project(installed_db, "keyed"))
    _other_key, other_id = parts(add_project(installed_db, "other"))
    body = envelope(({"type": "event"}, event("k")))
    assert post(server, project_id, body, None).status_code == 401
    assert post(server, project_id, body, "pgm_" + "0" * 64).status_code == 403
    assert post(server, other_id, body, key).status_code == 403  # another project's key
    assert post(server, 999_999, body, key).status_code == 403
    # the query parameter, and the envelope header's dsn
    by_query = httpx.post(
        f"{server.url}/api/{project_id}/envelope/?sentry_key={key}", content=body, timeout=30
    )
    assert by_query.status_code == 200
    in_header = envelope(
        ({"type": "event"}, event("h")), header={"dsn": f"http://{key}@h/{project_id}"}
    )
    ok = post(server, project_id, in_header, None)
    assert ok.status_code == 200
    assert len(ok.json()["id"]) == 32
    result = CliRunner().invoke(main, ["projects", "revoke", "keyed", "--dsn", installed_db])
    assert result.exit_code == 0, result.output
    assert post(server, project_id, body, key).status_code == 403
    listed = CliRunner().invoke(main, ["projects", "list", "--dsn", installed_db, "--json"])
    by_name = {p["name"]: p for p in json.loads(listed.stdout)}
    assert by_name["keyed"]["revoked_at"] is not None
    assert by_name["other"]["revoked_at"] is None


def test_an_event_item_over_1_mib_is_413_and_counted(installed_db: str, server: Serve) -> None:
    key, project_id = parts(add_project(installed_db, "big"))
    big = event("big", extra={"blob": "x" * (1024 * 1024)})
    answer = post(server, project_id, envelope(({"type": "event"}, big)), key)
    assert answer.status_code == 413
    assert outcomes(installed_db, project_id) == {("dropped", "error", "too_large"): 1}


def test_a_zip_bomb_is_refused_quickly_within_bounded_memory(
    installed_db: str, writer_dsn: str
) -> None:
    key, project_id = parts(add_project(installed_db, "bomb"))
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    header = envelope(header={"dsn": f"http://{key}@h/{project_id}"})
    zeros = bytes(1024 * 1024)
    bomb = compressor.compress(header + b'{"type":"attachment"}\n')
    bomb += b"".join(compressor.compress(zeros) for _ in range(100)) + compressor.flush()
    assert len(bomb) < 200 * 1024  # 100 MiB inflated
    with serve(writer_dsn) as server:  # the default bound: 16 MiB decompressed
        before = server.peak_memory()
        started = time.monotonic()
        answer = post(server, project_id, bomb, None, **{"Content-Encoding": "gzip"})
        assert answer.status_code == 413
        assert time.monotonic() - started < 5
        assert server.peak_memory() - before < 64 * 1024 * 1024
    # the key was in the envelope header: counted for the project
    assert outcomes(installed_db, project_id) == {("dropped", "error", "too_large"): 1}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "identity"])
def test_content_encodings(installed_db: str, server: Serve, encoding: str) -> None:
    key, project_id = parts(add_project(installed_db, f"enc-{encoding}"))
    body = envelope(({"type": "event"}, event(f"encoded {encoding}")))
    compressed = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "br": brotli.compress,
        "zstd": zstandard.ZstdCompressor().compress,
        "identity": bytes,
    }[encoding](body)
    answer = post(server, project_id, compressed, key, **{"Content-Encoding": encoding})
    assert answer.status_code == 200, answer.text
    stored = rows(
        installed_db,
        "SELECT count(*) AS n FROM monitoring.error_events WHERE exceptions @> %s::jsonb",
        (json.dumps([{"value": f"encoded {encoding}"}]),),
    )
    assert stored == [{"n": 1}]
    assert outcomes(installed_db, project_id) == {("accepted", "error", ""): 1}


def test_a_bad_body_is_400(installed_db: str, server: Serve) -> None:
    key, project_id = parts(add_project(installed_db, "bad"))
    assert post(server, project_id, b"not json\n", key).status_code == 400
    assert (
        post(server, project_id, b"plain", key, **{"Content-Encoding": "gzip"}).status_code == 400
    )
    assert post(server, project_id, b"{}", key, **{"Content-Encoding": "lzma"}).status_code == 415


def test_legacy_store(installed_db: str, server: Serve) -> None:
    key, project_id = parts(add_project(installed_db, "legacy", "--environment", "staging"))
    body = event("from store")
    answer = httpx.post(
        f"{server.url}/api/{project_id}/store/",
        content=gzip.compress(body),
        headers={"X-Sentry-Auth": f"Sentry sentry_key={key}", "Content-Encoding": "gzip"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.json() == {"id": json.loads(body)["event_id"]}
    issue = rows(
        installed_db,
        "SELECT i.service, i.environment FROM monitoring.error_events AS e "
        "JOIN monitoring.issues AS i ON i.id = e.issue_id WHERE e.event_id = %s",
        (json.loads(body)["event_id"],),
    )
    assert issue == [{"service": "legacy-svc", "environment": "staging"}]
    assert outcomes(installed_db, project_id) == {("accepted", "error", ""): 1}


def test_every_item_type(installed_db: str, server: Serve) -> None:
    key, project_id = parts(add_project(installed_db, "mixed"))
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    now = time.time()
    transaction = {
        "type": "transaction",
        "event_id": uuid.uuid4().hex,
        "transaction": "GET /mixed",
        "start_timestamp": now - 0.5,
        "timestamp": now,
        "contexts": {"trace": {"trace_id": trace_id, "span_id": span_id, "op": "http.server"}},
        "spans": [
            {
                "trace_id": trace_id,
                "span_id": uuid.uuid4().hex[:16],
                "parent_span_id": span_id,
                "op": "db",
                "description": "SELECT 1",
                "start_timestamp": now - 0.4,
                "timestamp": now - 0.3,
            }
        ],
    }
    logs = {
        "items": [
            {
                "timestamp": now,
                "level": "warn",
                "body": "mixed log",
                "trace_id": trace_id,
                "attributes": {"sentry.environment": {"value": "qa", "type": "string"}},
            }
        ]
    }
    report = {
        "timestamp": now,
        "discarded_events": [{"reason": "sample_rate", "category": "transaction", "quantity": 7}],
    }
    body = envelope(
        ({"type": "event"}, event("mixed")),
        ({"type": "transaction"}, json.dumps(transaction).encode()),
        ({"type": "log", "item_count": 1}, json.dumps(logs).encode()),
        ({"type": "client_report"}, json.dumps(report).encode()),
        ({"type": "session"}, b'{"sid": "x"}'),
        ({"type": "something_new"}, b"\x00\x01binary"),
    )
    answer = post(server, project_id, body, key)
    assert answer.status_code == 200, answer.text
    assert outcomes(installed_db, project_id) == {
        ("accepted", "error", ""): 1,
        ("accepted", "transaction", ""): 1,
        ("accepted", "span", ""): 2,
        ("accepted", "log_item", ""): 1,
        ("client_dropped", "transaction", "sample_rate"): 7,
        ("skipped", "session", ""): 1,
        ("skipped", "something_new", ""): 1,
    }
    trace = rows(
        installed_db,
        "SELECT root_service, root_operation, span_count FROM monitoring.traces "
        "WHERE trace_id = %s",
        (trace_id,),
    )
    assert trace == [{"root_service": "mixed-svc", "root_operation": "GET /mixed", "span_count": 2}]
    logged = rows(
        installed_db,
        "SELECT body, service FROM monitoring.search_logs(p_trace_id => %s)",
        (trace_id,),
    )
    assert logged == [{"body": "mixed log", "service": "mixed-svc"}]
    metrics = rows(installed_db, "SELECT labels, value FROM monitoring._sentry_ingest_metrics()")
    labels = [dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m["labels"])) for m in metrics]
    assert {
        (label["project"], label["outcome"], label["category"], m["value"])
        for label, m in zip(labels, metrics, strict=True)
    } >= {("mixed", "skipped", "something_new", 1), ("mixed", "accepted", "span", 2)}


def test_a_nul_character_is_stored_as_the_replacement_character(
    installed_db: str, server: Serve
) -> None:
    """jsonb refuses \\u0000, which SDKs write for a NUL in a string: U+FFFD stands for it,
    while the text \\u0000 (an escaped backslash) stays as it was."""
    key, project_id = parts(add_project(installed_db, "nul"))
    body = event("bytes \x00 and the text \\u0000")
    answer = post(server, project_id, envelope(({"type": "event"}, body)), key)
    assert answer.status_code == 200, answer.text
    stored = rows(
        installed_db,
        "SELECT message AS value FROM monitoring.error_events WHERE event_id = %s",
        (json.loads(body)["event_id"],),
    )
    assert stored == [{"value": "bytes \ufffd and the text \\u0000"}]


def test_concurrent_requests_are_stored_together_and_answered_each(
    installed_db: str, writer_dsn: str
) -> None:
    """Requests arriving while a call runs go into one sentry_ingest_many call (one
    transaction): each is answered alone, with its own event id or its own refusal."""
    project_dsn = add_project(installed_db, "together")
    key, project_id = parts(project_dsn)
    with psycopg.connect(installed_db, autocommit=True) as conn:
        database = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(f"ALTER DATABASE {database} SET track_functions = 'pl'")
    before = function_calls(installed_db)
    ids = [uuid.uuid4().hex for _ in range(48)]
    bodies = [
        envelope(({"type": "event"}, event(f"together {n}", event_id=event_id)))
        for n, event_id in enumerate(ids)
    ]

    async def post_all(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            auth = f"Sentry sentry_version=7, sentry_key={key}, sentry_client=t/1"
            wrong = "Sentry sentry_version=7, sentry_key=pgm_wrong, sentry_client=t/1"
            return await asyncio.gather(
                *(
                    client.post(
                        f"{url}/api/{project_id}/envelope/",
                        content=body,
                        # every eighth with a wrong key: refused alone, in the same calls
                        headers={"X-Sentry-Auth": wrong if n % 8 == 7 else auth},
                    )
                    for n, body in enumerate(bodies)
                )
            )

    with serve(writer_dsn, "--ingest-calls", "1") as running:
        answers = asyncio.run(post_all(running.url))
    for n, (event_id, answer) in enumerate(zip(ids, answers, strict=True)):
        if n % 8 == 7:
            assert answer.status_code == 403, answer.text
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"id": event_id}
    stored = rows(
        installed_db,
        "SELECT replace(event_id::text, '-', '') AS id FROM monitoring.error_events "
        "WHERE message LIKE 'together %%'",
    )
    assert sorted(r["id"] for r in stored) == sorted(
        event_id for n, event_id in enumerate(ids) if n % 8 != 7
    )
    # serve's sessions report their counts as they end (it has stopped)
    deadline = time.monotonic() + 10
    while True:
        after = function_calls(installed_db)
        calls = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        if calls.get("sentry_ingest") == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    # one request per sentry_ingest; fewer calls than requests, so some held several
    assert calls["sentry_ingest"] == len(ids), calls
    assert 1 <= calls["sentry_ingest_many"] < len(ids), calls


def function_calls(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return dict(
            conn.execute(
                "SELECT funcname, calls FROM pg_stat_user_functions "
                "WHERE funcname IN ('sentry_ingest', 'sentry_ingest_many')"
            ).fetchall()
        )
