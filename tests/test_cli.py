"""The pg-monitoring command as users run it."""

from __future__ import annotations

import json

import psycopg
from click.testing import CliRunner

from pg_monitoring.cli import main
from pg_monitoring.installer import Scripts

NEWEST = Scripts().default_version


def test_status_json(installed_db: str) -> None:
    result = CliRunner().invoke(main, ["status", "--json", "--dsn", installed_db])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["installed"] is True
    assert report["version"] == NEWEST
    assert report["mode"] == "script"
    assert {"kind": "table", "name": "installed_versions"} in report["objects"]
    assert {"kind": "function", "name": "monitoring.version()"} in report["objects"]
    assert {r["role"] for r in report["roles"]} == {
        "monitoring_reader",
        "monitoring_writer",
        "monitoring_admin",
    }


def test_status_of_an_empty_database(database: str) -> None:
    result = CliRunner().invoke(main, ["status", "--dsn", database])
    assert result.exit_code == 0, result.output
    assert "not installed" in result.output


def test_maintain_reports_a_failed_step_and_runs_the_others(installed_db: str) -> None:
    with psycopg.connect(installed_db, autocommit=True) as conn:
        issue_id = conn.execute(
            "SELECT issue_id FROM monitoring.capture_message('maintained')"
        ).fetchone()[0]
        # a count row no fold can store: an index entry of 4,800 bytes that do not compress
        conn.execute(
            "INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at, user_key) "
            "SELECT %s, now(), string_agg(md5(i::text), '') FROM generate_series(1, 150) AS i",
            (issue_id,),
        )
    result = CliRunner().invoke(main, ["maintain", "--dsn", installed_db])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failed"]["fold"].startswith("54000: index row size")
    assert "partitions_created" in report, "the other steps ran"
    assert "maintenance step fold failed: 54000" in result.stderr
