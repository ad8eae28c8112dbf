"""An error storm: many connections capturing one fingerprint while maintenance folds."""

from __future__ import annotations

import threading

import psycopg

from .storm import FRAMES, storm

WRITERS = 8
EVENTS_EACH = 60


def test_a_storm_on_one_issue_counts_exactly(installed_db: str) -> None:
    storm(installed_db, writers=WRITERS, events_each=EVENTS_EACH, distinct_users=10)
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
