"""The Redis commands as stored-function calls, shared by the sync and asyncio facades.

Encoding follows redis-py: values are bytes, str (UTF-8), int or float (their repr); bool and
anything else is a DataError. Keys are the same, decoded as UTF-8 text (PostgreSQL keys are
text). Replies are bytes unless decode_responses=True. Errors carry Redis's messages.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from .._db.calls import BULK_TIME, Call, only_value
from ..errors import CallTimeoutError, PgMonitoringError, UnavailableError
from .redis_exceptions import ConnectionError, DataError, ResponseError, TimeoutError

NOT_INTEGER = "value is not an integer or out of range"
SCAN_PAGE = 100


class Codec:
    def __init__(self, decode_responses: bool, encoding: str, encoding_errors: str) -> None:
        self.decode_responses = decode_responses
        self.encoding = encoding
        self.encoding_errors = encoding_errors

    def encode(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise DataError(
                f"Invalid input of type: '{type(value).__name__}'. "
                "Convert to a bytes, string, int or float first."
            )
        if isinstance(value, str):
            return value.encode(self.encoding, self.encoding_errors)
        return repr(value).encode()

    def key(self, name: Any) -> str:
        try:
            return self.encode(name).decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"keys must be UTF-8 here: {name!r}") from error

    def reply(self, value: bytes | str | None) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return value if self.decode_responses else value.encode()
        value = bytes(value)
        return value.decode(self.encoding, self.encoding_errors) if self.decode_responses else value


def translate(error: PgMonitoringError, command: str) -> Exception:
    """Redis's error for what the database raised while running `command`."""
    if isinstance(error, CallTimeoutError):
        return TimeoutError(str(error))
    if isinstance(error, UnavailableError):
        return ConnectionError(str(error))
    cause = error.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or ""
    if sqlstate == "22P02":
        return ResponseError(NOT_INTEGER)
    if sqlstate == "22003":
        return ResponseError("increment or decrement would overflow")
    if sqlstate == "22023" and command in ("set", "expire"):
        return ResponseError(f"invalid expire time in '{command}' command")
    return ResponseError(str(error))


def _seconds(value: Any, unit: float, name: str) -> float:
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() / unit) * unit
    if isinstance(value, int) and not isinstance(value, bool):
        return value * unit
    if name == "ex" and isinstance(value, str) and value.isdigit():
        return int(value)
    raise DataError(f"{name} must be datetime.timedelta or int")


def _value(query: str, params: tuple[Any, ...], read: Any = None) -> Call:
    if read is None:
        return Call(query, params, only_value, one_row=True)
    return Call(query, params, lambda row: read(only_value(row)), one_row=True)


def get(codec: Codec, name: Any) -> Call:
    return Call(
        "SELECT value FROM monitoring.cache_get_bytes(%s::text)",
        (codec.key(name),),
        lambda row: None if row is None else codec.reply(row[0]),
        one_row=True,
    )


def set_(codec: Codec, name: Any, value: Any, ex: Any, px: Any, nx: bool, xx: bool) -> Call:
    if ex is not None and px is not None:
        raise DataError(
            "``ex``, ``px``, ``exat``, ``pxat``, and ``keepttl`` are mutually exclusive."
        )
    if nx and xx:
        raise DataError(
            "``nx``, ``xx``, ``ifeq``, ``ifne``, ``ifdeq``, ``ifdne`` are mutually exclusive."
        )
    ttl = None
    if ex is not None:
        ttl = _seconds(ex, 1, "ex")
    elif px is not None:
        ttl = _seconds(px, 0.001, "px")
    return _value(
        "SELECT monitoring.cache_set_bytes(%s::text, %s::bytea, %s::float8, %s, %s)",
        (codec.key(name), codec.encode(value), ttl, nx, xx),
        lambda stored: True if stored else None,
    )


def delete(codec: Codec, names: Iterable[Any]) -> Call:
    return _value(
        "SELECT monitoring.cache_delete(VARIADIC %s::text[])",
        ([codec.key(n) for n in names],),
    )


def exists(codec: Codec, names: Iterable[Any]) -> Call:
    return _value(
        "SELECT monitoring.cache_exists(VARIADIC %s::text[])",
        ([codec.key(n) for n in names],),
    )


def expire(codec: Codec, name: Any, time: Any) -> Call:
    if isinstance(time, datetime.timedelta):
        time = int(time.total_seconds())
    if not isinstance(time, int) or isinstance(time, bool):
        raise ResponseError(NOT_INTEGER)
    return _value(
        "SELECT monitoring.cache_expire(%s::text, %s::float8)",
        (codec.key(name), time),
    )


def ttl(codec: Codec, name: Any) -> Call:
    return _value("SELECT monitoring.cache_ttl(%s::text)", (codec.key(name),))


def incrby(codec: Codec, name: Any, amount: Any) -> Call:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ResponseError(NOT_INTEGER)
    if not -(2**63) <= amount < 2**63:
        raise ResponseError(NOT_INTEGER)
    return _value("SELECT monitoring.cache_incr(%s::text, %s::int8)", (codec.key(name), amount))


def _names(keys: Any, args: tuple[Any, ...]) -> list[Any]:
    """redis-py's list_or_args: one key, or an iterable of keys, plus more keys."""
    if isinstance(keys, (bytes, str, int, float, memoryview, bytearray)):
        names = [keys]
    else:
        names = list(keys)
    return names + list(args)


def mget(codec: Codec, keys: Any, args: tuple[Any, ...]) -> Call:
    return Call(
        "SELECT value FROM monitoring.cache_get_many_bytes(%s::text[])",
        ([codec.key(n) for n in _names(keys, args)],),
        lambda rows: [codec.reply(row["value"]) for row in rows],
    )


def mset(codec: Codec, mapping: Mapping[Any, Any]) -> Call:
    return _value(
        "SELECT monitoring.cache_set_many_bytes(%s::text[], %s::bytea[])",
        ([codec.key(k) for k in mapping], [codec.encode(v) for v in mapping.values()]),
        lambda stored: True,
    )


def keys(codec: Codec, pattern: Any, after: str | None = None, limit: int | None = None) -> Call:
    return Call(
        "SELECT k FROM monitoring.cache_keys(%s::text, %s::text, %s::int8) AS k",
        (codec.key(pattern), after, limit),
        lambda rows: [row["k"] for row in rows],
        extra_time=BULK_TIME,
    )


def flushdb(codec: Codec) -> Call:
    return Call("SELECT monitoring.cache_flush()", (), lambda rows: True, extra_time=BULK_TIME)


def scan_page(codec: Codec, match: Any, after: str | None, count: int | None) -> Call:
    """One page of scan_iter: keys after `after`, in index order (a keyset cursor)."""
    return keys(codec, "*" if match is None else match, after, count or SCAN_PAGE)


__all__ = ["Codec", "translate"]
