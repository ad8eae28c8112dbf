"""The database health views with real sessions: one holding a lock, one waiting for it, a
reader looking at both; what a reader without pg_monitor sees; table statistics after
committed changes."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg import sql

from .conftest import lock_wait, login_role, poll, superuser

WAIT = 10.0  # seconds a thread below is waited for at most


def test_a_lock_wait_shows_who_waits_for_whom(installed_db: str) -> None:
    with superuser(installed_db) as setup:
        setup.execute("CREATE TABLE public.orders (id integer)")
    with (
        lock_wait(installed_db, "public.orders") as wait,
        psycopg.connect(installed_db, autocommit=True) as reader,
    ):
        holder_pid, waiter_pid = wait.holder_pid, wait.waiter_pid
        pairs = poll(
            lambda: reader.execute(
                "SELECT blocked_pid, blocking_pid, blocking_state, waiting_seconds, "
                "blocked_query FROM monitoring.database_blocking"
            ).fetchall()
        )
        assert [p[:3] for p in pairs] == [(waiter_pid, holder_pid, "idle in transaction")]
        assert pairs[0][3] >= 0
        assert 'FROM "public"."orders"' in pairs[0][4]

        activity = {
            row[0]: row[1:]
            for row in reader.execute(
                "SELECT pid, state, wait_event_type, blocked_by, transaction_seconds "
                "FROM monitoring.database_activity"
            )
        }
        assert activity[waiter_pid][:3] == ("active", "Lock", [holder_pid])
        assert activity[holder_pid][0] == "idle in transaction"
        assert activity[holder_pid][3] > 0
        assert reader.info.backend_pid not in activity

        health = reader.execute(
            "SELECT blocked, idle_in_transaction, oldest_transaction_seconds, "
            "longest_query_seconds FROM monitoring.database_health"
        ).fetchone()
        assert health[0] >= 1
        assert health[1] >= 1
        assert health[2] >= health[3] > 0

        states = dict(
            reader.execute("SELECT state, connections FROM monitoring.database_connections")
        )
        assert states["idle in transaction"] >= 1
        assert states["active"] >= 2

        # no view waits for the lock it reports (the size functions would: they lock the
        # table), nor for any other
        reader.execute("SET lock_timeout = '2s'")
        for view in (
            "database_connections",
            "database_activity",
            "database_blocking",
            "database_replication",
            "database_tables",
            "database_health",
        ):
            reader.execute(f"SELECT count(*) FROM monitoring.{view}")
        reader.execute("SELECT count(*) FROM monitoring.database_statements()")

        wait.release()
        blocked = reader.execute("SELECT count(*) FROM monitoring.database_blocking").fetchone()
        assert blocked == (0,)


def test_a_reader_needs_pg_monitor_to_see_other_roles(installed_db: str) -> None:
    plain = login_role(installed_db, "pgm_db_reader", "monitoring_reader")
    monitor = login_role(installed_db, "pgm_db_monitor", "monitoring_reader")
    with superuser(installed_db) as conn:
        conn.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier("pgm_db_monitor")))
    # another role's session, busy
    other = psycopg.connect(installed_db, autocommit=True)
    busy = threading.Thread(target=lambda: other.execute("SELECT pg_sleep(3)"))
    busy.start()
    try:
        with superuser(installed_db) as conn:
            assert poll(
                lambda: conn.execute(
                    "SELECT FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)' "
                    "AND state = 'active'"
                ).fetchall()
            )
        with psycopg.connect(plain, autocommit=True) as reader:
            hidden = reader.execute(
                "SELECT connections FROM monitoring.database_connections "
                "WHERE state = 'not visible'"
            ).fetchone()[0]
            assert hidden >= 1
            assert not reader.execute(
                "SELECT FROM monitoring.database_activity WHERE query LIKE '%pg_sleep%'"
            ).fetchall()
        with psycopg.connect(monitor, autocommit=True) as reader:
            assert reader.execute(
                "SELECT connections FROM monitoring.database_connections "
                "WHERE state = 'not visible'"
            ).fetchone() == (0,)
            rows = reader.execute(
                "SELECT state, query_seconds FROM monitoring.database_activity "
                "WHERE query LIKE '%pg_sleep(3)%'"
            ).fetchall()
            assert [row[0] for row in rows] == ["active"]
            assert rows[0][1] >= 0
    finally:
        busy.join(WAIT)
        other.close()


def test_tables_count_live_and_dead_rows_once_committed(installed_db: str) -> None:
    with superuser(installed_db) as conn:
        conn.execute("CREATE TABLE public.events (id integer, note text)")
        conn.execute(
            "INSERT INTO public.events SELECT g, repeat('x', 50) FROM generate_series(1, 1000) g"
        )
        conn.execute("DELETE FROM public.events WHERE id <= 400")
        # statistics reach the shared counters when the writing session goes idle
        conn.execute("SELECT pg_stat_force_next_flush()")

        def read() -> Any:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT live_rows, dead_rows, dead_percent FROM monitoring.database_tables "
                "WHERE schema_name = 'public' AND table_name = 'events'"
            ).fetchone()
            return row if row and row[1] == 400 else None

        assert poll(read) == (600, 400, 40.0)


def test_statements_count_from_the_last_snapshot(installed_db: str) -> None:
    with superuser(installed_db) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE public.marker (id integer)")

        def run(times: int) -> None:
            for n in range(times):
                conn.execute("SELECT count(*) FROM public.marker WHERE id > %s", (n,))

        def marker() -> tuple[Any, ...] | None:
            for row in conn.execute(
                "SELECT calls, total_ms, mean_ms, since, query "
                "FROM monitoring.database_statements(1000)"
            ):
                if row[4] and row[4].startswith("SELECT count(*) FROM public.marker"):
                    return row
            return None

        def snapshot() -> Any:
            assert conn.execute("SELECT monitoring.snapshot_statements()").fetchone()[0] >= 1
            return conn.execute(
                "SELECT max(taken_at) FROM monitoring.database_statement_snapshots"
            ).fetchone()[0]

        # before any snapshot: since the statistics were reset
        run(4)
        reset = conn.execute("SELECT stats_reset FROM pg_stat_statements_info").fetchone()[0]
        first = marker()
        assert first is not None
        assert (first[0], first[3]) == (4, reset)
        assert first[1] >= first[2] >= 0

        since = snapshot()
        run(3)
        second = marker()
        assert second is not None
        assert (second[0], second[3]) == (3, since)

        # counters that went down were reset in between: all of them count
        conn.execute("SELECT pg_stat_statements_reset()")
        run(2)
        third = marker()
        assert third is not None
        assert third[0] == 2

        assert (
            conn.execute(
                "SELECT count(*) FROM monitoring.database_statements(50, false) WHERE query IS NULL"
            ).fetchone()[0]
            >= 1
        )
        report = conn.execute("SELECT monitoring.run_maintenance()").fetchone()[0]
        assert report["statements_snapshot"] >= 1
        assert "failed" not in report
