"""pg_monitoring.monitoring.metrics: the design document's families under their spec names,
one set per registry, shared with the cache clients and the ASGI middleware; a page promtool
accepts."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from psycopg_pool import ConnectionPool

from pg_monitoring.cache import SyncPostgresCache
from pg_monitoring.integrations.asgi import request_metrics
from pg_monitoring.monitoring import metrics
from pg_monitoring.monitoring.metrics import MetricsCollector, query_duration_histogram

from .conftest import import_error_without

PROMTOOL = shutil.which("promtool")

# name -> type, as the shared spec fixes them
FAMILIES = {
    "pg_monitoring_graphql_requests": "counter",
    "pg_monitoring_graphql_request_duration_seconds": "histogram",
    "pg_monitoring_graphql_query_complexity": "histogram",
    "pg_monitoring_query_duration_seconds": "histogram",
    "pg_monitoring_db_pool_connections": "gauge",
    "pg_monitoring_db_pool_max_connections": "gauge",
    "pg_monitoring_cache_hits": "counter",
    "pg_monitoring_cache_misses": "counter",
    "pg_monitoring_passthrough_queries": "counter",
    "pg_monitoring_turbo_router_hits": "counter",
    "pg_monitoring_apq_cache_hits": "counter",
    "pg_monitoring_mutation_duration_seconds": "histogram",
}


def families(registry: CollectorRegistry) -> dict[str, str]:
    return {
        family.name: family.type
        for family in registry.collect()
        if family.name.startswith("pg_monitoring_")
    }


def test_the_families_and_their_names() -> None:
    registry = CollectorRegistry()
    MetricsCollector(registry)
    assert families(registry) == FAMILIES


def test_the_design_documents_calls_as_written() -> None:
    metrics.graphql_requests_total.labels(operation="GetUser", status="success").inc()
    metrics.graphql_request_duration.labels(operation="GetUser").observe(0.07)
    metrics.graphql_query_complexity.observe(42)
    query_duration_histogram.labels(operation="GetUser").observe(0.3)
    metrics.db_pool_connections.labels(state="active").set(3)
    metrics.cache_hits.inc()
    metrics.cache_misses.inc()
    value = REGISTRY.get_sample_value
    assert value(
        "pg_monitoring_graphql_requests_total", {"operation": "GetUser", "status": "success"}
    )
    assert value(
        "pg_monitoring_graphql_request_duration_seconds_bucket",
        {"operation": "GetUser", "le": "0.1"},
    )
    assert value("pg_monitoring_query_duration_seconds_count", {"operation": "GetUser"})
    assert value("pg_monitoring_db_pool_connections", {"state": "active"}) == 3
    assert value("pg_monitoring_graphql_query_complexity_bucket", {"le": "50.0"})


def test_buckets_are_the_documents() -> None:
    registry = CollectorRegistry()
    collector = MetricsCollector(registry)
    collector.graphql_request_duration.labels(operation="x").observe(1)
    collector.graphql_query_complexity.observe(1)
    bounds = {
        name: [s.labels["le"] for s in family.samples if s.name.endswith("_bucket")]
        for family in registry.collect()
        for name in [family.name]
        if name
        in (
            "pg_monitoring_graphql_request_duration_seconds",
            "pg_monitoring_graphql_query_complexity",
        )
    }
    assert bounds["pg_monitoring_graphql_request_duration_seconds"] == [
        "0.01", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"
    ]  # fmt: skip
    assert bounds["pg_monitoring_graphql_query_complexity"] == [
        "10.0", "25.0", "50.0", "100.0", "250.0", "500.0", "1000.0", "+Inf"
    ]  # fmt: skip


def test_one_set_per_registry() -> None:
    assert MetricsCollector().cache_hits is metrics.cache_hits
    assert MetricsCollector(REGISTRY).graphql_requests_total is metrics.graphql_requests_total
    registry = CollectorRegistry()
    first, second = MetricsCollector(registry), MetricsCollector(registry)
    assert first.mutation_duration is second.mutation_duration
    assert first.mutation_duration is not metrics.mutation_duration
    assert request_metrics(registry) == (
        first.graphql_requests_total,
        first.graphql_request_duration,
    ), "the middleware counts in the same families"


def test_a_family_the_application_registered_is_used() -> None:
    registry = CollectorRegistry()
    own = Counter("pg_monitoring_apq_cache_hits", "mine", registry=registry)
    assert MetricsCollector(registry).apq_cache_hits is own


def test_track_query_execution() -> None:
    registry = CollectorRegistry()
    collector = MetricsCollector(registry)
    collector.track_query_execution("passthrough", 0.2, 42)
    collector.track_query_execution("normal", 0.02, 7)
    value = registry.get_sample_value
    assert value("pg_monitoring_passthrough_queries_total") == 1
    assert (
        value("pg_monitoring_graphql_request_duration_seconds_sum", {"operation": "passthrough"})
        == 0.2
    )
    assert (
        value("pg_monitoring_graphql_request_duration_seconds_count", {"operation": "normal"}) == 1
    )
    assert value("pg_monitoring_graphql_query_complexity_count") == 2
    assert value("pg_monitoring_graphql_query_complexity_sum") == 49


@pytest.mark.parametrize("cache_first", [True, False])
def test_the_cache_client_counts_in_the_same_counters(installed_db: str, cache_first: bool) -> None:
    registry = CollectorRegistry()
    with ConnectionPool(installed_db, min_size=1, max_size=2) as pool:
        if cache_first:
            cache = SyncPostgresCache(pool, prometheus=registry)
            collector = MetricsCollector(registry)
        else:
            collector = MetricsCollector(registry)
            cache = SyncPostgresCache(pool, prometheus=registry)
        cache.set("a", 1)
        cache.get("a")
        cache.get("b")
        collector.cache_hits.inc()  # the application's own, e.g. an APQ lookup
        # a second cache on the same registry: still no duplicate registration
        SyncPostgresCache(pool, prometheus=registry).get("c")
        cache.close()
    assert registry.get_sample_value("pg_monitoring_cache_hits_total") == 2
    assert registry.get_sample_value("pg_monitoring_cache_misses_total") == 2
    assert list(families(registry)).count("pg_monitoring_cache_hits") == 1


def test_without_prometheus_client_the_error_names_the_extra() -> None:
    message = import_error_without("prometheus_client", "pg_monitoring.monitoring.metrics")
    assert "pg-monitoring[prometheus]" in message


def test_promtool_accepts_a_registry_with_everything() -> None:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    registry = CollectorRegistry()
    collector = MetricsCollector(registry)
    request_metrics(registry)
    collector.graphql_requests_total.labels(operation="GetUser", status="error").inc()
    collector.track_query_execution("passthrough", 0.2, 42)
    collector.query_duration_histogram.labels(operation='Odd "name"\n').observe(3)
    for state in ("active", "idle", "waiting"):
        collector.db_pool_connections.labels(state=state).set(1)
    collector.db_pool_max_connections.set(4)
    collector.turbo_router_hits.inc()
    collector.apq_cache_hits.inc()
    collector.mutation_duration.labels(mutation_name="createUser").observe(0.5)
    page = generate_latest(registry).decode()
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=page, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (checked.stdout + checked.stderr).strip() == "", "no lint remarks"
