"""JSON text that PostgreSQL's jsonb takes, for the arguments serve passes to SQL.

jsonb refuses the escape of U+0000, which JavaScript and Python write for a NUL in a
string (a binary value in a message or an attribute): one such character would fail the
whole request. U+FFFD stands for it, as monitoring.parse_json does for captures.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# A \u0000 escape, with the backslashes before it: an even number of them (an escaped
# backslash, then the text u0000) is no escape.
_NUL_ESCAPE = re.compile(rb"(\\+)u0000")


def without_nul(data: bytes) -> bytes:
    """`data`, JSON, with each \\u0000 escape made \\ufffd."""
    if b"\\u0000" not in data:
        return data
    return _NUL_ESCAPE.sub(
        lambda m: m.group(0) if len(m.group(1)) % 2 == 0 else m.group(1)[:-1] + rb"\ufffd",
        data,
    )


def dumps(value: Any) -> bytes:
    """`value` as JSON that jsonb takes (psycopg's Jsonb(value, dumps=dumps))."""
    return without_nul(orjson.dumps(value))
