"""The Citus cluster's fixtures: `make test-citus` sets PG_MONITORING_CITUS_DSN to the
coordinator's database (tools/citus_cluster.sh); without it the cluster's tests are skipped,
so that `make test` runs the single-server side alone.

The single-server side uses the top conftest's databases: under `make test-citus` those are
plain databases (no citus extension) on the coordinator's server.
"""

from __future__ import annotations

import os

import psycopg
import pytest
from psycopg import sql

# Tables that hold what the install put there, kept between cases
INSTALLED = ("installed_versions", "setting_definitions", "settings_snapshot")


@pytest.fixture(scope="session")
def citus_dsn() -> str:
    """The coordinator's database, with pg_monitoring installed and distributed."""
    dsn = os.environ.get("PG_MONITORING_CITUS_DSN")
    if dsn is None:
        pytest.skip("no Citus cluster: make test-citus sets PG_MONITORING_CITUS_DSN")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_monitoring")
        distributed = conn.execute(
            "SELECT FROM pg_dist_partition WHERE logicalrelid = 'monitoring.error_events'::regclass"
        ).rowcount
        if not distributed:
            conn.execute("SELECT monitoring.distribute()")
    return dsn


@pytest.fixture
def cluster_db(citus_dsn: str) -> str:
    """The cluster's database, emptied of everything written since the install."""
    empty(citus_dsn)
    return citus_dsn


def empty(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            sql.Identifier("monitoring", name)
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class AS c "
                "WHERE c.relnamespace = 'monitoring'::regnamespace AND c.relkind IN ('r', 'p') "
                "AND NOT c.relispartition AND c.relname <> ALL(%s) ORDER BY 1",
                (list(INSTALLED),),
            )
        ]
        # settings: its trigger keeps the snapshot, and TRUNCATE would not fire it
        conn.execute("DELETE FROM monitoring.settings")
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(tables)))
