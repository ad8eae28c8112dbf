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

    def become_citus(self, added: int) -> None:
        """As an operator turns a database in use into a Citus coordinator: citus in it and
        in each worker's database, the coordinator's host set, the first `added` workers
        added (the others are left for monitoring.add_worker)."""
        for worker in self.workers:
            with psycopg.connect(worker, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(self.coordinator, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")
            conn.execute(
                "SELECT citus_set_coordinator_host(%s, %s::integer)", (self.host, self.port)
            )
            for port in self.ports[:added]:
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


def folded(read: dict[str, Any]) -> dict[str, Any]:
    return {**read, "issues": [{**i, "substatus": None} for i in read["issues"]]}


def moved(nodes: Nodes, *, maintained: bool) -> None:
    with running(nodes.coordinator) as run:
        run.conn.execute("CREATE EXTENSION pg_monitoring")
        fill(run)
        if maintained:
            # a database in use: its daily partitions made by maintenance, the rows moved in
            run.rows("SELECT monitoring.run_maintenance()")
        normalise = Normaliser(run.t0)
        before = reads(run, normalise)
        nodes.become_citus(added=len(nodes.ports) - 1)
        placed = run.rows("SELECT * FROM monitoring.distribute()")
        assert {p["placement"] for p in placed} == {"distributed", "reference", "coordinator"}
        assert reads(run, normalise) == before, "the rows read the same, from the shards"
        # the coordinator keeps no copy of the rows moved (Citus leaves them on its disk until
        # truncate_local_data_after_distributing_table, which distribute() calls)
        local = run.row(
            "SELECT count(*) AS tables, sum(pg_relation_size(c.oid)) AS bytes "
            "FROM pg_dist_partition AS d JOIN pg_class AS c ON c.oid = d.logicalrelid "
            "WHERE c.relnamespace = 'monitoring'::regnamespace AND c.relkind = 'r'"
        )
        assert local["tables"] > 0
        assert local["bytes"] == 0
        # maintenance goes on: today's rows moved out of DEFAULT (a new install's), and new
        # days' partitions, whose shells Citus creates on each worker under the parent made
        # there by CREATE EXTENSION
        ran = run.row("SELECT monitoring.run_maintenance() AS r")["r"]
        assert "failed" not in ran, ran
        ahead = run.row(
            "SELECT monitoring.ensure_error_partitions(30) AS errors, "
            "monitoring.ensure_trace_partitions(30) AS spans"
        )
        assert ahead["errors"] > 0
        assert ahead["spans"] > 0
        # (but an issue's substatus: after a fold it follows its earliest event, not its first
        # capture; cases.COUNTS)
        assert folded(reads(run, normalise)) == folded(before), "and the same after maintenance"
        # a worker added now: Citus creates pg_monitoring there (the old keys) and a shell of
        # every partition, which citus_add_node alone could not ("multiple primary keys")
        run.rows("SELECT monitoring.add_worker(%s, %s::integer)", (nodes.host, nodes.ports[-1]))
        ahead = run.row("SELECT monitoring.ensure_error_partitions(40) AS errors")
        assert ahead["errors"] > 0
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


def test_distribute_moves_the_rows_of_a_database_in_use(nodes: Nodes) -> None:
    """After maintenance has made daily partitions and moved the rows into them."""
    moved(nodes, maintained=True)
