"""8 concurrent writers through the coordinator, on one fingerprint and on 1,000, while the
counts are folded (issue 16): every acknowledged event stored, every count exact. On one
server too (test_capture_concurrency.py is the storm's single-server story).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from ..storm import FRAMES, write_at_once

WRITERS = 8
FOLD = "SELECT monitoring.fold_error_counts()"


@pytest.fixture(params=["one_server", "cluster"])
def target(request: pytest.FixtureRequest) -> str:
    dsn: str = request.getfixturevalue(
        "installed_db" if request.param == "one_server" else "cluster_db"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        # every event stored: no storm sampling (nor the marking of an issue as sampled,
        # test_a_storm_is_sampled's story)
        conn.execute("SELECT monitoring.set_setting('errors.storm_keep_one_in', '1')")
        conn.execute("SELECT monitoring.set_setting('errors.storm_full_events', '1000')")
    return dsn


def capture_at_once(
    dsn: str, captures: Callable[[int], list[tuple[str, str]]]
) -> list[tuple[str, int, str]]:
    """WRITERS connections capturing `captures(writer)`'s (fingerprint, user) pairs one call
    at a time, while the counts are folded. Returns the acknowledged (event id, issue id,
    fingerprint)."""
    acknowledged: list[tuple[str, int, str]] = []

    def write(conn: psycopg.Connection[Any], n: int) -> None:
        for i, (fingerprint, user) in enumerate(captures(n)):
            event_id, issue_id = conn.execute(
                "SELECT event_id, issue_id FROM monitoring.capture_error("
                "'JobFailed', %s, %s::jsonb, p_user => %s::jsonb, p_fingerprint => ARRAY[%s])",
                (f"job {n}-{i} failed", FRAMES, f'{{"id": "{user}"}}', fingerprint),
            ).fetchone()
            acknowledged.append((str(event_id), issue_id, fingerprint))

    write_at_once(dsn, writers=WRITERS, write=write, fold_sql=FOLD)
    return acknowledged


def stored(dsn: str) -> tuple[list[str], Counter[tuple[str, int]], list[tuple[str, int, int]]]:
    """Event ids stored, events per (fingerprint, issue), and each issue's counts."""
    with psycopg.connect(dsn) as conn:
        events = [str(event_id) for (event_id,) in conn.execute("SELECT id FROM monitoring.errors")]
        per_issue = Counter(
            dict(
                conn.execute(
                    "SELECT (fingerprint, issue_id)::text, count(*) FROM monitoring.errors "
                    "GROUP BY 1"
                ).fetchall()
            )
        )
        issues = conn.execute(
            "SELECT fingerprint, times_seen, users_seen FROM monitoring.issues ORDER BY 1"
        ).fetchall()
    return events, per_issue, issues


def assert_all_stored(dsn: str, acknowledged: list[tuple[str, int, str]]) -> None:
    events, per_issue, issues = stored(dsn)
    assert len(events) == len(set(events))
    assert sorted(events) == sorted(a[0] for a in acknowledged), "every acknowledged event"
    expected = Counter(f"({f},{i})" for _, i, f in acknowledged)
    assert per_issue == expected, "each event in the issue its capture answered"
    times_seen = Counter(f for _, _, f in acknowledged)
    assert [(f, t) for f, t, _ in issues] == sorted(times_seen.items())


EVENTS_EACH = 60


def test_eight_writers_on_one_fingerprint(target: str) -> None:
    acknowledged = capture_at_once(
        target, lambda n: [("storm", f"user-{i % 10}") for i in range(EVENTS_EACH)]
    )
    assert len(acknowledged) == WRITERS * EVENTS_EACH
    assert_all_stored(target, acknowledged)
    _, _, issues = stored(target)
    assert issues == [("storm", WRITERS * EVENTS_EACH, 10)]
    with psycopg.connect(target) as conn:
        conn.execute(FOLD)
        assert conn.execute(
            "SELECT times_seen, users_seen FROM monitoring.error_issues"
        ).fetchall() == [(WRITERS * EVENTS_EACH, 10)], "folded exactly"
        assert conn.execute(
            "SELECT action, count(*) FROM monitoring.issue_history GROUP BY action"
        ).fetchall() == [("first_seen", 1)], "concurrent first events make one issue"


FINGERPRINTS = 1000


# 2,000 captures, each of a new issue half of the time: about a minute on the cluster here
@pytest.mark.timeout(300)
def test_eight_writers_on_a_thousand_fingerprints(target: str) -> None:
    # writers n and n + 4 capture the same 250 fingerprints in the same order: each new
    # fingerprint's first event arrives from two writers at once
    def captures(n: int) -> list[tuple[str, str]]:
        return [
            (f"fp-{f:04d}", f"user-{n}")
            for f in range(FINGERPRINTS)
            if f % (WRITERS // 2) == n % (WRITERS // 2)
        ]

    acknowledged = capture_at_once(target, captures)
    assert len(acknowledged) == 2 * FINGERPRINTS
    assert_all_stored(target, acknowledged)
    _, _, issues = stored(target)
    assert len(issues) == FINGERPRINTS
    assert {(t, u) for _, t, u in issues} == {(2, 2)}
    with psycopg.connect(target) as conn:
        assert conn.execute(
            "SELECT count(*) FROM monitoring.issue_history WHERE action = 'first_seen'"
        ).fetchone() == (FINGERPRINTS,)


STORM_SQL = (
    "SELECT monitoring.capture_error('Storm', 'again', p_fingerprint => ARRAY['storm'], "
    "p_user => %s::jsonb)"
)


@pytest.fixture(params=["one_server", "cluster"])
def storm_target(request: pytest.FixtureRequest) -> str:
    if request.param == "cluster":
        return str(request.getfixturevalue("cluster_db"))
    return str(request.getfixturevalue("installed_db"))


def test_a_storm_is_sampled(storm_target: str) -> None:
    """Past errors.storm_full_events (default settings), captures go on: counted, sampled."""
    with psycopg.connect(storm_target, autocommit=True) as conn:
        conn.execute("SELECT monitoring.set_setting('errors.storm_full_events', '20')")
        for i in range(100):
            conn.execute(STORM_SQL, (f'{{"id": "u{i % 3}"}}',))
        times_seen, users_seen, sampled_out, sampling = conn.execute(
            "SELECT times_seen, users_seen, events_sampled_out, sampling_until > now() "
            "FROM monitoring.issues"
        ).fetchone()
        (events,) = conn.execute("SELECT count(*) FROM monitoring.errors").fetchone()
    assert (times_seen, users_seen, sampling) == (100, 3, True)
    assert events + sampled_out == 100
    assert events < 100
