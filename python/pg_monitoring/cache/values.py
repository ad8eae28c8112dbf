"""What a cache entry holds: JSON (stored as jsonb) or bytes (stored raw), and MISS.

A cached None is JSON null, distinct from a miss when `get` is given `default=MISS`. A value
JSON can not hold is refused before any call, with an error that names its key and says
what to store instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Final, TypeAlias

from ..errors import InvalidArgumentError

TTL: TypeAlias = float | int | timedelta | None


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()
"""Pass as `default` to `get` to tell a miss from a cached None."""

# How to turn what JSON can not hold into what it can, by type name; bytes hold anything.
_CONVERSIONS = {
    "datetime": ".isoformat()",
    "date": ".isoformat()",
    "time": ".isoformat()",
    "timedelta": ".total_seconds()",
    "Decimal": "str() or float()",
    "UUID": "str()",
    "set": "list() or sorted()",
    "frozenset": "list() or sorted()",
    "bytes": "base64 or .hex() (bytes are stored raw only as the whole value)",
    "bytearray": "base64 or .hex() (bytes are stored raw only as the whole value)",
}


def seconds(ttl: TTL) -> float | None:
    return ttl.total_seconds() if isinstance(ttl, timedelta) else ttl


def is_bytes(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


class _NotJson(TypeError):
    def __init__(self, value: object) -> None:
        super().__init__(type(value).__name__)


def _refuse(value: object) -> Any:
    raise _NotJson(value)


def to_json(key: str, value: Any) -> str:
    """`value` as the JSON text of a cache entry, or an error naming the key and the way out.

    The values are JSON so that SQL can read them; psycopg's own dumper would pass NaN on
    for the database to refuse, and leave other types to a bare TypeError.
    """
    try:
        return json.dumps(value, allow_nan=False, default=_refuse)
    except _NotJson as error:
        kind = str(error)
        conversion = _CONVERSIONS.get(kind, "str(), or a dict or list of JSON values")
        raise TypeError(
            f"the cache value for {key!r} is not JSON: a {kind} is not a JSON type. "
            f"Convert it first ({conversion}), or store bytes you encode yourself "
            "(pickle.dumps(value), for one)"
        ) from None
    except ValueError as error:
        if "ircular" in str(error):
            raise InvalidArgumentError(
                f"the cache value for {key!r} is not JSON: it contains itself"
            ) from None
        raise InvalidArgumentError(
            f"the cache value for {key!r} is not JSON: JSON has no NaN or Infinity, and the "
            "value holds a float that is one. Store None or a string in its place"
        ) from None
    except TypeError as error:  # a dict key JSON can not name
        raise TypeError(f"the cache value for {key!r} is not JSON: {error}") from None


def to_json_object(mapping: Mapping[str, Any]) -> str:
    """set_many's mapping as one JSON object; a bad value's error names its key."""
    try:
        return json.dumps(dict(mapping), allow_nan=False, default=_refuse)
    except (TypeError, ValueError):
        for key, value in mapping.items():
            to_json(key, value)
        raise


def from_row(row: tuple[Any, Any] | None) -> Any:
    """A (value, value_bytes) row as the cached value; MISS when there is no row."""
    if row is None:
        return MISS
    return row[1] if row[1] is not None else row[0]


def from_dict(row: dict[str, Any]) -> Any:
    return row["value_bytes"] if row["value_bytes"] is not None else row["value"]


def text_list(items: Iterable[str] | None) -> list[str] | None:
    return None if items is None else list(items)
