"""Issues by id, for the CLI: list and show them (monitoring_reader), change their state
(monitoring_admin, through monitoring/triage.py, where the trackers' triage by fingerprint
is written too).

Each function is one statement over the views or one stored function; the CLI renders them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ._db.connection import Connector
from .monitoring import triage as lifecycle

_STATUSES = "SELECT monitoring.issue_statuses()"

_LIST = """
SELECT id, status, substatus, level, times_seen, users_seen, first_seen, last_seen,
       title, culprit, service, environment, fingerprint, assignee
FROM monitoring.issues
WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(environment)s::text IS NULL OR environment = %(environment)s::text)
  AND (%(service)s::text IS NULL OR service = %(service)s::text)
  AND (%(since)s::timestamptz IS NULL OR last_seen >= %(since)s::timestamptz)
ORDER BY last_seen DESC, id DESC
LIMIT %(limit)s::integer
"""

_ISSUE = "SELECT * FROM monitoring.issues WHERE id = %s::bigint"

_LATEST_EVENT = """
SELECT id AS event_id, occurred_at, level, release, exception_type, message, exceptions,
       context, tags, user_info, breadcrumbs, trace_id, span_id, server_name, transaction_name,
       data
FROM monitoring.errors
WHERE issue_id = %s::bigint
ORDER BY occurred_at DESC
LIMIT 1
"""

_HISTORY = """
SELECT occurred_at, coalesce(actor, 'pg_monitoring') AS actor, action, data
FROM monitoring.issue_history
WHERE issue_id = %s::bigint
ORDER BY id
"""


@dataclass(frozen=True)
class IssueFilter:
    status: str | None = "unresolved"
    environment: str | None = None
    service: str | None = None
    since: timedelta | None = None
    limit: int = 50


def statuses(db: Connector) -> list[str]:
    """The statuses an issue may have, as SQL defines them."""
    return list(db.fetch_value(_STATUSES))


def list_issues(db: Connector, f: IssueFilter) -> list[dict[str, Any]]:
    since = None
    if f.since is not None:
        since = db.fetch_value("SELECT now() - %s::interval", (f.since,))
    return db.fetch_all(
        _LIST,
        {
            "status": f.status,
            "environment": f.environment,
            "service": f.service,
            "since": since,
            "limit": f.limit,
        },
    )


def resolve_id(
    db: Connector, issue: str, environment: str | None = None, service: str | None = None
) -> int:
    """An issue given as its id or its fingerprint."""
    if issue.isdigit():
        return int(issue)
    return int(
        db.fetch_value(
            "SELECT monitoring.issue_id(%s::text, %s::text, %s::text)",
            (issue, environment, service),
        )
    )


def triage() -> AbstractContextManager[None]:
    """Around a change of an issue's state: when refused, the error names the role needed."""
    return lifecycle.needs_admin()


def show_issue(db: Connector, issue_id: int) -> dict[str, Any] | None:
    rows = db.fetch_all(_ISSUE, (issue_id,))
    if not rows:
        return None
    latest = db.fetch_all(_LATEST_EVENT, (issue_id,))
    return {
        "issue": rows[0],
        "latest_event": latest[0] if latest else None,
        "history": db.fetch_all(_HISTORY, (issue_id,)),
    }


# Changes of an issue's state, by id; the calls are monitoring/triage.py's.


def resolve(
    db: Connector,
    issue_id: int,
    in_release: str | None = None,
    in_next_release: bool = False,
    actor: str | None = None,
) -> dict[str, Any]:
    return db.run(lifecycle.resolve(issue_id, in_release, in_next_release, actor))


def ignore(
    db: Connector,
    issue_id: int,
    until: datetime | None = None,
    until_events: int | None = None,
    until_users: int | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    return db.run(lifecycle.ignore(issue_id, until, until_events, until_users, actor))


def reopen(db: Connector, issue_id: int, actor: str | None = None) -> dict[str, Any]:
    return db.run(lifecycle.reopen(issue_id, actor))


def assign(db: Connector, issue_id: int, assignee: str, actor: str | None = None) -> dict[str, Any]:
    return db.run(lifecycle.assign(issue_id, assignee, actor))


def unassign(db: Connector, issue_id: int, actor: str | None = None) -> dict[str, Any]:
    return db.run(lifecycle.unassign(issue_id, actor))


def run_maintenance(db: Connector) -> dict[str, Any]:
    return dict(db.fetch_value("SELECT monitoring.run_maintenance()"))
