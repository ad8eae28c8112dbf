"""Moving an existing database to Citus (docs/scaling.md): a database that has been capturing
and ingesting, then `monitoring.distribute()`; what was stored reads the same afterwards and
capture goes on in the same issues.

Each test makes a database of its own on every node of the cluster, installs pg_monitoring
and writes to it as on a single server, then makes it a Citus coordinator (citus in it and
on each worker, the workers added: Citus keeps its nodes per database) and distributes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .cases import (
    ERRORS,
    ISSUES,
    Normaliser,
    Run,
    doc_events,
    logs_request,
    running,
    two_services,
)

READS = {
    "issues": ISSUES,
    "errors": ERRORS,
    "spans": "SELECT * FROM monitoring.spans ORDER BY start_time, span_id",
    "traces": "SELECT * FROM monitoring.traces ORDER BY trace_id",
    "logs": "SELECT * FROM monitoring.logs ORDER BY time",
}


@dataclass
class Nodes:
    """A database of the same name on the coordinator's server and each worker's."""

    coordinator: str
    workers: list[str]
    host: str
    port: str
    ports: list[str]

    def become_citus(self) -> None:
        """As an operator turns a database in use into a Citus coordinator: citus in it and
        in each worker's database, the coordinator's host set, the workers added."""
        for worker in self.workers:
            with psycopg.connect(worker, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(self.coordinator, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")
            conn.execute(
                "SELECT citus_set_coordinator_host(%s, %s::integer)", (self.host, self.port)
            )
            for port in self.ports:
                conn.execute("SELECT citus_add_node(%s, %s::integer)", (self.host, port))


@pytest.fixture
def nodes(citus_dsn: str) -> Iterator[Nodes]:
    """A new, empty database on every node of the cluster (no citus in it yet)."""
    ports = os.environ.get("CITUS_WORKER_PORTS", "").split()
    if not ports:
        pytest.skip("CITUS_WORKER_PORTS (set by tools/citus_cluster.sh) names no workers")
    params = conninfo_to_dict(citus_dsn)
    host = str(params.get("host") or os.environ.get("PGHOST", "127.0.0.1"))
    port = str(params.get("port") or os.environ.get("PGPORT", "5432"))
    name = f"pgm_{uuid.uuid4().hex[:10]}"
    servers = [make_conninfo(citus_dsn, host=host, port=p) for p in [port, *ports]]
    for server in servers:
        with psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    databases = [make_conninfo(server, dbname=name) for server in servers]
    try:
        yield Nodes(databases[0], databases[1:], host, port, ports)
    finally:
        for server in servers:
            with psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def fill(run: Run) -> None:
    """Errors, spans and logs, as a database in use holds them."""
    doc_events(run)
    two_services(run)
    run.rows("SELECT monitoring.record_logs(%s::jsonb)", (json.dumps(logs_request(run)),))


def reads(run: Run, normalise: Normaliser) -> dict[str, Any]:
    return normalise({name: run.rows(query) for name, query in READS.items()})


def moved(nodes: Nodes, *, maintained: bool) -> None:
    with running(nodes.coordinator) as run:
        run.conn.execute("CREATE EXTENSION pg_monitoring")
        fill(run)
        if maintained:
            # a database in use: its daily partitions made by maintenance, the rows moved in
            run.rows("SELECT monitoring.run_maintenance()")
        normalise = Normaliser(run.t0)
        before = reads(run, normalise)
        nodes.become_citus()
        placed = run.rows("SELECT * FROM monitoring.distribute()")
        assert {p["placement"] for p in placed} == {"distributed", "reference", "coordinator"}
        assert reads(run, normalise) == before, "the rows read the same, from the shards"
        # the coordinator's own copies are left on disk, unread (Citus's NOTICE): freed so
        local = run.row(
            "SELECT count(*) AS n FROM pg_dist_partition AS d, "
            "LATERAL truncate_local_data_after_distributing_table(d.logicalrelid) AS t "
            "WHERE d.logicalrelid::regclass::text LIKE 'monitoring.%%' "
            "AND NOT d.logicalrelid::regclass::text ~ '_(p[0-9]{8}|default)$'"
        )
        assert local["n"] > 0
        assert reads(run, normalise) == before, "and still read the same"
        # capture goes on: into an issue captured before, and a new one with a new id
        issues = {i["fingerprint"]: i for i in run.rows(ISSUES)}
        again = run.row(
            "SELECT * FROM monitoring.capture_error('OperationalError', 'could not connect', "
            "p_environment => 'production', p_fingerprint => ARRAY['database_connection_error'])"
        )
        new = run.row("SELECT * FROM monitoring.capture_error('NewError', 'after the move')")
        assert again["issue_id"] == issues["database_connection_error"]["id"]
        assert new["issue_id"] > max(i["id"] for i in issues.values())
        counted = run.row(
            "SELECT times_seen FROM monitoring.issues WHERE id = %s", (again["issue_id"],)
        )
        assert counted["times_seen"] == issues["database_connection_error"]["times_seen"] + 1


def test_distribute_moves_the_rows_of_a_new_install(nodes: Nodes) -> None:
    """Before its first maintenance run: the rows are all in the DEFAULT partitions."""
    moved(nodes, maintained=False)


@pytest.mark.xfail(
    reason="distribute() after run_maintenance has made daily partitions (LIKE + ATTACH): "
    "Citus's shards of error_events' partitions get two primary keys once the key is widened "
    'to include issue_id: \'multiple primary keys for table "error_events_p..." are not '
    "allowed' (trace_spans' partitions, whose key is not widened, distribute)",
    raises=psycopg.Error,
    strict=False,
)
def test_distribute_moves_the_rows_of_a_database_in_use(nodes: Nodes) -> None:
    moved(nodes, maintained=True)
