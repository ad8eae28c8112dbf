"""deploy/grafana: every SQL query of the shipped dashboards, its variables and Grafana's
macros expanded as Grafana expands them, runs as a monitoring_reader on a database holding
errors, traces, cache entries and a lock wait, and returns what its panel format needs
(time series: `time` first and sorted, numeric values, `metric` naming the series); the
provisioning files are what Grafana reads."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import time
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from . import grafana
from .conftest import REPO, lock_wait, login_role, superuser

READER = "pgm_test_grafana"
NOW_NS = time.time_ns()
# panels that are right to be empty here: no standby replicates from the test cluster
MAY_BE_EMPTY = {"Replication"}
METRIC_POINTS = "monitoring.metric_points"


@dataclass
class Populated:
    dsn: str
    reader: str
    statements: bool  # pg_stat_statements is loaded, so top statements has rows


def otlp_span(
    trace: int, span: int, parent: int | None, name: str, ago_s: float, ms: float, **extra: Any
) -> dict[str, Any]:
    start = NOW_NS - int(ago_s * 1e9)
    return {
        "traceId": f"{trace:032x}",
        "spanId": f"{span:016x}",
        "parentSpanId": f"{parent:016x}" if parent else "",
        "name": name,
        "kind": extra.get("kind", 2),
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(ms * 1e6)),
        "status": {"code": extra.get("status", 0)},
    }


def spans_request(service: str, spans: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeSpans": [{"scope": {"name": "tests"}, "spans": spans}],
                }
            ]
        }
    )


@pytest.fixture
def populated(installed_db: str) -> Populated:
    with superuser(installed_db) as conn:
        for message, level, service, user in (
            ("card declined", "error", "shop", "u1"),
            ("card declined", "error", "shop", "u2"),
            ("card declined", "error", "shop", "u1"),
            ("stock ran out", "warning", "shop", "u3"),
            ("gateway timed out", "error", "payments", "u1"),
        ):
            conn.execute(
                "SELECT monitoring.capture_message(%s, %s, NULL, 'production', %s,"
                " p_user => jsonb_build_object('id', %s::text))",
                (message, level, service, user),
            )
        # a resolved issue that comes back: a regression in its history
        issue = conn.execute(
            "SELECT id FROM monitoring.issues WHERE title LIKE 'stock%'"
        ).fetchone()[0]
        conn.execute("SELECT monitoring.resolve_issue(%s)", (issue,))
        conn.execute(
            "SELECT monitoring.capture_message('stock ran out', 'warning', NULL, 'production',"
            " 'shop')"
        )
        # traces: shop's checkout calls payments, which fails once of two
        for trace in (1, 2):
            conn.execute(
                "SELECT monitoring.record_spans(%s::jsonb)",
                (
                    spans_request(
                        "shop",
                        [
                            otlp_span(trace, trace * 10, None, "POST /checkout", 120, 80),
                            otlp_span(
                                trace, trace * 10 + 1, trace * 10, "charge", 119.99, 60, kind=3
                            ),
                        ],
                    ),
                ),
            )
            conn.execute(
                "SELECT monitoring.record_spans(%s::jsonb)",
                (
                    spans_request(
                        "payments",
                        [
                            otlp_span(
                                trace,
                                trace * 10 + 2,
                                trace * 10 + 1,
                                "POST /charge",
                                119.98,
                                50,
                                status=2 if trace == 1 else 0,
                            ),
                        ],
                    ),
                ),
            )
        conn.execute("SELECT monitoring.cache_set('cart:1', '{\"items\": 2}'::jsonb, 3600)")
        conn.execute("SELECT monitoring.cache_set('cart:2', '{\"items\": 5}'::jsonb, 3600)")
        conn.execute("SELECT monitoring.cache_record_stats(8, 2)")
        statements = bool(
            conn.execute(
                "SELECT FROM pg_settings WHERE name = 'shared_preload_libraries'"
                " AND 'pg_stat_statements' = ANY(string_to_array(setting, ', '))"
            ).rowcount
        )
        if statements:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT monitoring.run_maintenance()")
        if statements:
            for _ in range(3):
                conn.execute("SELECT count(*) FROM monitoring.issues")
        conn.execute("CREATE TABLE public.grafana_lock_target (id int)")
    reader = login_role(installed_db, READER, "monitoring_reader")
    # the dashboards' login role as the data source file advises: it sees every session
    with superuser(installed_db) as conn:
        conn.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(READER)))
    return Populated(installed_db, reader, statements)


def time_range() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return grafana.grafana_range(now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1))


def run(conn: psycopg.Connection[Any], query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with conn.cursor() as cursor:
        cursor.execute(query)  # type: ignore[arg-type]  # no parameters: as Grafana sends it
        assert cursor.description is not None
        return [c.name for c in cursor.description], cursor.fetchall()


NUMBER = (int, float, decimal.Decimal)


def time_series_problems(columns: list[str], rows: list[tuple[Any, ...]]) -> list[str]:
    """What Grafana's SQL data sources would refuse or misdraw in a time series result."""
    problems = []
    if not columns or columns[0] != "time":
        return [f"the first column is {columns[:1]}, not time"]
    times = [row[0] for row in rows]
    if any(not isinstance(t, (dt.datetime, *NUMBER)) for t in times):
        problems.append("time is neither a timestamp nor a number")
    elif times != sorted(times):
        problems.append("rows are not sorted by time")
    for index, name in enumerate(columns[1:], start=1):
        values = [row[index] for row in rows if row[index] is not None]
        wanted = str if name == "metric" else NUMBER
        if any(not isinstance(v, wanted) for v in values):
            problems.append(f"column {name} holds {type(values[0]).__name__} values")
    return problems


def test_every_sql_query_runs_as_a_reader_and_fits_its_panel(populated: Populated) -> None:
    start, end = time_range()
    queries = grafana.targets(grafana.POSTGRES) + grafana.variable_queries(grafana.POSTGRES)
    assert len(queries) >= 15
    failures: list[str] = []
    with (
        psycopg.connect(populated.reader, autocommit=True) as conn,
        lock_wait(populated.dsn, "public.grafana_lock_target"),
    ):
        conn.execute("SET statement_timeout = '10s'")
        # the service variable as Grafana fills it: its own query's values
        services = [
            row[0]
            for row in conn.execute(grafana.variable_queries(grafana.POSTGRES)[0].target["rawSql"])
        ]
        assert services == ["payments", "shop"]
        for query in queries:
            text = query.target["rawSql"]
            if METRIC_POINTS in text:
                continue  # test_the_otlp_metric_panel
            dashboard = grafana.dashboard_of(query)
            for chosen in (services, ["shop"]):  # All, and one
                expanded = grafana.expand_macros(
                    grafana.interpolate(
                        text, dashboard, {"service": chosen, "metric": ["http.server.duration"]}
                    ),
                    start,
                    end,
                )
                assert "$" not in expanded.replace("$$", ""), (query.name, expanded)
                try:
                    columns, rows = run(conn, expanded)
                except psycopg.Error as error:
                    failures.append(f"{query.name}: {error}\n{expanded}")
                    continue
                if query.target.get("format") == "time_series":
                    failures += [f"{query.name}: {p}" for p in time_series_problems(columns, rows)]
                empty_ok = query.panel in MAY_BE_EMPTY or (
                    "database_statements" in text and not populated.statements
                )
                if not rows and not empty_ok:
                    failures.append(f"{query.name} ({len(chosen)} services): no rows\n{expanded}")
    assert not failures, "\n\n".join(failures)


def test_the_otlp_metric_panel(populated: Populated) -> None:
    with superuser(populated.dsn) as conn:
        if conn.execute("SELECT to_regclass(%s)", (METRIC_POINTS,)).fetchone()[0] is None:
            pytest.skip(f"{METRIC_POINTS} does not exist yet (OTLP metrics, #14)")
        point = {
            "timeUnixNano": str(NOW_NS - 60_000_000_000),
            "asDouble": 0.25,
            "attributes": [{"key": "route", "value": {"stringValue": "/pay"}}],
        }
        conn.execute(
            "SELECT monitoring.record_metrics(%s::jsonb)",
            (
                json.dumps(
                    {
                        "resourceMetrics": [
                            {
                                "resource": {
                                    "attributes": [
                                        {"key": "service.name", "value": {"stringValue": "shop"}}
                                    ]
                                },
                                "scopeMetrics": [
                                    {
                                        "metrics": [
                                            {
                                                "name": "queue.depth",
                                                "gauge": {"dataPoints": [point]},
                                            }
                                        ]
                                    }
                                ],
                            }
                        ]
                    }
                ),
            ),
        )
    [query] = [t for t in grafana.targets(grafana.POSTGRES) if METRIC_POINTS in t.target["rawSql"]]
    start, end = time_range()
    expanded = grafana.expand_macros(
        grafana.interpolate(
            query.target["rawSql"], grafana.dashboard_of(query), {"metric": ["queue.depth"]}
        ),
        start,
        end,
    )
    with psycopg.connect(populated.reader, autocommit=True) as conn:
        columns, rows = run(conn, expanded)
    assert time_series_problems(columns, rows) == []
    assert [(r[1], r[2]) for r in rows] == [("queue.depth", 0.25)]


def test_variables_and_macros_expand_as_grafana_expands_them() -> None:
    start = dt.datetime(2026, 12, 3, 10, 0, 0, tzinfo=dt.UTC)
    end = dt.datetime(2026, 12, 3, 11, 30, 5, 250000, tzinfo=dt.UTC)
    assert grafana.expand_macros(
        "SELECT $__timeGroupAlias(t, '5m'), $__timeGroup(t, 1h), v FROM x "
        "WHERE $__timeFilter(t) AND e BETWEEN $__timeFrom() AND $__timeTo() "
        "AND $__unixEpochFilter(s) GROUP BY $__timeGroup(t, '5m')",
        start,
        end,
    ) == (
        'SELECT floor(extract(epoch from t)/300)*300 AS "time", '
        # directly followed by a comma: given its alias, as before Grafana 5.3
        'floor(extract(epoch from t)/3600)*3600 AS "time", v FROM x '
        "WHERE t BETWEEN '2026-12-03T10:00:00Z' AND '2026-12-03T11:30:05.25Z' "
        "AND e BETWEEN '2026-12-03T10:00:00Z' AND '2026-12-03T11:30:05.25Z' "
        "AND s >= 1796292000 AND s <= 1796297405 GROUP BY floor(extract(epoch from t)/300)*300"
    )
    with pytest.raises(ValueError, match="unknown macro"):
        grafana.expand_macros("SELECT $__nope(x)", start, end)
    overview = grafana.dashboards()["pg_monitoring-overview.json"]
    assert (
        grafana.interpolate(
            "service IN ($service) AND m = '${metric}' AND $1 GROUP BY $__interval",
            overview,
            {"service": ["shop", "o'neil"], "metric": ["it's"]},
        )
        == "service IN ('shop','o''neil') AND m = 'it''s' AND $1 GROUP BY 1m"
    )


def test_dashboards_are_grafana_dashboards() -> None:
    boards = grafana.dashboards()
    assert set(boards) == {
        "pg_monitoring-overview.json",
        "pg_monitoring-database.json",
        "pg_monitoring-prometheus.json",
    }
    uids = {
        "grafana-postgresql-datasource": "pg-monitoring-postgres",
        "prometheus": "pg-monitoring-prometheus",
    }
    for name, board in boards.items():
        assert board["uid"], name
        assert board["title"], name
        assert board["schemaVersion"] >= 36, name
        ids = [p["id"] for p in grafana.panels(board)]
        assert len(ids) == len(set(ids)), name
        for panel in grafana.panels(board):
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, (name, panel["title"])
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, (name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["targets"], (name, panel["title"])
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), (name, panel["title"])
            for target in panel["targets"]:
                source = target["datasource"]
                assert uids[source["type"]] == source["uid"], (name, panel["title"])
                if source["type"] == grafana.POSTGRES:
                    assert target["rawQuery"]
                    assert target["editorMode"] == "code"
                    assert target["format"] in ("time_series", "table"), (name, panel["title"])
                    if panel["type"] == "timeseries":
                        assert target["format"] == "time_series", (name, panel["title"])
                else:
                    assert target["expr"], (name, panel["title"])


def test_provisioning_names_the_dashboards_sources() -> None:
    provisioning = REPO / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "pg_monitoring.yml").read_text())
    assert sources["apiVersion"] == 1
    by_uid = {s["uid"]: s for s in sources["datasources"]}
    postgres = by_uid["pg-monitoring-postgres"]
    assert postgres["type"] == grafana.POSTGRES
    assert by_uid["pg-monitoring-prometheus"]["type"] == grafana.PROMETHEUS
    # secrets come from the environment, never from the file
    assert postgres["secureJsonData"]["password"].startswith("${")
    assert postgres["user"].startswith("${")
    assert postgres["url"].startswith("${")
    providers = yaml.safe_load((provisioning / "dashboards" / "pg_monitoring.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
