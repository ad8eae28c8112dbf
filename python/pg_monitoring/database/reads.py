"""Reading the database's health for `pg-monitoring db`: the `monitoring.database_*` views and
`monitoring.database_statements`, each a plain query (monitoring_reader; pg_monitor to see
other roles' sessions)."""

from __future__ import annotations

from typing import Any

from .._db.connection import Connector

_HEALTH = """
SELECT current_database() AS database_name, current_setting('server_version') AS version,
       h.*
FROM monitoring.database_health AS h
"""

_BLOCKING = "SELECT * FROM monitoring.database_blocking LIMIT %s"

# the sessions in a transaction or a query, the oldest transaction first
_ACTIVITY = "SELECT * FROM monitoring.database_activity LIMIT %s"

_STATEMENTS = "SELECT * FROM monitoring.database_statements(%s)"

_TABLES = "SELECT * FROM monitoring.database_tables LIMIT %s"

_REPLICATION = "SELECT * FROM monitoring.database_replication"


def report(db: Connector, top: int) -> dict[str, Any]:
    """Everything `pg-monitoring db` shows: the one-row health, then the first `top` rows of
    each list."""
    return {
        "health": db.fetch_all(_HEALTH)[0],
        "blocking": db.fetch_all(_BLOCKING, (top,)),
        "activity": db.fetch_all(_ACTIVITY, (top,)),
        "statements": db.fetch_all(_STATEMENTS, (top,)),
        "tables": db.fetch_all(_TABLES, (top,)),
        "replication": db.fetch_all(_REPLICATION),
    }
