"""Metric families on a prometheus_client registry, each made once per registry.

A registry refuses a second collector under a name it holds already, so everything of ours
that counts (the cache clients, the ASGI middleware, pg_monitoring.monitoring.metrics) asks
`family()` here instead of constructing: the same name on the same registry is then the same
object, whichever part asked first.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

EXTRA_HINT = (
    "prometheus_client is not installed: install the extra, "
    "`pip install 'pg-monitoring[prometheus]'`"
)

_families: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def prometheus_client() -> Any:
    """The prometheus_client module, or an ImportError naming the extra to install."""
    try:
        import prometheus_client
    except ImportError as error:
        raise ImportError(EXTRA_HINT, name="prometheus_client") from error
    return prometheus_client


def registry_or_default(registry: Any) -> Any:
    """`registry`, or prometheus_client's global REGISTRY for None or True."""
    if registry is None or registry is True:
        return prometheus_client().REGISTRY
    return registry


def family(
    registry: Any,
    kind: str,
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    **options: Any,
) -> Any:
    """The `kind` ("Counter", "Gauge", "Histogram") called `name` on `registry` (None: the
    global one): made on the first call, the same object on every later one. One the
    application registered there itself under that name is used as it is, when of that kind.
    """
    client = prometheus_client()
    registry = registry_or_default(registry)
    cls = getattr(client, kind)
    if kind == "Counter":  # prometheus_client names a counter without its _total
        name = name.removesuffix("_total")
    with _lock:
        known = _families.setdefault(registry, {})
        if name not in known:
            try:
                known[name] = cls(name, documentation, list(labels), registry=registry, **options)
            except ValueError:  # "Duplicated timeseries": made outside this module
                # prometheus_client keeps no public index of a registry's collectors
                existing = registry._names_to_collectors.get(name)
                if not isinstance(existing, cls):
                    raise
                known[name] = existing
        return known[name]
