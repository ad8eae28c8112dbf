"""PostgresCache and SyncPostgresCache against a real database: the design document's API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pg_monitoring import (
    MISS,
    InvalidArgumentError,
    PostgresCache,
    SyncPostgresCache,
    UnavailableError,
)
from pg_monitoring.caching import PostgresCache as FromCaching

from .test_tracker import free_port


@pytest.fixture
def cache(installed_db: str) -> Iterator[SyncPostgresCache]:
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        yield SyncPostgresCache(pool)


async def test_the_design_documents_api(installed_db: str) -> None:
    assert FromCaching is PostgresCache
    async with AsyncConnectionPool(installed_db, min_size=1, max_size=2) as db_pool:
        cache = PostgresCache(db_pool)
        user_data = {"id": 123, "name": "Ada", "tags": ["x"]}
        await cache.set("user:123", user_data, ttl=3600)
        assert await cache.get("user:123") == user_data
        await cache.delete("user:123")
        assert await cache.get("user:123") is None

        await cache.set("user:1", 1)
        await cache.set("user:2", 2)
        await cache.set("users", 3)
        assert await cache.delete_pattern("user:*") == 2
        assert await cache.get("users") == 3

        products = {"product:1": {"p": 1}, "product:2": [2], "product:3": "three"}
        await cache.set_many(products, ttl=1800)
        values = await cache.get_many(["product:1", "product:2", "product:3", "product:4"])
        assert values == products
        assert 1795 <= await cache.ttl("product:1") <= 1800
        await cache.close()


def test_a_cached_none_is_not_a_miss(cache: SyncPostgresCache) -> None:
    assert cache.set("nothing", None)
    assert cache.get("nothing", MISS) is None
    assert cache.get("absent", MISS) is MISS
    assert cache.get("absent", "fallback") == "fallback"
    assert cache.get_many(["nothing", "absent"]) == {"nothing": None}


def test_values_round_trip(cache: SyncPostgresCache) -> None:
    for value in [0, -1.5, "text", True, [1, {"a": None}], {"__bytes__": "AA=="}, b"\x00\xff"]:
        cache.set("v", value)
        assert cache.get("v") == value


def test_nx_xx_expire_ttl_incr(cache: SyncPostgresCache) -> None:
    assert cache.set("k", 1, nx=True)
    assert not cache.set("k", 2, nx=True)
    assert not cache.set("other", 2, xx=True)
    assert cache.set("k", 3, xx=True, ttl=timedelta(minutes=1))
    assert cache.ttl("k") == 60
    assert cache.expire("k", None)
    assert cache.ttl("k") == -1
    assert cache.ttl("absent") == -2
    assert cache.incr("counter") == 1
    assert cache.incr("counter", 10) == 11
    assert cache.expire("counter", 0)
    assert not cache.exists("counter")


def test_bad_arguments_raise_invalid_argument(cache: SyncPostgresCache) -> None:
    with pytest.raises(InvalidArgumentError, match="p_ttl must be a number of seconds above 0"):
        cache.set("k", 1, ttl=0)
    with pytest.raises(InvalidArgumentError, match="exclude each other"):
        cache.set("k", 1, nx=True, xx=True)
    cache.set("word", "abc")
    with pytest.raises(InvalidArgumentError, match="not an integer"):
        cache.incr("word")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1, {"x": -float("inf")}]])
def test_nan_and_infinity_are_refused_by_name(cache: SyncPostgresCache, value: object) -> None:
    """JSON has no NaN: the database used to answer `invalid input syntax for type json`."""
    with pytest.raises(InvalidArgumentError, match=r"'score'.*JSON has no NaN or Infinity"):
        cache.set("score", value)
    assert cache.get("score", MISS) is MISS, "nothing stored in its place"


@pytest.mark.parametrize(
    ("value", "advice"),
    [
        (datetime(2024, 5, 1, tzinfo=timezone.utc), r"\.isoformat\(\)"),
        (date(2024, 5, 1), r"\.isoformat\(\)"),
        (Decimal("9.99"), r"str\(\) or float\(\)"),
        (uuid.UUID(int=7), r"str\(\)"),
        ({"a", "b"}, r"list\(\)"),
        ({"nested": [object()]}, r"str\(\)"),
    ],
)
def test_a_value_json_can_not_hold_says_what_to_do(
    cache: SyncPostgresCache, value: object, advice: str
) -> None:
    """A bare `TypeError: Object of type datetime is not JSON serializable` named neither the
    key nor a way out."""
    with pytest.raises(TypeError, match=r"'when'") as raised:
        cache.set("when", value)
    message = str(raised.value)
    assert "is not a JSON type" in message
    assert "bytes" in message, "bytes are the way to store anything else"
    assert raised.match(advice)


def test_set_many_names_the_key_of_the_bad_value(cache: SyncPostgresCache) -> None:
    with pytest.raises(TypeError, match=r"'b'.*Decimal"):
        cache.set_many({"a": 1, "b": {"price": Decimal("1.5")}})
    with pytest.raises(InvalidArgumentError, match=r"'c'.*NaN"):
        cache.set_many({"a": 1, "c": float("nan")})
    assert cache.get_many(["a", "b", "c"]) == {}, "all or nothing, as before"


async def test_the_async_cache_says_the_same(installed_db: str) -> None:
    cache = PostgresCache(installed_db)
    try:
        with pytest.raises(InvalidArgumentError, match=r"'k'.*JSON has no NaN"):
            await cache.set("k", float("nan"))
        with pytest.raises(TypeError, match=r"'k'.*UUID"):
            await cache.get_or_set("k", _a_uuid)
    finally:
        await cache.close()


async def _a_uuid() -> uuid.UUID:
    return uuid.UUID(int=1)


def test_tags(cache: SyncPostgresCache) -> None:
    cache.set("a", 1, tags=["t"])
    cache.set("b", 2, tags=["t", "u"])
    cache.set("c", 3)
    assert cache.delete_tag("t") == 2
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}


def test_stats_and_prometheus(installed_db: str) -> None:
    registry = CollectorRegistry()
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        cache = SyncPostgresCache(pool, prometheus=registry)
        cache.set("a", 1)
        cache.get("a")
        cache.get("b")
        cache.get_many(["a", "b", "c"])
        assert (cache.hits, cache.misses) == (2, 3)
        assert registry.get_sample_value("pg_monitoring_cache_hits_total") == 2
        assert registry.get_sample_value("pg_monitoring_cache_misses_total") == 3
        stats = cache.stats()
        assert (stats["entries"], stats["hits"], stats["misses"]) == (1, 2, 3)
        assert stats["bytes"] > 0
        cache.get("a")
        cache.close()
        assert SyncPostgresCache(pool).stats()["hits"] == 3, "close() reports what is pending"


def test_reports_on_its_own_every_interval(installed_db: str) -> None:
    with ConnectionPool(installed_db, min_size=1, max_size=1) as pool:
        cache = SyncPostgresCache(pool, report_interval=0)
        cache.get("a")
        with pool.connection() as conn:
            row = conn.execute("SELECT hits, misses FROM monitoring.cache_stats()").fetchone()
        assert row == (0, 1)


def test_joins_a_callers_transaction(installed_db: str) -> None:
    with psycopg.connect(installed_db) as conn:
        cache = SyncPostgresCache(conn)
        with conn.transaction(force_rollback=True):
            cache.set("k", 1)
            assert cache.get("k") == 1
        assert cache.get("k") is None, "rolled back with the caller's transaction"
        cache.set("k", 2)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert not conn.autocommit, "the caller's connection is left as it was"


async def test_get_or_set_computes_once(installed_db: str) -> None:
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.3)
        return "report"

    async with AsyncConnectionPool(installed_db, min_size=4, max_size=4) as pool:
        cache = PostgresCache(pool)
        results = await asyncio.gather(
            *(cache.get_or_set("report", compute, ttl=60) for _ in range(4))
        )
    assert results == ["report"] * 4
    assert calls == 1


def test_get_or_set_unlocks_when_compute_fails(cache: SyncPostgresCache) -> None:
    def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.get_or_set("k", fail)
    assert cache.get_or_set("k", lambda: "ok", wait=0) == "ok"


def test_a_prefix_pattern_reads_an_index_range(installed_db: str) -> None:
    """delete_pattern('user:1*') on 20,000 keys reads its ~1,000 keys, not the table."""
    with psycopg.connect(installed_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO monitoring.cache_entries (key, value) "
            "SELECT 'user:' || i, '1'::jsonb FROM generate_series(1, 10000) AS i "
            "UNION ALL SELECT 'post:' || i, '1'::jsonb FROM generate_series(1, 10000) AS i"
        )
        conn.execute("ANALYZE monitoring.cache_entries")
        with conn.transaction():
            deleted = conn.execute("SELECT monitoring.cache_delete_pattern('user:1*')").fetchone()
            seq_scans, index_rows = conn.execute(
                "SELECT pg_stat_get_xact_numscans('monitoring.cache_entries'::regclass), "
                "pg_stat_get_xact_tuples_fetched('monitoring.cache_entries_pkey'::regclass)"
            ).fetchone()
    assert deleted == (1112,)  # 1, 10-19, 100-199, 1000-1999, 10000
    assert seq_scans == 0, "no sequential scan"
    assert index_rows < 2000


def test_an_unreachable_database_answers_as_misses_or_raises_at_once() -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    strict = SyncPostgresCache(dsn, timeout=0.2)
    cache = SyncPostgresCache(dsn, timeout=0.2, outage_as_miss=True)
    with pytest.raises(UnavailableError):
        strict.get("k")  # waits its bound for a connection, then opens the breaker
    with pytest.raises(UnavailableError, match="next try in"):
        strict.get("k")
    assert cache.get("k") is None
    started = time.monotonic()
    assert cache.get("k", MISS) is MISS
    assert cache.get_many(["a", "b"]) == {}
    assert cache.exists("k") is False
    assert cache.ttl("k") == -2
    assert cache.set("k", 1) is False
    assert cache.set_many({"a": 1}) == 0
    assert cache.get_or_set("k", lambda: "computed") == "computed"
    for invalidation in (
        lambda: cache.delete("k"),
        lambda: cache.delete_pattern("k*"),
        lambda: cache.delete_tag("t"),
        lambda: cache.expire("k", 1),
        lambda: cache.incr("k"),
        cache.stats,
    ):
        with pytest.raises(UnavailableError):
            invalidation()
    assert time.monotonic() - started < 0.1, "not one of them waited"
    assert cache.hits == cache.misses == 0, "an outage's answers are not misses"
    cache.close()
    strict.close()
