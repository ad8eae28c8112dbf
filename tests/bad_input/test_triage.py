"""Triage (monitoring_admin): issue_id, resolve_issue, ignore_issue, reopen_issue, assign_issue
and unassign_issue with bad input.

A missing issue is no_data_found (P0002) naming the id; a bad argument is 22023 naming it.
What triage stores (a release, an assignee, an actor, an ignore time) stays within what
capture stores and what psycopg reads back. The issues are made by a writer's captures.
"""

from __future__ import annotations

import pytest

from .suite import (
    MB,
    Case,
    Database,
    assert_healthy,
    call,
    noise,
    ok,
    refused,
    select,
    table,
    text_of,
)

NOT_FOUND = ("P0002",)
TRUE = [(True,)]
LONG_ENVIRONMENT = text_of(10_000, "e")
# The issues the cases work on, by fingerprint.
ISSUE = "(SELECT monitoring.issue_id('bad-input:triage'))"
UNRELEASED = "(SELECT monitoring.issue_id('bad-input:unreleased'))"


@pytest.fixture(scope="module", autouse=True)
def issues(db: Database) -> None:
    capture = (
        "SELECT * FROM monitoring.capture_message('triage me', 'error', p_fingerprint => %s,"
        " p_environment => %s, p_release => %s)"
    )
    for fingerprint, environment, release in [
        ("bad-input:triage", "triage", "1.0"),
        ("bad-input:unreleased", "triage", None),
        ("bad-input:twice", "one", None),
        ("bad-input:twice", "two", None),
        ("bad-input:long-environment", LONG_ENVIRONMENT, None),
    ]:
        db.writer.execute(capture, ([fingerprint], environment, release))


def on_issue(function: str, *params: str, issue: str = ISSUE) -> str:
    """function(<the issue>, params...), returning the issue's row."""
    return select(function, *params).replace("(", f"({issue}, ", 1).replace(", )", ")")


RESOLVE = on_issue("resolve_issue", "p_in_release::text", "p_in_next_release::boolean")
RESOLVE_BY = on_issue("resolve_issue", "p_actor::text")
IGNORE = on_issue(
    "ignore_issue", "p_until::timestamptz", "p_until_events::bigint", "p_until_users::bigint"
)
ASSIGN = on_issue("assign_issue", "::text")
BY_ID = {
    "resolve": "SELECT * FROM monitoring.resolve_issue(%s)",
    "ignore": "SELECT * FROM monitoring.ignore_issue(%s)",
    "reopen": "SELECT * FROM monitoring.reopen_issue(%s)",
    "assign": "SELECT * FROM monitoring.assign_issue(%s, 'dev@example.com')",
    "unassign": "SELECT * FROM monitoring.unassign_issue(%s)",
}
ISSUE_ID = "SELECT monitoring.issue_id(%s, %s, %s)"


def every_function() -> list[Case]:
    """Each triage function with ids of no issue (no_data_found naming the id), and on an
    issue with an actor of 10 MB (22023 naming p_actor)."""
    cases = []
    for function, query in BY_ID.items():
        for name, value in [("null", None), ("zero", 0), ("negative", -1), ("max", 2**63 - 1)]:
            cases.append(
                refused(f"{function}-id-{name}", query, (value,), states=NOT_FOUND, names="issue")
            )
        cases.append(
            refused(
                f"{function}-id-not-a-number-is-refused-by-postgresql",
                query.replace("%s", "%s::bigint"),
                ("1e3",),
                states=("22P02",),
            )
        )
        cases.append(
            refused(
                f"{function}-actor-10mb",
                query.replace("%s", ISSUE)[:-1] + ", p_actor => %s::text)",
                lambda: (text_of(10 * MB),),
                names="p_actor",
                timeout=5,
            )
        )
    return cases


TRIAGE = [
    *every_function(),
    # resolve
    refused("resolve-in-release-and-next-release", RESOLVE, ("2.0", True), names="p_in_release"),
    refused(
        "resolve-next-release-of-an-issue-without-one",
        on_issue("resolve_issue", "p_in_next_release::boolean", issue=UNRELEASED),
        (True,),
        names="no event with a release",
    ),
    ok("resolve-null-release-and-null-next", RESOLVE, (None, None)),
    ok("resolve-next-release", RESOLVE, (None, True)),
    ok("resolve-in-release-empty", RESOLVE, ("", False)),
    ok("resolve-in-release-injection", RESOLVE, ("'); DROP TABLE monitoring.releases; --", False)),
    ok(
        "resolve-in-release-10mb-as-capture-keeps-a-release",
        on_issue("resolve_issue", "p_in_release::text").replace("*", "length(resolved_in_release)"),
        lambda: (noise(10 * MB),),
        returns=[(200,)],
        timeout=5,
    ),
    ok("resolve-actor-control-characters", RESOLVE_BY, ("\x01\x1b[2J\n",)),
    # ignore
    refused("ignore-until-past", IGNORE, ("2000-01-01", None, None), names="p_until"),
    refused("ignore-until-minus-infinity", IGNORE, ("-infinity", None, None), names="p_until"),
    refused("ignore-until-infinity", IGNORE, ("infinity", None, None), names="p_until"),
    refused("ignore-until-year-9999", IGNORE, ("9999-12-31", None, None), names="p_until"),
    refused(
        "ignore-until-not-a-time-is-refused-by-postgresql",
        IGNORE,
        ("soon", None, None),
        states=("22007",),
    ),
    refused("ignore-until-zero-events", IGNORE, (None, 0, None), names="p_until_events"),
    refused("ignore-until-negative-users", IGNORE, (None, None, -1), names="p_until_users"),
    ok(
        "ignore-until-the-largest-counts",
        IGNORE.replace("*", "ignore_until_times_seen"),
        (None, 2**63 - 1, 2**63 - 1),
        returns=[(2**63 - 1,)],
    ),
    ok(
        "ignore-forever",
        IGNORE.replace("*", "ignore_until_times_seen IS NULL AND ignore_until_users_seen IS NULL"),
        (None, None, None),
        returns=TRUE,
    ),
    ok("ignore-until-every-condition", IGNORE, ("2100-01-01", 1, 1)),
    # reopen, assign, unassign
    ok("reopen-an-unresolved-issue", (on_issue("reopen_issue"), on_issue("reopen_issue"))),
    refused("assign-null", ASSIGN, (None,), names="p_assignee"),
    refused("assign-blank", ASSIGN, (" \t\n",), names="p_assignee"),
    refused("assign-10mb", ASSIGN, lambda: (text_of(10 * MB),), names="p_assignee", timeout=5),
    ok("assign-injection", ASSIGN, ("'); DROP TABLE monitoring.error_issues; --",)),
    ok("assign-control-characters-and-emoji", ASSIGN, ("dev\x1b[31m😀\u202e@example.com",)),
    ok("unassign-twice", (on_issue("unassign_issue"), on_issue("unassign_issue"))),
    # issue_id
    refused("issue-id-null", ISSUE_ID, (None, None, None), states=NOT_FOUND, names="fingerprint"),
    refused("issue-id-empty", ISSUE_ID, ("", "", ""), states=NOT_FOUND, names="fingerprint"),
    refused("issue-id-like-wildcards", ISSUE_ID, ("bad-input:%", None, None), states=NOT_FOUND),
    refused("issue-id-underscore", ISSUE_ID, ("bad_input:triage", None, None), states=NOT_FOUND),
    refused("issue-id-regex", ISSUE_ID, ("bad-input:.*", None, None), states=NOT_FOUND),
    refused(
        "issue-id-injection",
        ISSUE_ID,
        ("x' OR '1'='1", "x' OR '1'='1", "x' OR '1'='1"),
        states=NOT_FOUND,
    ),
    refused(
        "issue-id-10mb",
        ISSUE_ID,
        lambda: (text_of(10 * MB), None, None),
        states=NOT_FOUND,
        names="fingerprint",
        timeout=5,
    ),
    refused(
        "issue-id-10mb-environment-and-service",
        ISSUE_ID,
        lambda: ("bad-input:triage", text_of(10 * MB), text_of(10 * MB)),
        states=NOT_FOUND,
        names="fingerprint",
        timeout=5,
    ),
    refused(
        "issue-id-ambiguous", ISSUE_ID, ("bad-input:twice", None, None), names="names 2 issues"
    ),
    ok(
        "issue-id-narrowed",
        "SELECT monitoring.issue_id(%s, %s, %s) IS NOT NULL",
        ("bad-input:twice", "two", None),
        returns=TRUE,
    ),
    ok(
        "issue-id-environment-as-long-as-it-was-captured",
        "SELECT monitoring.issue_id(%s, %s, %s) IS NOT NULL",
        ("bad-input:long-environment", LONG_ENVIRONMENT, None),
        returns=TRUE,
    ),
]


@table(TRIAGE)
def test_triage(db: Database, case: Case) -> None:
    call(db.admin, case)


def test_after_triage(db: Database) -> None:
    assert_healthy(db)
