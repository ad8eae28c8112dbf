"""An error storm for the tests: writers capturing one fingerprint while maintenance folds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

FRAMES = (
    '[{"filename": "app/jobs.py", "module": "app.jobs", "function": "run", '
    '"context_line": "process(batch)", "in_app": true}]'
)


def storm(
    dsn: str,
    *,
    writers: int,
    events_each: int,
    distinct_users: int,
    fold_sql: str = "SELECT monitoring.run_maintenance()",
    exception_type: str = "JobFailed",
) -> None:
    """`writers` connections (as monitoring_writer) each capture `events_each` events of one
    fingerprint, users cycling over `distinct_users`, while another connection runs
    `fold_sql` in a loop. Raises the first error any of them met."""

    def write(conn: psycopg.Connection[Any], n: int) -> None:
        for i in range(events_each):
            conn.execute(
                "SELECT monitoring.capture_error(%s, %s, %s::jsonb, p_user => %s::jsonb)",
                (
                    exception_type,
                    f"job {n}-{i} failed",
                    FRAMES,
                    f'{{"id": "user-{i % distinct_users}"}}',
                ),
            )

    write_at_once(dsn, writers=writers, write=write, fold_sql=fold_sql)


def write_at_once(
    dsn: str,
    *,
    writers: int,
    write: Callable[[psycopg.Connection[Any], int], None],
    fold_sql: str,
) -> None:
    """`writers` connections (as monitoring_writer), started together, each running
    `write(conn, its number)`, while another connection runs `fold_sql` in a loop. Raises the
    first error any of them met."""
    errors: list[BaseException] = []
    start = threading.Barrier(writers + 1)
    done = threading.Event()

    def writer(n: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SET ROLE monitoring_writer")
                start.wait()
                write(conn, n)
        except BaseException as error:
            errors.append(error)

    def folder() -> None:
        # Folds while the writers write: no event may be lost or counted twice.
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                start.wait()
                while not done.is_set():
                    conn.execute(fold_sql.encode())
                    time.sleep(0.02)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    folding = threading.Thread(target=folder)
    for thread in [*threads, folding]:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)
    done.set()
    folding.join(timeout=30)
    if errors:
        raise errors[0]
    assert not any(thread.is_alive() for thread in threads), "a writer did not finish"
