"""Triage: resolve, ignore, reopen, assign and unassign an issue, each one stored function.

The one place these calls are written. An issue is named by its id (the CLI, `issues.py`) or
by its fingerprint within an environment and service (the trackers'
`resolve_error("payment_timeout_error")`); either way the call is the same function, and a
client runs it on its connector, sync or async. Each returns the issue's `monitoring.issues`
row; run it inside `needs_admin()`, so that a refusal names the role it needs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._db.calls import Call, first_row
from ..errors import needs_role


@dataclass(frozen=True)
class Fingerprint:
    """An issue named by its fingerprint; None environment or service: the database's
    defaults (`monitoring.issue_id`)."""

    fingerprint: str
    environment: str | None = None
    service: str | None = None


Issue = int | Fingerprint


def needs_admin() -> AbstractContextManager[None]:
    """Around a change of an issue's state: when refused, the error names the role needed."""
    return needs_role("monitoring_admin", "Triage (resolve, ignore, reopen, assign)")


# Each names the issue by id, or when that is NULL by fingerprint: COALESCE evaluates
# issue_id() only when the id is NULL (and, STABLE, the planner does not call it ahead).
RESOLVE = """
SELECT * FROM monitoring.resolve_issue(
    coalesce(%s::bigint, monitoring.issue_id(%s::text, %s::text, %s::text)),
    %s::text, %s::boolean, %s::text
)"""
IGNORE = """
SELECT * FROM monitoring.ignore_issue(
    coalesce(%s::bigint, monitoring.issue_id(%s::text, %s::text, %s::text)),
    %s::timestamptz, %s::bigint, %s::bigint, %s::text
)"""
REOPEN = """
SELECT * FROM monitoring.reopen_issue(
    coalesce(%s::bigint, monitoring.issue_id(%s::text, %s::text, %s::text)), %s::text
)"""
ASSIGN = """
SELECT * FROM monitoring.assign_issue(
    coalesce(%s::bigint, monitoring.issue_id(%s::text, %s::text, %s::text)), %s::text, %s::text
)"""
UNASSIGN = """
SELECT * FROM monitoring.unassign_issue(
    coalesce(%s::bigint, monitoring.issue_id(%s::text, %s::text, %s::text)), %s::text
)"""


def _lifecycle(query: str, issue: Issue, *params: Any) -> Call:
    if isinstance(issue, Fingerprint):
        named = (None, issue.fingerprint, issue.environment, issue.service)
    else:
        named = (issue, None, None, None)
    return Call(query, (*named, *params), first_row)


def resolve(
    issue: Issue,
    in_release: str | None = None,
    in_next_release: bool = False,
    actor: str | None = None,
) -> Call:
    """Resolved now, in release `in_release`, or in the release after the current one."""
    return _lifecycle(RESOLVE, issue, in_release, in_next_release, actor)


def ignore(
    issue: Issue,
    until: datetime | None = None,
    until_events: int | None = None,
    until_users: int | None = None,
    actor: str | None = None,
) -> Call:
    """Ignored forever, or until a time, N more events or N more users."""
    return _lifecycle(IGNORE, issue, until, until_events, until_users, actor)


def reopen(issue: Issue, actor: str | None = None) -> Call:
    """A resolved or ignored issue set back to unresolved."""
    return _lifecycle(REOPEN, issue, actor)


def assign(issue: Issue, assignee: str, actor: str | None = None) -> Call:
    """Assigned to `assignee` (any text: an email, a team)."""
    return _lifecycle(ASSIGN, issue, assignee, actor)


def unassign(issue: Issue, actor: str | None = None) -> Call:
    """Its assignee removed."""
    return _lifecycle(UNASSIGN, issue, actor)
