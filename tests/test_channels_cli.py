"""`pg-monitoring channels` as a user meets it: the messages it prints, as a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .alert_servers import http_receiver

PG_MONITORING = str(Path(sys.executable).parent / "pg-monitoring")


def pg_monitoring(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PG_MONITORING, *args], capture_output=True, text=True, timeout=60)


def test_a_failed_test_notification_is_reported_once(installed_db: str) -> None:
    with http_receiver(status=400) as http:
        added = pg_monitoring(
            "channels",
            "add",
            "ops",
            "webhook",
            "--dsn",
            installed_db,
            "--secret",
            f"url={http.url}",
        )
        assert added.returncode == 0, added.stderr
        tested = pg_monitoring("channels", "test", "ops", "--dsn", installed_db)
    assert tested.returncode == 1
    assert tested.stdout == ""
    (line,) = tested.stderr.splitlines()
    assert line.startswith("Error: test notification #1 to ops: dead: "), line
    assert "400" in line
