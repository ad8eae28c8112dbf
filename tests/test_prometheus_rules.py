"""deploy/prometheus/: promtool accepts the rules, their unit tests pass, and the scrape
configuration; every metric the rules and the Grafana dashboards name is one
monitoring.prometheus_metrics() or the application's registry
(pg_monitoring.monitoring.metrics) really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from . import grafana
from .conftest import REPO

RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "alerts_test.yml"
CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
# The design document's families, exported by each application process (the issue #14 spec
# fixes their names); every other pg_monitoring_ name comes from the database.
APPLICATION_FAMILIES = {
    "pg_monitoring_graphql_requests_total",
    "pg_monitoring_graphql_request_duration_seconds",
    "pg_monitoring_graphql_query_complexity",
    "pg_monitoring_query_duration_seconds",
    "pg_monitoring_db_pool_connections",
    "pg_monitoring_db_pool_max_connections",
    "pg_monitoring_cache_hits_total",
    "pg_monitoring_cache_misses_total",
}

# The database families the #14 spec adds (sql/metrics/exposition.sql)
SPEC_FAMILIES = {
    "pg_monitoring_events_total",
    "pg_monitoring_issues_new_total",
    "pg_monitoring_issues_regressed_total",
    "pg_monitoring_spans_total",
    "pg_monitoring_span_errors_total",
    "pg_monitoring_span_duration_seconds",
    "pg_monitoring_ingest_dropped_total",
    "pg_monitoring_cache_store_hits_total",
    "pg_monitoring_cache_store_misses_total",
}

NOW_NS = time.time_ns()
ONE_SPAN = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeSpans": [
                {
                    "spans": [
                        {
                            "traceId": "1" * 32,
                            "spanId": "2" * 16,
                            "name": "GET /",
                            "kind": 2,
                            "startTimeUnixNano": str(NOW_NS - 2_000_000_000),
                            "endTimeUnixNano": str(NOW_NS - 1_000_000_000),
                        }
                    ]
                }
            ],
        }
    ]
}


def family(name: str) -> str:
    """The family a sample name belongs to (a histogram's _bucket, _sum and _count)."""
    return re.sub(r"_(bucket|sum|count)$", "", name)


PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)"
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_checks_the_rules_and_runs_their_tests() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_checks_the_scrape_configuration(tmp_path: Path) -> None:
    # the key file must exist for the full check: the shipped file names it beside itself
    for path in (CONFIG, RULES):
        shutil.copy(path, tmp_path)
    (tmp_path / "pg_monitoring.key").write_text("pgm_" + "0" * 64 + "\n")
    checked = promtool("check", "config", tmp_path / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "rules found" in checked.stdout


def rule_expressions() -> list[str]:
    return [
        rule["expr"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    ]


def named_families() -> set[str]:
    """The families the shipped rules and dashboards query."""
    panels = [target.target["expr"] for target in grafana.expressions()]
    return {
        family(name)
        for expr in rule_expressions() + panels
        for name in re.findall(r"\b(pg_monitoring_[a-z_]+)", expr)
    }


def test_the_application_families_they_name_are_the_registrys() -> None:
    metrics = pytest.importorskip("pg_monitoring.monitoring.metrics")
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    metrics.MetricsCollector(registry)
    page = generate_latest(registry).decode()
    exported = set(re.findall(r"^# TYPE (\S+) ", page, flags=re.MULTILINE))
    named = named_families() & APPLICATION_FAMILIES
    assert "pg_monitoring_graphql_requests_total" in named
    assert named <= exported, named - exported


def test_every_metric_the_rules_and_dashboards_name_is_exported(installed_db: str) -> None:
    named = named_families() - APPLICATION_FAMILIES
    assert named
    with psycopg.connect(installed_db) as conn:
        # an issue and a span, so that their families have samples
        conn.execute("SELECT monitoring.capture_message('card declined', 'error')")
        conn.execute("SELECT monitoring.record_spans(%s::jsonb)", (json.dumps(ONE_SPAN),))
        conn.execute("SELECT monitoring.run_maintenance()")
        page = conn.execute("SELECT monitoring.prometheus_metrics()").fetchone()[0]
    exported = set(re.findall(r"^# TYPE (\S+) ", page, flags=re.MULTILINE))
    # replication lag has a sample only where there is replication; its family is declared
    # in the SQL all the same
    source = (REPO / "sql" / "metrics" / "exposition.sql").read_text()
    assert "replication_lag_seconds" in source
    exported.add("pg_monitoring_database_replication_lag_seconds")
    # a family without samples on this data, named whole in the SQL (ingest drops: none here)
    sources = "".join(path.read_text() for path in sorted((REPO / "sql").rglob("*.sql")))
    missing = {name for name in named - exported if name not in sources}
    # the families the #14 spec adds, which other branches build: expected to be missing
    # until they land, strict from then on
    if missing and missing <= SPEC_FAMILIES:
        pytest.xfail(f"not exported by any SQL yet: {sorted(missing)}")
    assert not missing, missing
