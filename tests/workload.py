"""One pass over every function a monitoring_* role may call, for the tests that check the
caller can not steer them: objects it made in pg_temp (test_definer_objects.py) and its session
settings (test_session_settings.py).

`run(conn)` makes the calls on `conn` (autocommit, a role granted monitoring_admin) and returns
what they answered; `snapshot(dsn)` reads back, as a superuser, what they stored. Both leave out
what differs from run to run (random ids, times of day), so two runs compare equal.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg

TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/shop/payments.py", line 42, in charge
    response = gateway.post(order, headers={"Authorization": "Bearer sk_live_abc.def"})
  File "/usr/lib/python3.11/site-packages/requests/api.py", line 115, in post
    return request("post", url, data=data, json=json, **kwargs)
requests.exceptions.Timeout: card 4111 1111 1111 1111 timed out after 30.5s
"""

SENTRY_EVENT = {
    "event_id": "6f0d1a34b1c24a3e9f2a51d4f3b8e001",
    "timestamp": "2024-01-15T10:30:00.250+01:00",
    "level": "warn",
    "platform": "python",
    "release": 2.5,
    "environment": "staging",
    "server_name": "web-1",
    "transaction": "/checkout",
    "tags": [["region", "eu"], ["session_id", "s3cr3t"]],
    "user": {"id": "u-7", "email": "ada@example.com", "ip_address": "10.0.0.7"},
    "extra": {"cart": {"items": 3, "total": 19.99, "api_key": "k-123"}, "ratio": 0.1},
    "contexts": {"trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa"}},
    "breadcrumbs": {
        "values": [
            {"timestamp": 1705311000.5, "category": "http", "message": "GET /cart \u0000"},
            {"category": "auth", "data": {"token": "t-1", "note": "Bearer xyz"}},
        ]
    },
    "exception": {
        "values": [
            {"type": "KeyError", "value": "'sku-9'", "module": "builtins"},
            {
                "type": "CheckoutError",
                "value": "checkout of order 1234 failed: \\d stays",
                "module": "shop.checkout",
                "mechanism": {"type": "generic", "handled": True},
                "stacktrace": {
                    "frames": [
                        {
                            "filename": "shop/checkout.py",
                            "abs_path": "C:\\srv\\shop\\checkout.py",
                            "function": "checkout",
                            "module": "shop.checkout",
                            "lineno": 12,
                            "context_line": "    raise CheckoutError(f'checkout of {order}')",
                            "in_app": True,
                            "vars": {"password": "hunter2", "order": 1234, "price": 1.1e-7},
                        }
                    ]
                },
            },
        ]
    },
}

FRAMES = [
    {"module": "shop.cart", "function": "add", "lineno": 10, "context_line": "cart.add(item)"},
    {"filename": "/usr/lib/python3.11/json/decoder.py", "function": "decode", "lineno": 337},
]


def _rows(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return [tuple(row) for row in conn.execute(query, params).fetchall()]


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def run(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Calls every callable function once or more; returns what each answered."""
    seen: dict[str, Any] = {}

    seen["version"] = _one(conn, "SELECT monitoring.version() IS NOT NULL")

    # Capture, in every form.
    seen["plain error"] = _rows(
        conn, "SELECT issue_id IS NOT NULL FROM monitoring.capture_error('ValueError', 'boom')"
    )
    _one(
        conn,
        """SELECT issue_id FROM monitoring.capture_error(
            'Timeout', NULL, %s::text,
            '{"password": "p", "note": "paid with 5500-0000-0000-0004", "n": 0.30000000000000004}',
            p_environment => 'production', p_release => '1.0', p_user => '{"id": "u-1"}',
            p_tags => '{"auth_header": "Basic abc"}', p_trace_id => 'abc',
            p_breadcrumbs => '[{"message": "Bearer tok"}]',
            p_event_id => '0b2c3d4e-0000-4000-8000-000000000001',
            p_occurred_at => now() - interval '1 hour')""",
        (TRACEBACK,),
    )
    _one(
        conn,
        """SELECT issue_id FROM monitoring.capture_error(
            'KeyError', 'item 1', %s::jsonb, p_service => 'cart',
            p_fingerprint => ARRAY['{{ default }}', 'cart|add', NULL])""",
        (json.dumps(FRAMES),),
    )
    _one(
        conn,
        "SELECT issue_id FROM monitoring.capture_message('disk 95%% full on /dev/sda1', 'warning')",
    )
    _one(
        conn, "SELECT issue_id FROM monitoring.capture_event(%s::text)", (json.dumps(SENTRY_EVENT),)
    )
    _one(
        conn,
        "SELECT issue_id FROM monitoring.capture_event(%s::jsonb)",
        (json.dumps({"message": "numbered", "timestamp": 1700000000.5, "level": "info"}),),
    )
    batch = [
        {"message": {"formatted": "batch one"}, "event_id": "0b2c3d4e00004000800000000000000b"},
        {"logentry": {"message": "batch two"}, "tags": {"k": "v"}},
    ]
    seen["batch"] = len(
        _rows(conn, "SELECT * FROM monitoring.capture_events(%s::text)", (json.dumps(batch),))
    )
    seen["batch jsonb"] = len(
        _rows(conn, "SELECT * FROM monitoring.capture_events(%s::jsonb)", (json.dumps(batch[:1]),))
    )
    seen["scrub"] = _one(
        conn,
        """SELECT monitoring.scrub('{"Token": "x", "note": "Bearer abc.def",
            "cc": "4111-1111-1111-1111", "list": ["a", {"secret": 1}]}')""",
    )

    # Settings.
    seen["set"] = _one(conn, """SELECT monitoring.set_setting('scrub.extra_keys', '["order"]')""")
    seen["get"] = _one(conn, "SELECT monitoring.get_setting('scrub.extra_keys')")
    seen["reset"] = _one(conn, "SELECT monitoring.reset_setting('scrub.extra_keys')")

    # Triage.
    issue = _one(conn, "SELECT monitoring.issue_id(%s::text)", (fingerprint_of(conn, "disk"),))
    seen["resolve"] = _one(conn, "SELECT status FROM monitoring.resolve_issue(%s, '2.0')", (issue,))
    seen["ignore"] = _one(
        conn,
        """SELECT (status, ignore_until_times_seen) FROM monitoring.ignore_issue(
            %s, p_until => '2999-01-02 03:04:05+00', p_until_events => 5)""",
        (issue,),
    )
    seen["reopen"] = _one(conn, "SELECT status FROM monitoring.reopen_issue(%s)", (issue,))
    seen["assign"] = _one(conn, "SELECT assignee FROM monitoring.assign_issue(%s, 'ada')", (issue,))
    seen["unassign"] = _one(conn, "SELECT assignee FROM monitoring.unassign_issue(%s)", (issue,))

    # Alerts: a channel and rules, a notification through its whole cycle.
    _one(
        conn,
        """SELECT monitoring.add_channel('hook', 'webhook', '{}',
            '{"url": "http://127.0.0.1:9/hook", "secret": "s"}')""",
    )
    seen["disable"] = _one(conn, "SELECT monitoring.set_channel_enabled('hook', false)")
    seen["enable"] = _one(conn, "SELECT monitoring.set_channel_enabled('hook', true)")
    rule = _one(
        conn,
        """SELECT monitoring.add_alert_rule('event_frequency', 'hook', p_threshold => 1,
            p_window => interval '1 hour 30 minutes')""",
    )
    _one(
        conn,
        "SELECT monitoring.set_occurrence_alerts(%s, '{1,2,3}', 10)",
        (fingerprint_of(conn, "boom"),),
    )
    _one(conn, "SELECT monitoring.capture_error('ValueError', 'boom')")
    _one(conn, "SELECT monitoring.capture_error('ValueError', 'boom')")
    seen["fold"] = _one(conn, "SELECT monitoring.fold_counts() -> 'events_folded'")
    test_id = _one(conn, "SELECT monitoring.test_channel('hook')")
    claimed = conn.execute(
        "SELECT id, claim_token FROM monitoring.claim_notifications(50, 30.5, 'w')"
    ).fetchall()
    seen["claimed"] = len(claimed)
    by_id = dict(claimed)
    seen["complete"] = _one(
        conn, "SELECT monitoring.complete_notification(%s, %s)", (test_id, by_id[test_id])
    )
    others = sorted(i for i in by_id if i != test_id)
    seen["fail"] = _one(
        conn,
        "SELECT monitoring.fail_notification(%s, %s, 'refused', true, 1.5)",
        (others[0], by_id[others[0]]),
    )
    seen["retry"] = _one(conn, "SELECT monitoring.retry_notification(%s)", (others[0],))
    seen["next"] = _one(conn, "SELECT monitoring.next_notification_at() IS NOT NULL")
    seen["remove rule"] = _one(conn, "SELECT monitoring.remove_alert_rule(%s) = %s", (rule, rule))

    # Ingest keys.
    key = _one(conn, "SELECT monitoring.add_ingest_key('workload', ARRAY['traces', 'logs'])")
    seen["ingest key"] = [
        len(key),
        _one(conn, "SELECT monitoring.check_ingest_key(%s, 'traces')", (key,)),
        _one(conn, "SELECT monitoring.check_ingest_key(%s, 'metrics')", (key,)),
    ]
    seen["ingest keys"] = _rows(
        conn, "SELECT name, scopes, revoked_at IS NULL FROM monitoring.list_ingest_keys()"
    )
    seen["revoke key"] = _one(conn, "SELECT monitoring.revoke_ingest_key('workload') IS NOT NULL")

    # Sentry projects and their ingest (no events: their counts are the ingest's own).
    project_id, public_key = conn.execute(
        "SELECT * FROM monitoring.add_sentry_project('workload', 'workload-svc', 'qa')"
    ).fetchone()
    conn.execute("SELECT monitoring.set_sentry_project_quota('workload', 100, 1000)")
    seen["sentry ingest"] = [
        _one(
            conn,
            "SELECT monitoring.sentry_ingest(%s, %s, %s::jsonb) ->> 'status'",
            (
                project_id,
                public_key,
                '{"client_reports": [{"category": "error", "reason": "sample_rate", '
                '"quantity": 2}], "skipped": {"session": 1}}',
            ),
        ),
        _one(
            conn,
            "SELECT monitoring.sentry_ingest(%s, 'pgm_wrong', '{}') ->> 'status'",
            (project_id,),
        ),
        _one(
            conn,
            "SELECT jsonb_path_query_array(monitoring.sentry_ingest_many("
            "jsonb_build_array(jsonb_build_array(%s::bigint, %s::text, '{}'::jsonb), "
            "jsonb_build_array(%s::bigint, 'pgm_wrong', '{}'::jsonb))), '$[*].status')",
            (project_id, public_key, project_id),
        ),
    ]
    seen["sentry projects"] = _rows(
        conn,
        "SELECT name, service, environment, events_per_minute, events_per_hour "
        "FROM monitoring.list_sentry_projects()",
    )
    seen["sentry stats"] = _rows(
        conn,
        "SELECT project, outcome, category, reason, this_hour FROM "
        "monitoring.sentry_ingest_stats()",
    )
    seen["sentry retention"] = _one(conn, "SELECT monitoring.apply_sentry_outcomes_retention()")
    seen["revoke project"] = _one(
        conn, "SELECT monitoring.revoke_sentry_project('workload') IS NOT NULL"
    )

    # Maintenance.
    report = _one(conn, "SELECT monitoring.run_maintenance()")
    seen["maintenance"] = sorted(report)

    # Traces and logs: OTLP requests as an exporter sends them, secrets included.
    seen["spans"] = _one(
        conn, "SELECT monitoring.record_spans(%s::jsonb)", (json.dumps(otlp_spans()),)
    )
    seen["logs"] = _one(
        conn, "SELECT monitoring.record_logs(%s::jsonb)", (json.dumps(otlp_logs()),)
    )
    seen["tree"] = _rows(
        conn,
        "SELECT depth, span_id, operation, duration_ms FROM monitoring.trace_tree(%s)",
        (TRACE_ID,),
    )
    seen["recent"] = _rows(
        conn, "SELECT trace_id, root_operation, span_count FROM monitoring.recent_traces()"
    )
    seen["operations"] = _rows(
        conn, "SELECT service, operation, requests, errors FROM monitoring.operation_stats()"
    )
    seen["service map"] = _rows(
        conn, "SELECT * FROM monitoring.service_map(p_by_operation => true)"
    )
    seen["service series"] = _rows(
        conn,
        "SELECT service, requests, errors FROM monitoring.service_series("
        "now() - interval '1 day', now() + interval '1 hour')",
    )
    seen["log search"] = _rows(
        conn, "SELECT body FROM monitoring.search_logs('declined', p_min_severity => 'warn')"
    )
    seen["record metrics"] = _one(
        conn, "SELECT monitoring.record_metrics(%s::jsonb)", (json.dumps(otlp_metrics()),)
    )
    # doubles would be read back as the session prints them (extra_float_digits): the
    # snapshot reads them
    seen["metric points"] = _rows(
        conn,
        """SELECT metric_name, metric_type, labels, count, bucket_counts, cardinality(bounds)
        FROM monitoring.metric_points ORDER BY metric_name""",
    )

    # Cache.
    _one(conn, """SELECT monitoring.cache_set('user:1', '{"name": "Ada", "n": 0.1}', 100.5)""")
    # values with backslashes as parameters: in the statement's own literals they would
    # change with the session's standard_conforming_strings
    _one(conn, "SELECT monitoring.cache_set(%s, '1')", ("a\\b*c",))
    _one(conn, "SELECT monitoring.cache_set_bytes('bin', %s)", (b"\x00\xff",))
    _one(conn, """SELECT monitoring.cache_set_many('{"m:1": 1, "m:2": [2]}', 50)""")
    seen["get"] = _rows(conn, "SELECT value FROM monitoring.cache_get('user:1')")
    seen["get bytes"] = _rows(conn, "SELECT value FROM monitoring.cache_get_bytes('bin')")
    seen["incr"] = _one(conn, "SELECT monitoring.cache_incr('counter', 41)") + _one(
        conn, "SELECT monitoring.cache_incr('counter')"
    )
    seen["ttl"] = _one(conn, "SELECT monitoring.cache_ttl('user:1') BETWEEN 95 AND 101")
    seen["keys"] = _rows(conn, "SELECT * FROM monitoring.cache_keys(%s)", ("a\\\\b\\*c",))
    seen["lock"] = _rows(conn, "SELECT status FROM monitoring.cache_get_or_lock('report', 5, 0)")
    seen["unlock"] = _one(conn, "SELECT monitoring.cache_unlock('report')")
    seen["delete pattern"] = _one(conn, "SELECT monitoring.cache_delete_pattern('m:[12]')")
    _one(conn, "SELECT monitoring.cache_record_stats(3, 1)")
    seen["stats"] = _rows(conn, "SELECT hits, misses FROM monitoring.cache_stats()")
    _one(conn, "SELECT monitoring._cache_evict_if_full()")
    seen["cache maintenance"] = _rows(conn, "SELECT * FROM monitoring.run_cache_maintenance()")
    # the database's health: its figures change from run to run, what they hold does not
    seen["metrics"] = _one(
        conn, "SELECT monitoring.prometheus_metrics() LIKE '%%# TYPE pg_monitoring_issues gauge%%'"
    )
    seen["statements"] = _one(
        conn, "SELECT count(*) >= 0 FROM monitoring.database_statements(5, false)"
    )
    return seen


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


# The moment the workload's spans, logs and points are dated from: one for the process, so
# that two times of one span are whole milliseconds apart by what they say (a clock read for
# each gave a 250 ms span 251 ms when a millisecond boundary fell between the reads).
_NOW_MS = int(time.time() * 1000)


def _nanos(seconds_ago: float) -> str:
    # whole milliseconds of a fixed time of day would differ between runs: relative to now,
    # and nothing stored that depends on it is compared (see snapshot)
    return str((_NOW_MS - round(seconds_ago * 1000)) * 1_000_000)


def otlp_spans() -> dict[str, Any]:
    """An ExportTraceServiceRequest (OTLP JSON): a server span with a database child."""

    def attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"key": key, "value": value}

    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", {"stringValue": "shop"})]},
                "scopeSpans": [
                    {
                        "scope": {"name": "fastapi"},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": "00f067aa0ba902b7",
                                "name": "POST /pay",
                                "kind": 2,
                                "startTimeUnixNano": _nanos(2),
                                "endTimeUnixNano": _nanos(1.75),
                                "status": {
                                    "code": 2,
                                    "message": "card 4111 1111 1111 1111 declined",
                                },
                                "attributes": [
                                    attr("http.route", {"stringValue": "/pay"}),
                                    attr("http.status_code", {"intValue": "402"}),
                                    attr(
                                        "http.request.header.authorization",
                                        {
                                            "arrayValue": {
                                                "values": [{"stringValue": "Bearer sk_live_abc"}]
                                            }
                                        },
                                    ),
                                    attr("ratio", {"doubleValue": 0.30000000000000004}),
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": _nanos(1.8),
                                        "name": "exception",
                                        "attributes": [
                                            attr(
                                                "exception.message",
                                                {"stringValue": "password=hunter2"},
                                            )
                                        ],
                                    }
                                ],
                            },
                            {
                                "traceId": TRACE_ID,
                                "spanId": "00f067aa0ba902b8",
                                "parentSpanId": "00f067aa0ba902b7",
                                "name": "SELECT shop",
                                "kind": 3,
                                "startTimeUnixNano": _nanos(1.9),
                                "endTimeUnixNano": _nanos(1.85),
                            },
                        ],
                    }
                ],
            }
        ]
    }


def otlp_logs() -> dict[str, Any]:
    """An ExportLogsServiceRequest (OTLP JSON): a log record in the trace above."""
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": _nanos(1.8),
                                "severityNumber": 13,
                                "severityText": "WARNING",
                                "body": {"stringValue": "payment declined for token=abc123"},
                                "attributes": [{"key": "api_key", "value": {"stringValue": "k-1"}}],
                                "traceId": TRACE_ID,
                                "spanId": "00f067aa0ba902b7",
                            }
                        ]
                    }
                ],
            }
        ]
    }


def otlp_metrics() -> dict[str, Any]:
    """An ExportMetricsServiceRequest (OTLP JSON): a point of each kind, a secret label."""
    point = {"timeUnixNano": _nanos(1.7), "startTimeUnixNano": _nanos(60)}
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "orders",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            **point,
                                            "asInt": "3",
                                            "attributes": [
                                                {"key": "token", "value": {"stringValue": "t"}}
                                            ],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "queue",
                                "gauge": {"dataPoints": [{**point, "asDouble": 0.1}]},
                            },
                            {
                                "name": "latency",
                                "histogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            **point,
                                            "count": "2",
                                            "sum": 0.3,
                                            "explicitBounds": [0.1],
                                            "bucketCounts": ["1", "1"],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "db",
                                "exponentialHistogram": {
                                    "aggregationTemporality": 1,
                                    "dataPoints": [
                                        {
                                            **point,
                                            "count": "1",
                                            "scale": 2,
                                            "positive": {"offset": -3, "bucketCounts": ["1"]},
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "rpc",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            **point,
                                            "count": "1",
                                            "quantileValues": [{"quantile": 0.5, "value": 0.2}],
                                        }
                                    ]
                                },
                            },
                        ]
                    }
                ],
            }
        ]
    }


def fingerprint_of(conn: psycopg.Connection[Any], title_part: str) -> str:
    """monitoring_admin reads issues: the fingerprint of the one whose title has title_part."""
    return _one(
        conn,
        "SELECT fingerprint FROM monitoring.issues WHERE strpos(title, %s) > 0 ORDER BY id LIMIT 1",
        (title_part,),
    )


def cleanup(conn: psycopg.Connection[Any]) -> None:
    """What the workload left that other calls remove: a channel, the cache."""
    _one(conn, "SELECT monitoring.remove_channel('hook')")
    _one(conn, "SELECT monitoring.cache_flush()")


def snapshot(dsn: str) -> dict[str, list[Any]]:
    """What the workload stored, without ids and times that differ from run to run."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return {
            "issues": _rows(
                conn,
                """SELECT service, environment, fingerprint, fingerprint_source, title, culprit,
                    exception_type, level, status, substatus, times_seen, users_seen,
                    first_release, resolution, resolved_in_release, assignee, ignore_until
                FROM monitoring.issues ORDER BY title, fingerprint""",
            ),
            "events": _rows(
                conn,
                """SELECT g.title, e.level, e.exception_type, e.message, e.exceptions, e.context,
                    e.tags, e.user_info, e.breadcrumbs, e.release, e.trace_id, e.span_id,
                    e.platform, e.server_name, e.transaction_name, e.data
                FROM monitoring.error_events AS e
                JOIN monitoring.error_issues AS g ON g.id = e.issue_id
                ORDER BY g.title, e.message, e.context::text""",
            ),
            "activity": _rows(
                conn,
                """SELECT g.title, a.action, a.data - 'event_id'
                FROM monitoring.issue_activity AS a
                JOIN monitoring.error_issues AS g ON g.id = a.issue_id
                ORDER BY a.id""",
            ),
            "outbox": _rows(
                conn,
                """SELECT condition, status, attempts, last_error,
                    replace(
                        (payload - ARRAY['issue_id', 'rule_id', 'first_seen', 'last_seen'])::text,
                        current_database(), '<database>'
                    )
                FROM monitoring.alert_outbox ORDER BY id""",
            ),
            "rules": _rows(
                conn,
                """SELECT condition, threshold, time_window::text, occurrences, repeat_every
                FROM monitoring.alert_rules ORDER BY id""",
            ),
            "cache": _rows(
                conn,
                """SELECT key, value, value_bytes, tags, expires_at IS NULL
                FROM monitoring.cache_entries ORDER BY key""",
            ),
            "partitions": _rows(
                conn,
                """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
                FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
                WHERE i.inhparent IN ('monitoring.error_events'::regclass,
                    'monitoring.trace_spans'::regclass, 'monitoring.log_records'::regclass,
                    'monitoring.metric_data_points'::regclass)
                ORDER BY 1""",
            ),
            "spans": _rows(
                conn,
                """SELECT trace_id, span_id, parent_span_id, service, operation, kind,
                    status_code, status_message, attributes,
                    jsonb_path_query_array(events, '$[*].attributes'), resource
                FROM monitoring.spans ORDER BY span_id""",
            ),
            "logs": _rows(
                conn,
                """SELECT severity, severity_text, body, attributes, service, trace_id, span_id
                FROM monitoring.logs ORDER BY body""",
            ),
            "metrics": _rows(
                conn,
                """SELECT metric_name, metric_type, unit, labels, value, count, sum, min, max,
                    bounds, bucket_counts, quantiles, quantile_values, temporality, monotonic
                FROM monitoring.metric_points ORDER BY metric_name""",
            ),
            "settings": _rows(conn, "SELECT name, value FROM monitoring.settings ORDER BY name"),
        }
