"""GET /metrics on pg-monitoring serve: the database's exposition and the process's own
registry on one page that promtool accepts; a scrape key; a writer-only role told what it
lacks."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest

from .conftest import login_role, superuser
from .test_server import add_key, serve
from .workload import otlp_spans

PROMTOOL = shutil.which("promtool")


@pytest.fixture
def scraped_db(installed_db: str) -> str:
    with superuser(installed_db) as conn:
        for message in ("card declined", "card declined", "stock ran out"):
            conn.execute(
                "SELECT monitoring.capture_message(%s, 'error', NULL, 'production', 'shop')",
                (message,),
            )
        # a server span (and its client child, not exported): the latency histogram's page
        conn.execute("SELECT monitoring.record_spans(%s::jsonb)", (json.dumps(otlp_spans()),))
        conn.execute("SELECT monitoring.run_maintenance()")
    return installed_db


def test_the_page_promtool_accepts_with_both_registries(scraped_db: str) -> None:
    role = login_role(scraped_db, "pgm_test_scraper", "monitoring_reader", "monitoring_writer")
    key = add_key(scraped_db, "prometheus", "scrape")
    traces_only = add_key(scraped_db, "exporter", "traces")
    with serve(role) as server:
        url = server.url + "/metrics"
        assert httpx.get(url, timeout=10).status_code == 401
        refused = httpx.get(url, headers={"Authorization": f"Bearer {traces_only}"}, timeout=10)
        assert refused.status_code == 401
        response = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    page = response.text
    lines = page.splitlines()
    issues = [line for line in lines if line.startswith("pg_monitoring_issues{")]
    assert issues == [
        'pg_monitoring_issues{environment="production",level="error",service="shop",'
        'status="unresolved"} 2'
    ]
    assert any(line.startswith("pg_monitoring_database_connections{") for line in lines)
    assert (
        'pg_monitoring_events_total{environment="production",level="error",service="shop"} 3'
        in lines
    )
    assert "# TYPE pg_monitoring_span_duration_seconds histogram" in lines
    assert any(line.startswith("pg_monitoring_span_duration_seconds_bucket{") for line in lines)
    assert any(line.startswith("pg_monitoring_cache_store_hits_total ") for line in lines)
    # the serving process's own registry follows (prometheus_client's default collectors)
    assert any(line.startswith("process_") or line.startswith("python_") for line in lines)
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=page, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_writer_only_role_is_told_what_it_lacks(installed_db: str) -> None:
    writer = login_role(installed_db, "pgm_test_serve", "monitoring_writer")
    with serve(writer, "--allow-anonymous") as server:
        response = httpx.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 500
    assert "GRANT monitoring_reader" in response.text
