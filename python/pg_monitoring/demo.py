"""`make demo`: the main job end to end on whatever database it is given.

With no DATABASE_URL, `make demo` runs this on a throwaway cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from . import cli, installer
from .caching import MISS, SyncPostgresCache


def run(conn: psycopg.Connection[Any], echo: Callable[[str], None] = print) -> None:
    outcome = installer.install(conn)
    if outcome.action == "installed":
        echo(f"Installed pg_monitoring {outcome.version} as a plain script: {outcome.steps[0]}")
    else:
        echo(f"pg_monitoring {outcome.version} was installed already.")
    echo("")
    cli.print_status(cli.status_report(conn))
    echo("")
    cache_traffic(conn, echo)


def cache_traffic(conn: psycopg.Connection[Any], echo: Callable[[str], None]) -> None:
    """Some cache traffic, then what monitoring.cache_stats() makes of it."""
    cache = SyncPostgresCache(conn)
    echo("Cache traffic:")
    cache.set("user:123", {"id": 123, "name": "Ada"}, ttl=3600)
    cache.set_many({f"product:{i}": {"id": i, "price": i * 10} for i in range(1, 4)}, ttl=1800)
    echo(f"  get user:123            -> {cache.get('user:123')}")
    echo(f"  get user:999            -> {cache.get('user:999', MISS)}")
    products = cache.get_many(f"product:{i}" for i in range(1, 5))
    echo(f"  get_many product:1..4   -> {sorted(products)}")
    echo(f"  ttl product:1           -> {cache.ttl('product:1')} s")
    echo(f"  incr page:views x3      -> {[cache.incr('page:views') for _ in range(3)]}")
    echo(f"  delete_pattern user:*   -> {cache.delete_pattern('user:*')} deleted")
    stats = cache.stats()
    echo("")
    echo("monitoring.cache_stats():")
    for name, value in stats.items():
        echo(f"  {name:<16} {value}")
