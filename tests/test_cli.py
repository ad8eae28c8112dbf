"""The pg-monitoring command as users run it."""

from __future__ import annotations

import json

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
