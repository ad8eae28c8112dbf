"""The caller's session settings change nothing that pg_monitoring stores or answers.

Function bodies are parsed, and values turned into text, in the caller's session: a string
constant with a backslash means something else with standard_conforming_strings off, a time
prints in its DateStyle and TimeZone, a float in its extra_float_digits, PL/pgSQL checks
more with plpgsql.extra_errors. The same calls, made from a fresh session with default
settings and from one with every such setting changed, must store and answer the same.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from pg_monitoring import installer
from tests import workload
from tests.conftest import login_role

CALLER = "pgm_test_caller"

HOSTILE = {
    "standard_conforming_strings": "off",
    "backslash_quote": "on",
    "escape_string_warning": "off",
    "DateStyle": "SQL, DMY",
    "IntervalStyle": "sql_standard",
    # Its abbreviation IST reads back as Israel's time in the Default abbreviations
    "TimeZone": "Asia/Kolkata",
    "extra_float_digits": "-15",
    "array_nulls": "off",
    "transform_null_equals": "on",
    "bytea_output": "escape",
    "quote_all_identifiers": "on",
    "lc_numeric": "C.UTF-8",
    "lc_time": "C.UTF-8",
    "lc_monetary": "C.UTF-8",
    "plpgsql.extra_errors": "all",
    "plpgsql.variable_conflict": "use_column",
    "plpgsql.print_strict_params": "on",
    "default_tablespace": "",
}


def run_with(dsn: str, settings: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    with psycopg.connect(dsn) as conn:
        installer.install(conn)
    # a fresh session: every function is parsed and planned under these settings
    with psycopg.connect(login_role(dsn, CALLER, "monitoring_admin"), autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        answers = workload.run(conn)
    return answers, workload.snapshot(dsn)


def test_session_settings_change_nothing(make_database: Any) -> None:
    expected = run_with(make_database(), {})
    got = run_with(make_database(), HOSTILE)
    assert got[0] == expected[0], "the calls answer the same"
    for part in expected[1]:
        assert got[1][part] == expected[1][part], f"{part} are stored the same"
