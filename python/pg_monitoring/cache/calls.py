"""Every call the cache makes, built once for both clients: one stored function each."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._db.calls import BULK_TIME, RAISE, Call, Rows, only_value
from .values import (
    MISS,
    TTL,
    from_dict,
    from_row,
    is_bytes,
    seconds,
    text_list,
    to_json,
    to_json_object,
)

# get_or_set's status while the database is unreachable (outage_as_miss): compute, store
# nothing.
UNAVAILABLE = "unavailable"


def store(key: str, value: Any, ttl: TTL, nx: bool, xx: bool, tags: Iterable[str] | None) -> Call:
    raw = is_bytes(value)
    function = "cache_set_bytes" if raw else "cache_set"
    cast = "bytea" if raw else "jsonb"
    return Call(
        f"SELECT monitoring.{function}(%s::text, %s::{cast}, %s::float8, %s, %s, %s::text[])",
        (key, bytes(value) if raw else to_json(key, value), seconds(ttl), nx, xx, text_list(tags)),
        only_value,
        one_row=True,
        outage_value=False,
    )


def get(key: str) -> Call:
    return Call(
        "SELECT value, value_bytes FROM monitoring.cache_get(%s::text)",
        (key,),
        from_row,
        one_row=True,
    )


def get_many(keys: Iterable[str]) -> Call:
    return Call(
        "SELECT key, value, value_bytes FROM monitoring.cache_get_many(%s::text[])",
        (list(keys),),
        lambda rows: {row["key"]: from_dict(row) for row in rows},
    )


def _value_call(
    query: str,
    *params: Any,
    read: Callable[[Any], Any] = lambda v: v,
    extra_time: float = 0.0,
    outage_value: Any = RAISE,
) -> Call:
    return Call(
        query,
        params,
        lambda row: read(only_value(row)),
        one_row=True,
        extra_time=extra_time,
        outage_value=outage_value,
    )


def set_many(mapping: Mapping[str, Any], ttl: TTL) -> Call:
    return _value_call(
        "SELECT monitoring.cache_set_many(%s::jsonb, %s::float8)",
        to_json_object(mapping),
        seconds(ttl),
        outage_value=0,
    )


def delete(key: str) -> Call:
    return _value_call("SELECT monitoring.cache_delete(VARIADIC %s::text[])", [key], read=bool)


def delete_pattern(pattern: str) -> Call:
    return _value_call(
        "SELECT monitoring.cache_delete_pattern(%s::text)", pattern, extra_time=BULK_TIME
    )


def delete_tag(tag: str) -> Call:
    return _value_call("SELECT monitoring.cache_delete_tag(%s::text)", tag, extra_time=BULK_TIME)


def exists(key: str) -> Call:
    return _value_call(
        "SELECT monitoring.cache_exists(VARIADIC %s::text[])",
        [key],
        read=bool,
        outage_value=False,
    )


def expire(key: str, ttl: TTL) -> Call:
    return _value_call("SELECT monitoring.cache_expire(%s::text, %s::float8)", key, seconds(ttl))


def ttl(key: str) -> Call:
    return _value_call("SELECT monitoring.cache_ttl(%s::text)", key, outage_value=-2)


def incr(key: str, amount: int) -> Call:
    return _value_call("SELECT monitoring.cache_incr(%s::text, %s::int8)", key, amount)


def get_or_lock(key: str, lock_timeout: float, wait: float) -> Call:
    return Call(
        "SELECT status, value, value_bytes "
        "FROM monitoring.cache_get_or_lock(%s::text, %s::float8, %s::float8)",
        (key, lock_timeout, wait),
        lambda rows: (rows[0]["status"], from_dict(rows[0])),
        extra_time=wait,  # it waits in the server, by design, for another caller's value
        outage_value=(UNAVAILABLE, None),
    )


def unlock(key: str) -> Call:
    return _value_call("SELECT monitoring.cache_unlock(%s::text)", key)


def record_stats(hits: int, misses: int) -> Call:
    return Call(
        "SELECT monitoring.cache_record_stats(%s::int8, %s::int8)",
        (hits, misses),
        lambda rows: None,
    )


STATS = Call(
    "SELECT * FROM monitoring.cache_stats()", (), lambda rows: rows[0], extra_time=BULK_TIME
)


def counted_get(count: Callable[[int, int], None], key: str, default: Any) -> Call:
    """`get(key)`, counting its hit or miss, answering `default` on a miss."""
    call = get(key)

    def read(row: Any) -> Any:
        value = call.read(row)
        count(value is not MISS, value is MISS)
        return default if value is MISS else value

    return Call(call.query, call.params, read, call.one_row, outage_value=default)


def counted_get_many(count: Callable[[int, int], None], keys: list[str]) -> Call:
    call = get_many(keys)

    def read(rows: Rows) -> Any:
        found = call.read(rows)
        count(len(found), len(keys) - len(found))
        return found

    return Call(call.query, call.params, read, outage_value={})
