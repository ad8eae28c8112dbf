"""What UNLOGGED means, shown on the real server: a crash empties the cache, a clean restart
keeps it, and the client carries on either way.

This restarts the cluster `make test` runs on (pg_virtualenv's "$PGVERSION regress"). That is
safe here: pytest runs one test at a time and no fixture keeps a connection across tests; the
restart costs two seconds, where a private second cluster would cost an initdb. Against a
server named by PG_MONITORING_TEST_DSN the test is skipped: we do not crash servers we did not
start.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from pg_monitoring import PgMonitoringError, SyncPostgresCache

pytestmark = pytest.mark.skipif(
    not os.environ.get("PG_CLUSTER_CONF_ROOT") or not os.environ.get("PGVERSION"),
    reason="needs the pg_virtualenv cluster of `make test`",
)


def cluster(*action: str) -> None:
    done = subprocess.run(
        ["pg_ctlcluster", os.environ["PGVERSION"], "regress", *action],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"pg_ctlcluster {' '.join(action)}: {done.stdout}{done.stderr}"


def eventually(call: Callable[[], Any], timeout: float = 30.0) -> Any:
    """The pool still holds connections to the old server: each fails once, then is replaced."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except PgMonitoringError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_crash_empties_the_cache_and_a_clean_restart_keeps_it(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        cache = SyncPostgresCache(pool)
        cache.set("kept", {"v": 1})
        cache.set("session:1", "x", ttl=3600)

        cluster("restart", "-m", "fast")
        assert eventually(lambda: cache.get("kept")) == {"v": 1}, "a clean restart keeps it"
        assert cache.ttl("session:1") > 3500

        cluster("stop", "-m", "immediate")
        cluster("start")
        assert eventually(lambda: cache.get("kept")) is None, "crash recovery truncated it"
        assert cache.stats()["entries"] == 0
        assert cache.set("after", 2)
        assert cache.get("after") == 2, "and the client works on"
