"""An error storm: many connections capturing one fingerprint while maintenance folds."""

from __future__ import annotations

import threading
import time

import psycopg

WRITERS = 8
EVENTS_EACH = 60
FRAMES = (
    '[{"filename": "app/jobs.py", "module": "app.jobs", "function": "run", '
    '"context_line": "process(batch)", "in_app": true}]'
)


def test_a_storm_on_one_issue_counts_exactly(installed_db: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS + 1)
    done = threading.Event()

    def writer(n: int) -> None:
        try:
            with psycopg.connect(installed_db, autocommit=True) as conn:
                conn.execute("SET ROLE monitoring_writer")
                start.wait()
                for i in range(EVENTS_EACH):
                    conn.execute(
                        "SELECT monitoring.capture_error('JobFailed', %s, %s::jsonb, "
                        "p_user => %s::jsonb)",
                        (f"job {n}-{i} failed", FRAMES, f'{{"id": "user-{i % 10}"}}'),
                    )
        except BaseException as error:
            errors.append(error)

    def maintainer() -> None:
        # Folds while the writers write: no event may be lost or counted twice.
        try:
            with psycopg.connect(installed_db, autocommit=True) as conn:
                start.wait()
                while not done.is_set():
                    conn.execute("SELECT monitoring.run_maintenance()")
                    time.sleep(0.05)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    folder = threading.Thread(target=maintainer)
    for thread in [*threads, folder]:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    done.set()
    folder.join(timeout=30)

    assert errors == []
    with psycopg.connect(installed_db) as conn:
        issues = conn.execute("SELECT times_seen, users_seen FROM monitoring.issues").fetchall()
        assert issues == [(WRITERS * EVENTS_EACH, 10)]
        conn.execute("SELECT monitoring.run_maintenance()")
        folded = conn.execute(
            "SELECT times_seen, users_seen FROM monitoring.error_groups"
        ).fetchall()
        events = conn.execute("SELECT count(*) FROM monitoring.errors").fetchone()
        activity = conn.execute(
            "SELECT action, count(*) FROM monitoring.issue_history GROUP BY action"
        ).fetchall()
    assert folded == [(WRITERS * EVENTS_EACH, 10)]
    assert events == (WRITERS * EVENTS_EACH,)
    assert activity == [("first_seen", 1)], "concurrent first events make one issue"


def test_concurrent_regressions_record_one(installed_db: str) -> None:
    with psycopg.connect(installed_db, autocommit=True) as conn:
        issue_id = conn.execute(
            "SELECT issue_id FROM monitoring.capture_error('E', 'boom', %s::jsonb)", (FRAMES,)
        ).fetchone()[0]
        conn.execute("SELECT monitoring.resolve_issue(%s)", (issue_id,))

    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with psycopg.connect(installed_db, autocommit=True) as conn:
                barrier.wait()
                conn.execute(
                    "SELECT monitoring.capture_error('E', 'boom again', %s::jsonb)", (FRAMES,)
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    with psycopg.connect(installed_db) as conn:
        status = conn.execute(
            "SELECT status, substatus, times_seen FROM monitoring.issues WHERE id = %s",
            (issue_id,),
        ).fetchone()
        regressions = conn.execute(
            "SELECT count(*) FROM monitoring.issue_history WHERE action = 'regression'"
        ).fetchone()
    assert status == ("unresolved", "regressed", WRITERS + 1)
    assert regressions == (1,)
