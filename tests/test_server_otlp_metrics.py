"""POST /v1/metrics on a real `pg-monitoring serve`: the OpenTelemetry SDK's own OTLP/HTTP
metrics exporter (counters, up-down counters, histograms, exponential histograms, observable
gauges) stores points that monitoring.metric_points reads back with their values; JSON
bodies, partial success, bad bodies and keys without the metrics scope."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from .conftest import login_role, superuser
from .test_server import JSON, PROTOBUF, Serve, add_key, serve

NOW = time.time_ns()


@pytest.fixture
def server(installed_db: str) -> Iterator[Serve]:
    writer = login_role(installed_db, "pgm_test_serve", "monitoring_writer")
    with serve(writer) as running:
        yield running


def points(dsn: str, name: str) -> list[dict[str, Any]]:
    """monitoring.metric_points of one metric, oldest first."""
    with superuser(dsn) as conn:
        rows = conn.execute(
            "SELECT to_jsonb(p) FROM monitoring.metric_points AS p "
            "WHERE metric_name = %s ORDER BY time, series_id",
            (name,),
        ).fetchall()
    return [row for (row,) in rows]


def series_count(dsn: str) -> int:
    with superuser(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM monitoring.metric_series").fetchone()
    assert row is not None
    return row[0]


def test_the_sdk_exporter_stores_metrics(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "shop", "metrics")
    exporter = OTLPMetricExporter(
        endpoint=server.url + "/v1/metrics",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
        timeout=10,
    )
    # exported when flushed, not on a timer
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "shop", "service.instance.id": "i-1"}),
        metric_readers=[reader],
        views=[View(instrument_name="db.*", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("shop.checkout", "1.0")
    orders = meter.create_counter("orders", unit="1", description="Orders placed")
    queue = meter.create_up_down_counter("queue.depth")
    latency = meter.create_histogram("http.server.duration", unit="s")
    db = meter.create_histogram("db.duration", unit="s")
    temperature = [21.5]
    meter.create_observable_gauge(
        "temperature", [lambda _options: [Observation(temperature[0], {"room": "server"})]]
    )

    orders.add(3, {"route": "/pay", "password": "hunter2"})
    orders.add(2, {"route": "/pay", "password": "hunter2"})
    orders.add(1, {"route": "/cart"})
    queue.add(5)
    queue.add(-7)
    for seconds in (0.003, 0.2, 0.2, 7.0):
        latency.record(seconds, {"route": "/pay"})
    for seconds in (0.5, 1.0, 2.0):
        db.record(seconds)
    assert provider.force_flush(10_000)

    pay = points(installed_db, "orders")
    assert sorted((p["labels"]["route"], p["value"]) for p in pay) == [("/cart", 1), ("/pay", 5)]
    first = next(p for p in pay if p["labels"]["route"] == "/pay")
    assert first["metric_type"] == "sum"
    assert first["temporality"] == "cumulative"
    assert first["monotonic"] is True
    assert first["unit"] == "1"
    assert first["start_time"] is not None
    assert first["service"] == "shop"
    assert first["labels"]["service.name"] == "shop"
    assert first["labels"]["service.instance.id"] == "i-1"
    assert first["labels"]["password"] == "[Filtered]"

    (depth,) = points(installed_db, "queue.depth")
    assert (depth["value"], depth["monotonic"]) == (-2, False)

    (histogram,) = points(installed_db, "http.server.duration")
    assert histogram["metric_type"] == "histogram"
    assert histogram["count"] == 4
    assert histogram["sum"] == pytest.approx(7.403)
    assert (histogram["min"], histogram["max"]) == (0.003, 7.0)
    bounds, counts = histogram["bounds"], histogram["bucket_counts"]
    assert len(counts) == len(bounds) + 1
    assert sum(counts) == 4
    # the SDK's default bounds: 0, 5, 10, 25, ... (ms-sized buckets; these are seconds)
    assert counts[bounds.index(5.0)] == 3  # (0, 5]
    assert counts[bounds.index(10.0)] == 1  # (5, 10]

    (exponential,) = points(installed_db, "db.duration")
    assert exponential["metric_type"] == "exponential_histogram"
    assert (exponential["count"], exponential["sum"]) == (3, 3.5)
    assert sum(exponential["bucket_counts"]) == 3
    for value in (0.5, 1.0, 2.0):  # each in a bucket whose upper bound is at or above it
        assert any(b >= value for b in exponential["bounds"])
    assert exponential["bounds"] == sorted(exponential["bounds"])

    (gauge,) = points(installed_db, "temperature")
    assert (gauge["value"], gauge["labels"]["room"], gauge["metric_type"]) == (
        21.5,
        "server",
        "gauge",
    )

    # a second export: later points of the same series
    known = series_count(installed_db)
    orders.add(4, {"route": "/pay", "password": "hunter2"})
    temperature[0] = 22.0
    provider.shutdown()  # exports what it holds
    assert series_count(installed_db) == known
    pay = [p for p in points(installed_db, "orders") if p["labels"]["route"] == "/pay"]
    assert [p["value"] for p in pay] == [5, 9]
    assert [p["value"] for p in points(installed_db, "temperature")] == [21.5, 22.0]


def test_a_key_without_the_metrics_scope_is_refused(server: Serve, installed_db: str) -> None:
    traces_only = add_key(installed_db, "tracer", "traces")
    metrics_only = add_key(installed_db, "meter", "metrics")
    empty = metrics_service_pb2.ExportMetricsServiceRequest().SerializeToString()
    refused = server.post("/v1/metrics", empty, PROTOBUF, traces_only)
    assert refused.status_code == 401
    assert status_pb2.Status.FromString(refused.content).code == 16  # UNAUTHENTICATED
    assert server.post("/v1/metrics", empty, PROTOBUF).status_code == 401
    assert server.post("/v1/metrics", empty, PROTOBUF, metrics_only).status_code == 200
    assert server.post("/v1/traces", b"{}", JSON, metrics_only).status_code == 401
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("m").create_counter("c").add(1)
    exporter = OTLPMetricExporter(
        endpoint=server.url + "/v1/metrics",
        headers={"Authorization": f"Bearer {traces_only}"},
        timeout=10,
    )
    started = time.monotonic()
    assert exporter.export(reader.get_metrics_data()) == MetricExportResult.FAILURE
    assert time.monotonic() - started < 5  # 401 is not retried
    exporter.shutdown()
    provider.shutdown()
    assert points(installed_db, "c") == []


def json_request(metrics: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]
                    },
                    "scopeMetrics": [{"scope": {"name": "manual"}, "metrics": metrics}],
                }
            ]
        }
    ).encode()


def test_a_json_post_stores_metrics_and_says_what_it_refused(
    server: Serve, installed_db: str
) -> None:
    key = add_key(installed_db, "cart", "metrics")
    body = json_request(
        [
            {
                "name": "cart.items",
                "gauge": {
                    "dataPoints": [
                        {"timeUnixNano": str(NOW), "asInt": "3"},
                        {"timeUnixNano": str(NOW + 10**9), "asDouble": 4.5},
                        {"timeUnixNano": "soon", "asInt": "1"},
                    ]
                },
            },
            {
                "name": "cart.latency",
                "summary": {
                    "dataPoints": [
                        {
                            "timeUnixNano": str(NOW),
                            "count": "3",
                            "sum": 0.6,
                            "quantileValues": [{"quantile": 0.5, "value": 0.2}],
                        }
                    ]
                },
            },
        ]
    )
    response = server.post("/v1/metrics", body, JSON, key)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    partial = response.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1"
    assert "timeUnixNano must be Unix nanoseconds" in partial["errorMessage"]
    assert [p["value"] for p in points(installed_db, "cart.items")] == [3, 4.5]
    (summary,) = points(installed_db, "cart.latency")
    assert (summary["quantiles"], summary["quantile_values"]) == ([0.5], [0.2])
    # sent again (a retry): stored once, and a whole success
    again = server.post("/v1/metrics", body, JSON, key)
    assert again.json()["partialSuccess"]["rejectedDataPoints"] == "1"
    assert len(points(installed_db, "cart.items")) == 2


def test_a_metric_of_many_points_is_stored_in_batches(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "cart", "metrics")
    body = json_request(
        [
            {
                "name": "cart.size",
                "gauge": {
                    "dataPoints": [
                        {
                            "timeUnixNano": str(NOW),
                            "asInt": str(i),
                            "attributes": [{"key": "user", "value": {"intValue": str(i)}}],
                        }
                        for i in range(2500)
                    ]
                },
            }
        ]
    )
    response = server.post("/v1/metrics", body, JSON, key)
    assert response.status_code == 200, response.text
    assert "partialSuccess" not in response.json()
    assert len(points(installed_db, "cart.size")) == 2500


def test_bad_bodies_are_400(server: Serve, installed_db: str) -> None:
    key = add_key(installed_db, "cart", "metrics")
    garbage = server.post("/v1/metrics", b"\xff\xff\xff\xff", PROTOBUF, key)
    assert garbage.status_code == 400
    assert status_pb2.Status.FromString(garbage.content).code == 3  # INVALID_ARGUMENT
    for body in (b"{not json", b"[]", b'{"resourceMetrics": [{"scopeMetrics": {}}]}'):
        refused = server.post("/v1/metrics", body, JSON, key)
        assert refused.status_code == 400, body
        assert refused.json()["code"] == 3


def test_writers_of_the_same_new_series_at_once(installed_db: str) -> None:
    """Four exporters (one resource: replicas without an instance id) sending the same 300
    new series at the same moment, twice: each series stored once, every point once, no
    error (one writer waits for another's new series and then finds it)."""
    writers, series = 4, 300

    def body(writer: int, round_: int) -> str:
        at = str(NOW - (10 - round_) * 10**9 + writer * 1000)
        return json_request(
            [
                {
                    "name": "jobs",
                    "sum": {
                        "aggregationTemporality": 2,
                        "isMonotonic": True,
                        "dataPoints": [
                            {
                                "timeUnixNano": at,
                                "asInt": str(writer),
                                "attributes": [{"key": "queue", "value": {"intValue": str(q)}}],
                            }
                            for q in range(series)
                        ],
                    },
                }
            ]
        ).decode()

    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            with psycopg.connect(installed_db, autocommit=True) as conn:
                for round_ in range(2):
                    barrier.wait()
                    answer = conn.execute(
                        "SELECT monitoring.record_metrics(%s::jsonb)", (body(writer, round_),)
                    ).fetchone()
                    assert answer is not None
                    assert answer[0]["stored"] == series, answer
        except BaseException as error:  # re-raised below, in the test's thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert series_count(installed_db) == series
    assert len(points(installed_db, "jobs")) == writers * series * 2
    with superuser(installed_db) as conn:
        row = conn.execute("SELECT max(id) FROM monitoring.metric_series").fetchone()
    # new series are looked for before they are stored: few ids are used up by conflicts
    assert row is not None
    assert row[0] <= series * writers
