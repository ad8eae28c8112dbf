"""The shipped Grafana dashboards (deploy/grafana/dashboards) as tests read them: their
targets, and a query as Grafana would send it to PostgreSQL or Prometheus.

Grafana is not installable here, so its interpolation is copied from its code: dashboard
variables first (the frontend's templateSrv with the SQL data sources' interpolateVariable:
a multi-value or include-all variable becomes its values quoted and joined by commas, a
single value its text with quotes doubled), then the PostgreSQL data source's macros
(pkg/tsdb/grafana-postgresql-datasource/macros.go, summed up in
shared/reference/observability.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .conftest import REPO

DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
POSTGRES = "grafana-postgresql-datasource"
PROMETHEUS = "prometheus"
# What Grafana puts for its interval variables on a dashboard some hours wide
INTERVALS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
}


@dataclass
class Target:
    dashboard: str
    panel: str
    target: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.dashboard}: {self.panel} ({self.target['refId']})"


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # inside a collapsed row


def targets(kind: str) -> list[Target]:
    """Every target of a panel whose data source is of type `kind`."""
    found = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                source = target.get("datasource") or panel.get("datasource") or {}
                if source.get("type") == kind:
                    found.append(Target(name, panel["title"], target))
    return found


def variable_queries(kind: str) -> list[Target]:
    """Query variables of data sources of type `kind`, as targets."""
    return [
        Target(name, f"variable ${variable['name']}", {"refId": "var", "rawSql": variable["query"]})
        for name, dashboard in dashboards().items()
        for variable in dashboard.get("templating", {}).get("list", [])
        if variable["type"] == "query" and variable["datasource"]["type"] == kind
    ]


def quote(value: str) -> str:
    """The SQL data sources' quoting of a variable's value (interpolateVariable)."""
    return "'" + value.replace("'", "''") + "'"


def interpolate(text: str, dashboard: dict[str, Any], values: dict[str, list[str]]) -> str:
    """Dashboard variables (`$name`, `${name}`) and Grafana's interval variables replaced as
    the frontend does before a query leaves the browser; `values` holds each dashboard
    variable's selected values."""
    kinds = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in INTERVALS:
            return INTERVALS[name]
        variable = kinds.get(name)
        if variable is None:
            return match.group(0)  # not a variable: left as it is, as Grafana does
        chosen = values[name]
        if variable.get("multi") or variable.get("includeAll"):
            return ",".join(quote(v) for v in chosen)
        return chosen[0].replace("'", "''")  # written inside quotes in the query

    return re.sub(r"\$\{(\w+)\}|\$(\w+)(?!\w)", value, text)


def go_rfc3339nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano of a UTC time: fractional seconds without trailing zeros."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += ("." + f"{moment.microsecond:06d}").rstrip("0")
    return text + "Z"


def go_float(value: float) -> str:
    """Go's %v of a float64: the shortest digits, in exponent form when the exponent is
    below -4 or 6 and over (fmt.Println(1e6) prints 1e+06)."""
    number = Decimal(repr(value)).normalize()
    digits = "".join(map(str, number.as_tuple().digits))
    exponent = number.adjusted()
    if value == 0:
        return "0"
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "-" if value < 0 else ""
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return format(number, "f")


def parse_interval(text: str) -> float:
    """gtime.ParseInterval for the forms dashboards use: 30s, 1m, 5m, 1h, 1d, 1w."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not match:
        raise ValueError(f"error parsing interval {text}")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return int(match.group(1)) * unit[match.group(2)]


# macros.go's pattern: a macro's arguments can not hold a closing parenthesis
MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")


def expand_macros(sql: str, start: datetime, end: datetime) -> str:
    """The PostgreSQL data source's macros expanded as its macros.go does (no TimescaleDB)."""

    def evaluate(name: str, args: list[str]) -> str:
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{go_rfc3339nano(start)}' AND '{go_rfc3339nano(end)}'"
        if name == "__timeFrom":
            return f"'{go_rfc3339nano(start)}'"
        if name == "__timeTo":
            return f"'{go_rfc3339nano(end)}'"
        if name in ("__timeGroup", "__timeGroupAlias"):
            if len(args) < 2:
                raise ValueError(f"macro {name} needs time column and interval")
            seconds = go_float(parse_interval(args[1].strip("'")))
            group = f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        if name == "__unixEpochFilter":
            return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
        if name == "__unixEpochFrom":
            return str(int(start.timestamp()))
        if name == "__unixEpochTo":
            return str(int(end.timestamp()))
        raise ValueError(f"unknown macro {name!r}")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        # macros.go: a $__timeGroup directly followed by a comma is given its alias (the
        # form before Grafana 5.3)
        if name == "__timeGroup":
            index = sql.find(match.group(0))
            after = index + len(match.group(0))
            if index >= 0 and after < len(sql) and sql[after] == ",":
                name = "__timeGroupAlias"
        return evaluate(name, [arg.strip(" ") for arg in match.group(2).split(",")])

    return MACRO.sub(replace, sql)


def grafana_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A time range as Grafana holds it: milliseconds."""

    def ms(moment: datetime) -> datetime:
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    return ms(start), ms(end)


def expressions() -> list[Target]:
    return targets(PROMETHEUS)


def dashboard_of(target: Target) -> dict[str, Any]:
    return json.loads(Path(DASHBOARDS / target.dashboard).read_text())
