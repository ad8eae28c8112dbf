"""Who may send: `Authorization: Bearer <key>`, checked by `monitoring.check_ingest_key`.

A key the database accepted is remembered for `ttl` seconds (10 by default), so a busy
exporter costs one check per key and signal every 10 s rather than one per request; a
revoked key is therefore refused within that time. Refusals are not remembered: a key made
a moment ago works at once. The cache holds SHA-256 digests, not the keys.
"""

from __future__ import annotations

import hashlib
import time

from .._db.connection_async import AsyncConnector
from . import DEFAULT_KEY_CACHE_SECONDS

# Keys are "pgm_" and 64 hex digits; check_ingest_key refuses anything over 128 bytes
# without hashing it, and so does this, without asking.
MAX_KEY_LENGTH = 128
# At most this many accepted (key, scope) pairs are remembered; past it the oldest go.
MAX_ENTRIES = 1024
CHECK = "SELECT monitoring.check_ingest_key(%s, %s)"


def bearer_key(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, or None."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > MAX_KEY_LENGTH:
        return None
    return key


class KeyChecker:
    """Asks the database whether a key may send a signal, remembering yeses `ttl` seconds."""

    def __init__(
        self,
        database: AsyncConnector,
        *,
        ttl: float = DEFAULT_KEY_CACHE_SECONDS,
        timeout: float = 5.0,
    ) -> None:
        self.database = database
        self.ttl = ttl
        self.timeout = timeout
        self._accepted: dict[tuple[bytes, str], float] = {}

    async def allows(self, key: str | None, scope: str) -> bool:
        """Whether `key` may send `scope`; raises UnavailableError when the database is
        away (the caller answers 503: the key may well be good)."""
        if key is None:
            return False
        entry = (hashlib.sha256(key.encode()).digest(), scope)
        now = time.monotonic()
        until = self._accepted.get(entry)
        if until is not None and now < until:
            return True
        allowed = bool(await self.database.fetch_value(CHECK, (key, scope), self.timeout))
        if allowed:
            if len(self._accepted) >= MAX_ENTRIES:
                self._forget_expired(now)
            self._accepted[entry] = now + self.ttl
        else:
            self._accepted.pop(entry, None)
        return allowed

    def _forget_expired(self, now: float) -> None:
        for entry, until in list(self._accepted.items()):
            if until <= now:
                del self._accepted[entry]
        while len(self._accepted) >= MAX_ENTRIES:  # all fresh: the oldest go
            del self._accepted[next(iter(self._accepted))]
