"""Another language over a DSN: a Node program reports an error with the real @sentry/node
(npm) to `pg-monitoring serve`'s Sentry ingest; it is stored as one issue, as Python's are.
Runs where `node` is on the machine (npm's registry installs the SDK, pinned by
tests/node_sentry/package-lock.json, once); skipped, with the reason, elsewhere or when npm
can not install it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from .conftest import login_role
from .test_sentry_ingest import add_project, outcomes, parts
from .test_server import serve

NODE_PROJECT = Path(__file__).resolve().parent / "node_sentry"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    if not (NODE_PROJECT / "node_modules" / "@sentry" / "node").is_dir():
        try:
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_PROJECT,
                check=True,
                timeout=180,
                capture_output=True,
            )
        except (subprocess.SubprocessError, OSError) as error:
            pytest.skip(f"npm could not install @sentry/node: {error}")
    return NODE_PROJECT


def test_a_node_service_reports_through_a_dsn(node_sdk: Path, installed_db: str) -> None:
    writer = login_role(installed_db, "pgm_test_node_sentry", "monitoring_writer")
    with serve(writer) as server:
        dsn = add_project(installed_db, "node-shop", host=server.url.removeprefix("http://"))
        done = subprocess.run(
            ["node", "report.mjs"],
            cwd=node_sdk,
            env={**os.environ, "SENTRY_DSN": dsn},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    event_id = done.stdout.strip().splitlines()[-1]
    with psycopg.connect(installed_db) as conn:
        issue = conn.execute(
            """SELECT i.service, i.environment, i.exception_type, i.platform, e.message
            FROM monitoring.error_events AS e JOIN monitoring.issues AS i ON i.id = e.issue_id
            WHERE e.event_id = %s""",
            (event_id,),
        ).fetchall()
    assert len(issue) == 1, issue
    service, environment, exception_type, platform, _message = issue[0]
    assert (service, environment, exception_type, platform) == (
        "node-shop-svc",
        "node-test",
        "TypeError",
        "node",
    )
    assert outcomes(installed_db, parts(dsn)[1])[("accepted", "error", "")] == 1
