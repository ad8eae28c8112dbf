"""The Redis facade against a real redis-server: the same commands, the same replies.

Hypothesis draws command sequences (keys and patterns full of glob metacharacters, TTL edges,
INCR on missing and non-integer values) and runs each on redis-py + redis-server and on
pg_monitoring.redis_compat + PostgreSQL; every reply and every error must be the same.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool, ConnectionPool

import pg_monitoring.redis_compat as compat
import pg_monitoring.redis_compat.asyncio as compat_asyncio

from .redis_server import redis_server

# Characters that mean something to Redis globs, to LIKE, to regular expressions, or nothing.
ALPHABET = "ab*?[]^-\\%_.:x"
keys = st.text(alphabet=ALPHABET, max_size=4)
patterns = st.text(alphabet=ALPHABET, max_size=5)
values = st.one_of(
    st.binary(max_size=4),
    st.text(alphabet="ab1-é", max_size=3),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63), 1.5, "01", " 1", "+1", "-0", True]),
)
# TTLs that a few milliseconds of difference between the two servers can not change.
seconds = st.sampled_from([-5, -1, 0, 100, 5000, timedelta(seconds=300), 10**9])
milliseconds = st.sampled_from([-1, 0, 200_000, 7_000_000, timedelta(minutes=3)])

commands = st.one_of(
    st.tuples(st.just("get"), keys),
    st.tuples(
        st.just("set"),
        keys,
        values,
        st.fixed_dictionaries(
            {},
            optional={"ex": seconds, "px": milliseconds, "nx": st.booleans(), "xx": st.booleans()},
        ),
    ),
    st.tuples(st.just("delete"), st.lists(keys, min_size=1, max_size=3)),
    st.tuples(st.just("exists"), st.lists(keys, min_size=1, max_size=3)),
    st.tuples(st.just("expire"), keys, seconds),
    st.tuples(st.just("ttl"), keys),
    st.tuples(st.just("incr"), keys),
    st.tuples(st.just("incrby"), keys, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.tuples(st.just("mget"), st.lists(keys, min_size=1, max_size=3)),
    st.tuples(st.just("mset"), st.dictionaries(keys, values, min_size=1, max_size=3)),
    st.tuples(st.just("keys"), patterns),
    st.tuples(st.just("scan_iter"), patterns),
)


def apply(client: Any, command: tuple[Any, ...]) -> Any:
    """Runs one command; the reply, or the error's class name and message."""
    name, *args = command
    try:
        if name == "set":
            key, value, options = args
            return client.set(key, value, **options)
        if name in ("delete", "exists", "mget"):
            return getattr(client, name)(*args[0])
        if name == "keys":
            return sorted(client.keys(args[0]))
        if name == "scan_iter":
            return sorted(client.scan_iter(match=args[0], count=3))
        return getattr(client, name)(*args)
    except Exception as error:
        return (type(error).__name__, str(error))


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    with redis_server() as port:
        yield port


@pytest.fixture
def real(redis_port: int) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_port, protocol=2)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def ours(installed_db: str) -> Iterator[compat.Redis]:
    with ConnectionPool(installed_db, min_size=1, max_size=1) as pool:
        yield compat.from_url(pool)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(commands, min_size=1, max_size=12))
def test_same_replies_as_redis(
    real: redis.Redis, ours: compat.Redis, sequence: list[tuple[Any, ...]]
) -> None:
    real.flushdb()
    ours.flushdb()
    for command in sequence:
        assert apply(ours, command) == apply(real, command), command


def test_the_examples_that_matter(real: redis.Redis, ours: compat.Redis) -> None:
    script = [
        ("mset", {"user:1": 1, "user:2": 2, "user:10": 10, "h[e]llo": 0, "": "empty", "a%b": 0}),
        ("keys", "user:?"),
        ("keys", "[a-]b"),
        ("keys", "h\\[e\\]llo"),
        ("keys", "a%b"),
        ("keys", "**"),
        ("keys", "*"),
        ("keys", "[ab"),
        ("incr", "missing"),
        ("incrby", "missing", 9223372036854775806),
        ("incr", "missing"),
        ("set", "f", 1.5, {}),
        ("incr", "f"),
        ("set", "t", 1, {"ex": 0}),
        ("set", "t", 1, {"px": -1}),
        ("set", "t", 1, {"ex": 100, "px": 1000}),
        ("set", "t", 1, {"nx": True, "xx": True}),
        ("set", "absent", b"", {"ex": -5, "xx": True}),  # found by Hypothesis: still an error
        ("set", "t", True, {}),
        ("set", "t", 1, {"ex": 100}),
        ("ttl", "t"),
        ("expire", "t", -1),
        ("ttl", "t"),
        ("ttl", "user:1"),
    ]
    for command in script:
        assert apply(ours, command) == apply(real, command), command


def test_decode_responses(installed_db: str) -> None:
    client = compat.from_url(installed_db, decode_responses=True)
    try:
        client.set("k", "välue")
        assert client.get("k") == "välue"
        assert client.keys() == ["k"]
        assert client.mget("k", "x") == ["välue", None]
    finally:
        client.close()


async def test_asyncio_facade_is_the_design_documents_one_line_change(installed_db: str) -> None:
    redis_client = compat_asyncio.from_url(installed_db)
    await redis_client.set("key", "value", ex=3600)
    assert await redis_client.get("key") == b"value"
    assert await redis_client.ttl("key") == 3600
    assert await redis_client.incr("n") == 1
    assert [key async for key in redis_client.scan_iter(match="k*")] == [b"key"]
    with pytest.raises(compat_asyncio.ResponseError, match="not an integer"):
        await redis_client.incr("key")
    await redis_client.aclose()
    async with AsyncConnectionPool(installed_db, min_size=1, max_size=1) as pool:
        assert await compat_asyncio.from_url(pool).get("key") == b"value"


def test_json_values_read_as_their_text(installed_db: str) -> None:
    with psycopg.connect(installed_db, autocommit=True) as conn:
        conn.execute("""SELECT monitoring.cache_set('j', '{"a": [1, 2]}')""")
        client = compat.from_url(conn)
        assert client.get("j") == b'{"a": [1, 2]}'


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        datetime(2024, 5, 1),
        Decimal("1.5"),
        uuid.UUID(int=3),
        {1, 2},
        True,
        None,
    ],
)
def test_values_the_cache_refuses_are_redis_pys_to_judge(installed_db: str, value: object) -> None:
    """The facade stores what redis-py would send (NaN as b'nan') and refuses what redis-py
    refuses, with redis-py's DataError: the cache's JSON rules are not its business."""
    encoder = redis.connection.Encoder("utf-8", "strict", decode_responses=False)
    expected: bytes | str
    try:
        expected = encoder.encode(value)
    except redis.DataError as refused:
        expected = str(refused)
    client = compat.from_url(installed_db)
    try:
        if isinstance(expected, str):
            with pytest.raises(compat.DataError, match=re.escape(expected)):
                client.set("k", value)
        else:
            assert client.set("k", value) is True
            assert client.get("k") == expected
    finally:
        client.close()
