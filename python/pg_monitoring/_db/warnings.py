"""Warnings about failed calls, at most one per kind every LOG_INTERVAL seconds: a database
that is down, or a full queue, would otherwise write a line per call. The clients' counters
keep every failure."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("pg_monitoring")

LOG_INTERVAL = 10.0


class QuietWarnings:
    """Warnings on the `pg_monitoring` logger, each starting with `who`."""

    def __init__(self, who: str) -> None:
        self._who = who
        self._lock = threading.Lock()
        self._logged_at: dict[str, float] = {}

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._logged_at.get(kind, -LOG_INTERVAL) < LOG_INTERVAL:
                return
            self._logged_at[kind] = now
        logger.warning("pg_monitoring: %s: %s", self._who, message)
