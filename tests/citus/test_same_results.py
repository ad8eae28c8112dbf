"""Every capture path and the design document's queries give the same results on a Citus
cluster as on one server (issue 16): the shared cases of cases.py, run on both."""

from __future__ import annotations

import psycopg
import pytest

from pg_monitoring import PgMonitoringError

from .cases import CASES, CLUSTER_XFAIL, run_case

REFUSED = (psycopg.Error, PgMonitoringError)


@pytest.mark.parametrize("name", list(CASES))
def test_on_one_server(name: str, installed_db: str) -> None:
    assert run_case(name, installed_db)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            # refused by the cluster (in SQL, or through the client); a different result
            # would still fail
            marks=[pytest.mark.xfail(reason=CLUSTER_XFAIL[name], raises=REFUSED, strict=False)]
            if name in CLUSTER_XFAIL
            else [],
        )
        for name in CASES
    ],
)
def test_the_same_on_the_cluster(name: str, installed_db: str, cluster_db: str) -> None:
    one_server = run_case(name, installed_db)
    assert run_case(name, cluster_db) == one_server
