"""deploy/prometheus/alerts.yml: promtool accepts the rules and their unit tests pass, and
every metric they name is one monitoring.prometheus_metrics() really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from .conftest import REPO

RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "alerts_test.yml"
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


def test_every_metric_the_rules_name_is_exported(installed_db: str) -> None:
    named = set(re.findall(r"\b(pg_monitoring_[a-z_]+)", RULES.read_text()))
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
    assert named <= exported, named - exported
