"""The demo's Sentry part: the real sentry-sdk, given a DSN from a project (what `pg-monitoring
projects add` prints), reports an error over HTTP to `pg-monitoring serve`'s Sentry ingest.
Needs the sentry and server extras: `pip install 'pg-monitoring[server,sentry]'`."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from .demo_traces import Echo, _serve
from .sentry import project_dsn

STATS = """SELECT project, outcome, category, this_hour
FROM monitoring.sentry_ingest_stats() WHERE project_id = %s"""


class BasketNotFound(LookupError):
    pass


def load_basket(basket_id: int) -> None:
    raise BasketNotFound(f"basket {basket_id} does not exist")


def sentry_through_serve(conn: psycopg.Connection[Any], echo: Echo) -> None:
    try:
        import sentry_sdk
        import starlette  # noqa: F401 - serve's
    except ImportError as missing:
        echo(
            f"  skipped: {missing.name} is not installed "
            "(pip install 'pg-monitoring[server,sentry]')"
        )
        return
    row = conn.execute(
        "SELECT * FROM monitoring.add_sentry_project('demo-shop', 'basket', 'production')"
    ).fetchone()
    assert row is not None
    project_id, key = row
    conn.commit()
    dsn = make_conninfo(conn.info.dsn, password=conn.info.password or None)
    with _serve(dsn) as url:
        sentry_dsn = project_dsn(key, url.removeprefix("http://"), project_id)
        echo(f"  pg-monitoring projects add demo-shop --service basket -> {sentry_dsn[:26]}...")
        sentry_sdk.init(dsn=sentry_dsn, release="basket@1.0.0")
        try:
            load_basket(7)
        except BasketNotFound:
            event_id = sentry_sdk.capture_exception()
        sentry_sdk.get_client().close(timeout=5)  # flushes: the event is sent now
        sentry_sdk.init()
    issue = conn.execute(
        """SELECT i.id, i.title, i.service
        FROM monitoring.error_events AS e JOIN monitoring.issues AS i ON i.id = e.issue_id
        WHERE e.event_id = %s""",
        (event_id,),
    ).fetchone()
    if issue is None:
        echo("  the event did not arrive")
        return
    echo(f"  sentry_sdk.capture_exception() -> issue #{issue[0]}: {issue[1]} (service {issue[2]})")
    for project, outcome, category, this_hour in conn.execute(STATS, (project_id,)):
        echo(f"  pg-monitoring stats: {project} {outcome} {category}: {this_hour} this hour")
    conn.commit()
