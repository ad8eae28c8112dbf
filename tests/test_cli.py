"""The pg-monitoring command as users run it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

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


def test_the_installed_command_runs_the_demo(database: str) -> None:
    # The console script as `make demo` runs it, in a child process.
    command = Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "pg-monitoring"
    if not command.exists():
        command = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "pg-monitoring"
    result = subprocess.run(
        [str(command), "demo"],
        env={**os.environ, "DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Installed pg_monitoring {NEWEST}" in out
    assert "PaymentGatewayTimeout: gateway did not answer within 30s" in out
    assert 'password: "[Filtered]"' in out
    assert "is unresolved (regressed), seen 6 times" in out
    assert "get user:999            -> MISS" in out
    assert "worker: notification #1 to demo-webhook: sent" in out
    assert (
        "the receiver got: New issue in shop/production: ConnectionError: warehouse API refused"
        in out
    )
    assert "signature valid: True" in out
    assert '"events_folded": 12' in out
