"""Another language: a Node program instrumented with @opentelemetry/sdk-node (npm) exports a
trace and a log record over OTLP/HTTP (protobuf) to `pg-monitoring serve`; they land in the
same tables as Python's. Runs where `node` is on the machine (npm's registry installs the
SDK, pinned by tests/node/package-lock.json, once); skipped, with the reason, elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from .conftest import login_role
from .test_server import add_key, serve

NODE_PROJECT = Path(__file__).resolve().parent / "node"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    if not (NODE_PROJECT / "node_modules" / "@opentelemetry" / "sdk-node").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_PROJECT,
            check=True,
            timeout=300,
        )
    return NODE_PROJECT


def test_a_node_service_exports_to_serve(node_sdk: Path, installed_db: str) -> None:
    writer = login_role(installed_db, "pgm_test_node", "monitoring_writer")
    key = add_key(installed_db, "node")
    with serve(writer) as server:
        done = subprocess.run(
            ["node", "export.mjs"],
            cwd=node_sdk,
            env={
                **os.environ,
                "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
                "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {key}",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    trace_id = done.stdout.strip().splitlines()[-1]
    with psycopg.connect(installed_db) as conn:
        trace = conn.execute(
            """SELECT root_service, root_operation, span_count, error
            FROM monitoring.traces WHERE trace_id = %s""",
            (trace_id,),
        ).fetchone()
        tree = conn.execute(
            """SELECT depth, operation, kind, status_code, status_message, span_id
            FROM monitoring.trace_tree(%s)""",
            (trace_id,),
        ).fetchall()
        logs = conn.execute(
            "SELECT body, severity, service, span_id FROM monitoring.search_logs(p_trace_id => %s)",
            (trace_id,),
        ).fetchall()
    assert trace == ("node-shop", "GET /basket", 2, True)
    assert [row[:5] for row in tree] == [
        (0, "GET /basket", "server", "error", None),
        (1, "SELECT basket", "client", "error", 'relation "basket" does not exist'),
    ]
    assert logs == [("basket query failed", "error", "node-shop", tree[1][5])]
