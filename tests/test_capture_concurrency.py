"""An error storm: many connections capturing one fingerprint while maintenance folds."""

from __future__ import annotations

import json
import threading

import psycopg

from .storm import FRAMES, storm

WRITERS = 8
EVENTS_EACH = 60


def test_a_storm_on_one_issue_counts_exactly(installed_db: str) -> None:
    # every event stored (test_storm.py has storm protection sample them)
    with psycopg.connect(installed_db, autocommit=True) as conn:
        conn.execute("SELECT monitoring.set_setting('errors.storm_full_events', '1000')")
    storm(installed_db, writers=WRITERS, events_each=EVENTS_EACH, distinct_users=10)
    with psycopg.connect(installed_db) as conn:
        issues = conn.execute("SELECT times_seen, users_seen FROM monitoring.issues").fetchall()
        assert issues == [(WRITERS * EVENTS_EACH, 10)]
        conn.execute("SELECT monitoring.run_maintenance()")
        folded = conn.execute(
            "SELECT times_seen, users_seen FROM monitoring.error_issues"
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


def old_issue(dsn: str) -> int:
    """An issue whose last event was before the retention window, its events long dropped."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        issue_id = conn.execute(
            "SELECT issue_id FROM monitoring.capture_error('Stale', 'from long ago')"
        ).fetchone()[0]
        conn.execute("SELECT monitoring.run_maintenance()")
        conn.execute(
            "UPDATE monitoring.error_issues SET first_seen = now() - interval '100 days', "
            "last_seen = now() - interval '100 days' WHERE id = %s",
            (issue_id,),
        )
        conn.execute("DELETE FROM monitoring.error_events WHERE issue_id = %s", (issue_id,))
    return issue_id


def orphans(dsn: str) -> tuple[int, int]:
    """Events and counts whose issue is gone."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """SELECT
                (SELECT count(*) FROM monitoring.error_events AS e WHERE NOT EXISTS (
                    SELECT FROM monitoring.error_issues AS g WHERE g.id = e.issue_id)),
                (SELECT count(*) FROM monitoring.error_issue_counts AS c WHERE NOT EXISTS (
                    SELECT FROM monitoring.error_issues AS g WHERE g.id = c.issue_id))"""
        ).fetchone()


def test_retention_skips_an_old_issue_a_capture_is_adding_to(installed_db: str) -> None:
    issue_id = old_issue(installed_db)
    with (
        psycopg.connect(installed_db) as capture,
        psycopg.connect(installed_db, autocommit=True) as maintenance,
    ):
        captured = capture.execute(
            "SELECT issue_id FROM monitoring.capture_error('Stale', 'from long ago')"
        ).fetchone()[0]
        assert captured == issue_id
        report = maintenance.execute("SELECT monitoring.run_maintenance()").fetchone()[0]
        assert report["issues_deleted"] == 0, "the issue a capture is adding to is kept"
        capture.commit()
    assert orphans(installed_db) == (0, 0)
    with psycopg.connect(installed_db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM monitoring.errors WHERE issue_id = %s", (issue_id,)
        ).fetchone() == (1,)


def test_a_capture_waits_for_retention_deleting_its_issue(installed_db: str) -> None:
    issue_id = old_issue(installed_db)
    stored: list[int] = []
    with psycopg.connect(installed_db) as maintenance:
        report = maintenance.execute("SELECT monitoring.run_maintenance()").fetchone()[0]
        assert report["issues_deleted"] == 1

        def capture() -> None:
            with psycopg.connect(installed_db, autocommit=True) as conn:
                stored.append(
                    conn.execute(
                        "SELECT issue_id FROM monitoring.capture_error('Stale', 'from long ago')"
                    ).fetchone()[0]
                )

        thread = threading.Thread(target=capture)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive(), "the capture waits for the run that is deleting its issue"
        maintenance.commit()
        thread.join(timeout=30)
    assert stored, "the capture went through"
    assert stored[0] != issue_id, "the event is filed in a new issue"
    assert orphans(installed_db) == (0, 0)
    with psycopg.connect(installed_db) as conn:
        assert conn.execute(
            "SELECT times_seen FROM monitoring.issues WHERE id = %s", (stored[0],)
        ).fetchone() == (1,)


def test_an_event_filed_at_the_time_received_is_stored_once(installed_db: str) -> None:
    """Resent from a wrong clock, or with no time at all: each arrival has another time."""
    skewed = {
        "event_id": "5e1f0000000040008000000000000001",
        "timestamp": "2001-01-01T00:00:00Z",
        "message": "from a wrong clock",
    }
    barrier = threading.Barrier(4)

    def send(query: str, params: tuple[object, ...]) -> None:
        with psycopg.connect(installed_db, autocommit=True) as conn:
            barrier.wait()
            conn.execute(query, params)

    for query, params in [
        ("SELECT monitoring.capture_event(%s::jsonb)", (json.dumps(skewed),)),
        (
            "SELECT monitoring.capture_error('NoTime', 'sent twice', "
            "p_event_id => '5e1f0000-0000-4000-8000-000000000002')",
            (),
        ),
    ]:
        send_once = [threading.Thread(target=send, args=(query, params)) for _ in range(4)]
        for thread in send_once:
            thread.start()
        for thread in send_once:
            thread.join(timeout=30)
        barrier.reset()
        # and once more, later
        with psycopg.connect(installed_db, autocommit=True) as conn:
            conn.execute(query, params)
    with psycopg.connect(installed_db) as conn:
        counted = conn.execute(
            "SELECT message, count(*), min(i.times_seen) FROM monitoring.errors AS e "
            "JOIN monitoring.issues AS i ON i.id = e.issue_id "
            "WHERE e.id::text LIKE '5e1f0000%' GROUP BY message ORDER BY message"
        ).fetchall()
    assert counted == [("from a wrong clock", 1, 1), ("sent twice", 1, 1)]
