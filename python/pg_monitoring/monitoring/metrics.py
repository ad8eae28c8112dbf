"""The design document's Prometheus metrics, under a `pg_monitoring_` prefix.

    from pg_monitoring.monitoring.metrics import MetricsCollector, graphql_requests_total

    graphql_requests_total.labels(operation="GetUser", status="success").inc()
    MetricsCollector().track_query_execution("passthrough", 0.012, complexity=42)

The module's names are the families on prometheus_client's global registry, made when the
module is first imported; `MetricsCollector(registry)` holds the same families on another
registry. Each family exists once per registry (pg_monitoring._prometheus): the cache
clients' `prometheus=` counters are this module's `cache_hits` and `cache_misses`, and the
ASGI middleware's request metrics are `graphql_requests_total` and
`graphql_request_duration`.

Needs the `prometheus` extra (prometheus_client); without it the import fails saying so.
"""

from __future__ import annotations

from typing import Any

from .._prometheus import family, prometheus_client, registry_or_default
from ..cache.base import prometheus_counters

prometheus_client()  # the ImportError that names the extra, before anything else

__all__ = [
    "COMPLEXITY_BUCKETS",
    "DURATION_BUCKETS",
    "MetricsCollector",
    "apq_cache_hits",
    "cache_hits",
    "cache_misses",
    "db_pool_connections",
    "db_pool_max_connections",
    "graphql_query_complexity",
    "graphql_request_duration",
    "graphql_requests_total",
    "mutation_duration",
    "passthrough_queries",
    "query_duration_histogram",
    "turbo_router_hits",
]

# The design document's buckets.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMPLEXITY_BUCKETS = (10, 25, 50, 100, 250, 500, 1000)


class MetricsCollector:
    """The families on `registry` (default: prometheus_client's global REGISTRY). Every
    collector of one registry holds the same objects: constructing one registers nothing
    twice.

    The document's FraiseQLMetrics counters are here too, as passthrough_queries
    (`pg_monitoring_passthrough_queries_total`), turbo_router_hits, apq_cache_hits and
    mutation_duration.
    """

    def __init__(self, registry: Any = None) -> None:
        self.registry = registry_or_default(registry)
        r = self.registry
        self.graphql_requests_total = family(
            r,
            "Counter",
            "pg_monitoring_graphql_requests_total",
            "Total GraphQL requests",
            ["operation", "status"],
        )
        self.graphql_request_duration = family(
            r,
            "Histogram",
            "pg_monitoring_graphql_request_duration_seconds",
            "GraphQL request duration",
            ["operation"],
            buckets=DURATION_BUCKETS,
        )
        self.graphql_query_complexity = family(
            r,
            "Histogram",
            "pg_monitoring_graphql_query_complexity",
            "GraphQL query complexity score (pg_monitoring.analysis.complexity)",
            buckets=COMPLEXITY_BUCKETS,
        )
        self.query_duration_histogram = family(
            r,
            "Histogram",
            "pg_monitoring_query_duration_seconds",
            "GraphQL query duration, by operation name",
            ["operation"],
            buckets=DURATION_BUCKETS,
        )
        self.db_pool_connections = family(
            r,
            "Gauge",
            "pg_monitoring_db_pool_connections",
            "Database pool connections (active: lent out, idle: in the pool, "
            "waiting: requests waiting for one)",
            ["state"],
        )
        self.db_pool_max_connections = family(
            r, "Gauge", "pg_monitoring_db_pool_max_connections", "Database pool max size"
        )
        self.cache_hits, self.cache_misses = prometheus_counters(r)
        self.passthrough_queries = family(
            r, "Counter", "pg_monitoring_passthrough_queries", "Queries using JSON passthrough"
        )
        self.turbo_router_hits = family(
            r, "Counter", "pg_monitoring_turbo_router_hits", "TurboRouter cache hits"
        )
        self.apq_cache_hits = family(r, "Counter", "pg_monitoring_apq_cache_hits", "APQ cache hits")
        self.mutation_duration = family(
            r,
            "Histogram",
            "pg_monitoring_mutation_duration_seconds",
            "Mutation execution time",
            ["mutation_name"],
        )

    def track_query_execution(self, mode: str, duration: float, complexity: float) -> None:
        """As the document's FraiseQLMetrics: a passthrough query counted, the duration
        observed under `operation=mode`, the complexity score observed."""
        if mode == "passthrough":
            self.passthrough_queries.inc()
        self.graphql_request_duration.labels(operation=mode).observe(duration)
        self.graphql_query_complexity.observe(complexity)


_default = MetricsCollector()

graphql_requests_total = _default.graphql_requests_total
graphql_request_duration = _default.graphql_request_duration
graphql_query_complexity = _default.graphql_query_complexity
query_duration_histogram = _default.query_duration_histogram
db_pool_connections = _default.db_pool_connections
db_pool_max_connections = _default.db_pool_max_connections
cache_hits = _default.cache_hits
cache_misses = _default.cache_misses
passthrough_queries = _default.passthrough_queries
turbo_router_hits = _default.turbo_router_hits
apq_cache_hits = _default.apq_cache_hits
mutation_duration = _default.mutation_duration
