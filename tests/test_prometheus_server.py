"""A real Prometheus (Debian's package) with the shipped configuration scrapes a real
`pg-monitoring serve` every second: PromQL through its HTTP API returns our series, every
expression of the shipped dashboards and alert rules evaluates without error, and the rules
load and evaluate healthy."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from . import grafana
from .alert_servers import free_port
from .conftest import REPO, login_role, poll, superuser
from .test_server import add_key, serve
from .test_server_metrics import scraped_db  # noqa: F401 - a fixture

PROMETHEUS = shutil.which("prometheus")
DEPLOY = REPO / "deploy" / "prometheus"

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (Debian package prometheus)"
)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url
        # one client: httpx.get would build a TLS context (~0.15 s) for every query
        self.client = httpx.Client(timeout=10)

    def api(self, path: str, **params: str) -> Any:
        response = self.client.get(f"{self.url}/api/v1/{path}", params=params)
        if response.status_code == 503:
            # "Service Unavailable" as text until its storage is ready: not ready yet
            response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]


def configuration(directory: Path, target: str, key: str) -> Path:
    """The shipped prometheus.yml and alerts.yml in `directory`, scraping `target` and
    evaluating every group every second, with `key` in the key file the configuration
    names."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    [job] = config["scrape_configs"]
    job.update(scrape_timeout="1s", static_configs=[{"targets": [target]}])
    (directory / job["authorization"]["credentials_file"]).write_text(key + "\n")
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    for group in rules["groups"]:
        group.pop("interval", None)
    (directory / "alerts.yml").write_text(yaml.safe_dump(rules))
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus_scraping(
    scraped_db: str,  # noqa: F811 - test_server_metrics's fixture: three issues of shop
    tmp_path: Path,
) -> Iterator[Prometheus]:
    with superuser(scraped_db) as conn:
        conn.execute("SELECT monitoring.run_maintenance()")
    role = login_role(scraped_db, "pgm_test_scraper", "monitoring_reader", "monitoring_writer")
    key = add_key(scraped_db, "prometheus", "scrape")
    with serve(role) as server:
        port = free_port()
        config = configuration(tmp_path, server.url.removeprefix("http://"), key)
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            prometheus = Prometheus(f"http://127.0.0.1:{port}")

            def scraped() -> bool:
                assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
                try:
                    up = prometheus.query('up{job="pg_monitoring"}')
                except httpx.HTTPError:
                    return False
                return bool(up) and up[0]["value"][1] == "1"

            assert poll(scraped, 15), "Prometheus did not scrape serve within 15 s"
            yield prometheus
            prometheus.client.close()
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_prometheus_scrapes_serve_and_every_expression_evaluates(
    prometheus_scraping: Prometheus,
) -> None:
    started = time.monotonic()
    prometheus = prometheus_scraping
    issues = prometheus.query('pg_monitoring_issues{status="unresolved"}')
    assert {(s["metric"]["service"], s["metric"]["job"], s["value"][1]) for s in issues} == {
        ("shop", "pg_monitoring", "2")
    }
    connections = prometheus.query("sum(pg_monitoring_database_connections)")
    assert float(connections[0]["value"][1]) >= 1
    # the process's own registry comes along on the same page
    assert prometheus.query("process_resident_memory_bytes")

    expressions = [(t.target["expr"], grafana.dashboard_of(t)) for t in grafana.expressions()]
    rules = [
        rule
        for group in yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    assert len(expressions) >= 20
    assert len(rules) >= 14
    for expr, dashboard in expressions:
        prometheus.query(grafana.interpolate(expr, dashboard, {}))  # status success, or says which
    for rule in rules:
        prometheus.query(rule["expr"])

    # the rules it loaded (the shipped alerts.yml) evaluate healthy; a rule not evaluated
    # yet shows Go's zero time, 0001-01-01
    def evaluated() -> list[dict[str, Any]]:
        loaded = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        return loaded if all(r["lastEvaluation"].startswith("2") for r in loaded) else []

    loaded = poll(evaluated, 10)
    assert {rule["name"] for rule in loaded} == {rule["alert"] for rule in rules}
    assert [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"] == []
    assert time.monotonic() - started < 15
