-- Top statements of this database from pg_stat_statements, as what they did since the last
-- snapshot. pg_stat_statements is optional: without it (not created in this database, or
-- not in shared_preload_libraries) the snapshot does nothing and database_statements says
-- so in a NOTICE and returns no rows, never an error.

-- The schema pg_stat_statements was created in; NULL when it was not. (Whether its library
-- is loaded, shared_preload_libraries, only a superuser may read: the callers find out by
-- the error reading it raises, 55000.)
CREATE OR REPLACE FUNCTION monitoring._statements_schema()
RETURNS name
LANGUAGE sql
STABLE
AS $$
    SELECT n.nspname
    FROM pg_catalog.pg_extension AS e
    INNER JOIN pg_catalog.pg_namespace AS n ON e.extnamespace = n.oid
    WHERE e.extname = 'pg_stat_statements';
$$;

GRANT EXECUTE ON FUNCTION monitoring._statements_schema() TO monitoring_reader, monitoring_admin;

-- Replaces the snapshot with the counters now; the number of statements, or NULL when
-- pg_stat_statements can not be read. Counters only (pg_stat_statements(false): the query
-- texts file is not read). It sees what its caller may see: run by run_maintenance, as the
-- role that installed pg_monitoring, every role's statements if that role is a member of
-- pg_read_all_stats (pg_monitor), else its own.
CREATE OR REPLACE FUNCTION monitoring.snapshot_statements()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := monitoring._statements_schema();
    v_count integer;
BEGIN
    IF v_schema IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM monitoring.database_statement_snapshots;
    -- the schema is quoted (%I); the function's name and arguments are ours; one time for all
    BEGIN
        EXECUTE format(
            'INSERT INTO monitoring.database_statement_snapshots (userid, queryid, toplevel, '
            'calls, total_exec_time, rows, shared_blks_hit, shared_blks_read, '
            'temp_blks_written, taken_at) '
            'SELECT s.userid, s.queryid, s.toplevel, s.calls, s.total_exec_time, s.rows, '
            's.shared_blks_hit, s.shared_blks_read, s.temp_blks_written, $1 '
            'FROM %I.pg_stat_statements(false) AS s '
            'WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database AS d '
            'WHERE d.datname = pg_catalog.current_database()) AND s.queryid IS NOT NULL',
            v_schema
        ) USING clock_timestamp();
        GET DIAGNOSTICS v_count = ROW_COUNT;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        RETURN NULL;  -- created, but its library is not loaded
    END;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION monitoring.snapshot_statements() IS
'Replaces the pg_stat_statements snapshot that database_statements subtracts; the number of '
'statements, NULL without pg_stat_statements';

GRANT EXECUTE ON FUNCTION monitoring.snapshot_statements() TO monitoring_admin;

-- The p_limit statements of this database that took the most execution time since the last
-- snapshot (since the statistics were reset, before the first one), with what they cost.
-- A statement whose counters went down was reset in between: all of its counters count.
-- p_texts false: no query texts (pg_stat_statements then does not read its texts file).
-- Runs as its caller: another role's statements show (with their text) only to members of
-- pg_read_all_stats.
CREATE OR REPLACE FUNCTION monitoring.database_statements(
    p_limit integer DEFAULT 20, p_texts boolean DEFAULT TRUE
)
RETURNS TABLE (
    queryid bigint,
    user_name name,
    calls bigint,
    total_ms numeric,
    mean_ms numeric,
    rows bigint,
    buffer_hit_ratio numeric,
    temp_blks_written bigint,
    since timestamptz,
    query text
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := monitoring._statements_schema();
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'p_limit must be from 1 to 1000, not %', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_schema IS NULL THEN
        RAISE NOTICE 'pg_stat_statements is not created in this database: CREATE EXTENSION '
            'pg_stat_statements (its library in shared_preload_libraries, which takes a restart)';
        RETURN;
    END IF;
    BEGIN
        RETURN QUERY EXECUTE format(
        $q$
        SELECT
            d.queryid, r.rolname, d.calls, round(d.total::numeric, 3),
            round((d.total / nullif(d.calls, 0))::numeric, 3), d.rows,
            round(d.hit::numeric / nullif(d.hit + d.read, 0), 4), d.temp,
            -- the later of the snapshot and a reset of all statistics
            greatest(
                (SELECT max(o.taken_at) FROM monitoring.database_statement_snapshots AS o),
                (SELECT i.stats_reset FROM %1$I.pg_stat_statements_info AS i)
            ),
            d.query
        FROM (
            SELECT
                n.queryid, n.userid, n.query,
                CASE WHEN o.calls IS NULL OR n.calls < o.calls THEN n.calls
                    ELSE n.calls - o.calls END AS calls,
                CASE WHEN o.calls IS NULL OR n.calls < o.calls THEN n.total_exec_time
                    ELSE n.total_exec_time - o.total_exec_time END AS total,
                CASE WHEN o.calls IS NULL OR n.calls < o.calls THEN n.rows
                    ELSE n.rows - o.rows END AS rows,
                CASE WHEN o.calls IS NULL OR n.calls < o.calls THEN n.shared_blks_hit
                    ELSE n.shared_blks_hit - o.shared_blks_hit END AS hit,
                CASE WHEN o.calls IS NULL OR n.calls < o.calls THEN n.shared_blks_read
                    ELSE n.shared_blks_read - o.shared_blks_read END AS read,
                CASE WHEN o.calls IS NULL OR n.calls < o.calls THEN n.temp_blks_written
                    ELSE n.temp_blks_written - o.temp_blks_written END AS temp
            FROM %1$I.pg_stat_statements($1) AS n
            LEFT JOIN monitoring.database_statement_snapshots AS o
                ON n.userid = o.userid AND n.queryid = o.queryid AND n.toplevel = o.toplevel
            WHERE
                n.dbid = (SELECT db.oid FROM pg_catalog.pg_database AS db
                    WHERE db.datname = pg_catalog.current_database())
                AND n.queryid IS NOT NULL
        ) AS d
        LEFT JOIN pg_catalog.pg_roles AS r ON d.userid = r.oid
        WHERE d.calls > 0
        ORDER BY d.total DESC, d.queryid
        LIMIT $2
        $q$,
        v_schema
        ) USING p_texts, p_limit;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        RAISE NOTICE 'pg_stat_statements is created but not loaded: add it to '
            'shared_preload_libraries (a restart)';
    END;
END
$$;

COMMENT ON FUNCTION monitoring.database_statements(integer, boolean) IS
'The statements of this database that took the most time since the last snapshot '
'(pg_stat_statements; a NOTICE and no rows without it): calls, total and mean ms, rows, '
'buffer hit ratio, temporary blocks written, the query';

GRANT EXECUTE ON FUNCTION monitoring.database_statements(integer, boolean)
TO monitoring_reader, monitoring_admin;
