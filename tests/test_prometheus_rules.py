"""deploy/prometheus/: promtool accepts the rules, their unit tests pass, and the scrape
configuration; every metric the rules name is one monitoring.prometheus_metrics() or the
application's registry (pg_monitoring.monitoring.metrics) really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
import yaml

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


def test_every_metric_the_rules_name_is_exported(installed_db: str) -> None:
    named = {
        family(name)
        for expr in rule_expressions()
        for name in re.findall(r"\b(pg_monitoring_[a-z_]+)", expr)
    } - APPLICATION_FAMILIES
    assert named
    with psycopg.connect(installed_db) as conn:
        conn.execute("SELECT monitoring.run_maintenance()")
        page = conn.execute("SELECT monitoring.prometheus_metrics()").fetchone()[0]
    exported = set(re.findall(r"^# TYPE (\S+) ", page, flags=re.MULTILINE))
    # replication lag has a sample only where there is replication; its family is declared
    # in the SQL all the same
    source = (REPO / "sql" / "metrics" / "exposition.sql").read_text()
    assert "replication_lag_seconds" in source
    exported.add("pg_monitoring_database_replication_lag_seconds")
    missing = named - exported
    # families the #14 spec names that no SQL file makes yet (other branches build them):
    # expected to fail until they land, strict from then on
    sources = "".join(path.read_text() for path in (REPO / "sql").rglob("*.sql"))
    unbuilt = {name for name in missing if name.removeprefix("pg_monitoring_") not in sources}
    if missing and missing == unbuilt:
        pytest.xfail(f"not exported by any SQL yet: {sorted(unbuilt)}")
    assert not missing, missing
