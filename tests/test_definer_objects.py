"""Objects a caller makes in its own pg_temp never run with the schema owner's rights.

The SECURITY DEFINER functions run as the owner (a superuser on many self-hosted installs)
with search_path = pg_catalog, pg_temp, so an unqualified name of a relation resolves to the
caller's temporary objects. Here a monitoring_admin session first makes a temporary view,
with triggers for writes, under every name any function body mentions (and the two work
tables fold_error_counts used to make, as tables), each calling code that tries to make the caller a
superuser; then it calls every function it may call. None of that code may run.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tests import workload
from tests.conftest import login_role, superuser

MALLORY = "pgm_test_mallory"


@pytest.fixture
def mallory(installed_db: str) -> str:
    dsn = login_role(installed_db, MALLORY, "monitoring_admin")
    with superuser(installed_db) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(MALLORY)))
        # counts every call, so the test can tell that each function was reached
        conn.execute(
            sql.SQL("ALTER ROLE {} SET track_functions = 'all'").format(sql.Identifier(MALLORY))
        )
    return dsn


DECOYS = """
CREATE FUNCTION pg_temp.take_over() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    RAISE WARNING 'pg_monitoring test: decoy ran as %', current_user;
    BEGIN
        EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN true;
END
$f$;
CREATE FUNCTION pg_temp.take_over_row() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_temp.take_over();
    RETURN NULL;
END
$f$;
-- The work tables fold_error_counts of 0.2.0 reused when they existed, with a trigger.
CREATE TEMPORARY TABLE pg_monitoring_fold (issue_id bigint, occurred_at timestamptz, user_key text);
CREATE TEMPORARY TABLE pg_monitoring_folded (
    issue_id bigint, times_seen bigint, events bigint, users_seen bigint, new_users bigint
);
CREATE TRIGGER take_over BEFORE INSERT ON pg_temp.pg_monitoring_fold
FOR EACH ROW EXECUTE FUNCTION pg_temp.take_over_row();
DO $do$
DECLARE
    v_name text;
BEGIN
    FOR v_name IN
        SELECT DISTINCT lower(m[1])
        FROM pg_proc AS p, regexp_matches(p.prosrc, '([A-Za-z_][A-Za-z0-9_]*)', 'g') AS m
        WHERE p.pronamespace = 'monitoring'::regnamespace
            AND lower(m[1]) NOT IN ('pg_monitoring_fold', 'pg_monitoring_folded')
    LOOP
        EXECUTE format(
            'CREATE TEMPORARY VIEW %I AS SELECT pg_temp.take_over() AS taken', v_name
        );
        EXECUTE format(
            'CREATE TRIGGER take_over INSTEAD OF INSERT OR UPDATE OR DELETE ON pg_temp.%I '
            'FOR EACH ROW EXECUTE FUNCTION pg_temp.take_over_row()',
            v_name
        );
    END LOOP;
END
$do$;
"""


def test_objects_made_in_pg_temp_never_run_as_the_owner(installed_db: str, mallory: str) -> None:
    warnings: list[str] = []
    with psycopg.connect(mallory, autocommit=True) as conn:
        conn.add_notice_handler(lambda notice: warnings.append(notice.message_primary or ""))
        # The test's own statements name types (::text) that the decoys would shadow too
        conn.execute("SET search_path = pg_catalog, pg_temp")
        conn.execute(DECOYS)
        decoys = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()"
        ).fetchone()[0]
        assert decoys > 500, "a decoy for each name the function bodies use"
        failure: Exception | None = None
        try:
            answers: dict[str, object] | None = workload.run(conn)
            workload.cleanup(conn)
        except Exception as error:  # a decoy in the way: report what it did first
            answers, failure = None, error
        conn.execute("SELECT pg_stat_force_next_flush()")

    assert not [w for w in warnings if "decoy ran" in w]
    with superuser(installed_db) as conn:
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (MALLORY,)
        ).fetchone() == (False,)
        assert answers is not None, f"the calls failed: {failure}"
        assert answers["plain error"] == [(True,)]
        # Every SECURITY DEFINER function was called, so each was tried with the decoys.
        missed = conn.execute(
            """SELECT p.oid::regprocedure::text FROM pg_proc AS p
            LEFT JOIN pg_stat_user_functions AS s ON s.funcid = p.oid
            WHERE p.pronamespace = 'monitoring'::regnamespace AND p.prosecdef
                AND coalesce(s.calls, 0) = 0
            ORDER BY 1"""
        ).fetchall()
        assert missed == []
