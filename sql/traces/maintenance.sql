-- Trace maintenance, run by run_maintenance (core/maintenance.sql): the fold merges the
-- summary rows each ingest appended, resolves edges whose parent span came in another batch,
-- and retention drops old span partitions and summaries.

-- Merges each key's rows into one: traces touched since the last fold, operation and edge
-- minutes. Rows written by ingests that commit meanwhile are left for the next fold; only
-- rows this snapshot sees are deleted, and ingest only appends, so no count is lost or
-- counted twice. Runs under run_maintenance's lock: one fold at a time.
CREATE OR REPLACE FUNCTION monitoring.fold_traces()
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_traces bigint;
    v_minutes bigint;
    v_edges bigint;
    v_resolved bigint;
    v_expired bigint;
BEGIN
    -- Edges first, so that the minutes they add are folded in the same run. A parent starts
    -- before its child (allowing for clock skew between hosts): one index probe each, in the
    -- partitions of those days. The bounds are computed in UTC: timestamptz +/- interval is
    -- STABLE (it follows the session's TimeZone), and Citus refuses a STABLE function of a
    -- column in an UPDATE or DELETE; AT TIME ZONE 'UTC' and timestamp +/- interval are
    -- IMMUTABLE.
    WITH found AS (
        DELETE FROM monitoring.trace_orphans AS o
        USING monitoring.trace_spans AS p
        WHERE p.trace_id = o.trace_id AND p.span_id = o.parent_span_id
            AND p.start_time >= ((o.child_start AT TIME ZONE 'UTC') - interval '1 day') AT TIME ZONE 'UTC'
            AND p.start_time
            <= ((o.child_start AT TIME ZONE 'UTC') + interval '5 minutes') AT TIME ZONE 'UTC'
        RETURNING o.child_start, p.operation_id AS parent_operation_id, o.child_operation_id,
            o.child_error
    ),

    edges AS (
        INSERT INTO monitoring.trace_edge_minutes (
            minute, parent_operation_id, child_operation_id, calls, errors
        )
        SELECT
            date_trunc('minute', f.child_start, 'UTC'), f.parent_operation_id,
            f.child_operation_id, count(*), count(*) FILTER (WHERE f.child_error)
        FROM found AS f
        GROUP BY 1, 2, 3
    )

    SELECT count(*) INTO v_resolved FROM found;

    -- A parent never sent (sampled out, an uninstrumented caller) is not waited for. When
    -- its trace has no root after all that time, the earliest such span is its entry into
    -- this system, and stands for the root (as a span marked with a remote parent does at
    -- once; senders that do not mark them are found this way).
    WITH expired AS (
        DELETE FROM monitoring.trace_orphans AS o
        WHERE o.received_at < now() - interval '10 minutes'
        RETURNING o.*
    ),

    entries AS (
        INSERT INTO monitoring.trace_parts (
            trace_id, first_start, last_start, last_end, span_count, error_count,
            root_span_id, root_operation_id, root_status, root_remote
        )
        SELECT DISTINCT ON (x.trace_id)
            x.trace_id, x.child_start, x.child_start, x.child_start, 0, 0, x.child_span_id,
            x.child_operation_id, CASE WHEN x.child_error THEN 2 ELSE 0 END, TRUE
        FROM expired AS x
        -- not correlated: Citus plans no correlated subquery over a CTE
        WHERE x.trace_id NOT IN (
            SELECT p.trace_id FROM monitoring.trace_parts AS p
            WHERE p.root_span_id IS NOT NULL
                AND p.trace_id IN (SELECT e.trace_id FROM expired AS e)
        )
        ORDER BY x.trace_id, x.child_start
    )

    SELECT count(*) INTO v_expired FROM expired;

    WITH keys AS (
        SELECT DISTINCT p.trace_id FROM monitoring.trace_parts AS p WHERE NOT p.folded
    ),

    gone AS (
        DELETE FROM monitoring.trace_parts AS p
        USING keys AS k
        WHERE p.trace_id = k.trace_id
        RETURNING p.*
    ),

    merged AS (
        INSERT INTO monitoring.trace_parts (
            trace_id, first_start, last_start, last_end, span_count, error_count,
            root_span_id, root_operation_id, root_status, root_remote, folded
        )
        SELECT
            g.trace_id, min(g.first_start), max(g.last_start), max(g.last_end),
            sum(g.span_count), sum(g.error_count),
            -- the root, else the first entry span (as monitoring.traces picks it)
            (array_agg(g.root_span_id ORDER BY g.root_remote, g.id)
                FILTER (WHERE g.root_span_id IS NOT NULL))[1],
            (array_agg(g.root_operation_id ORDER BY g.root_remote, g.id)
                FILTER (WHERE g.root_span_id IS NOT NULL))[1],
            (array_agg(g.root_status ORDER BY g.root_remote, g.id)
                FILTER (WHERE g.root_span_id IS NOT NULL))[1],
            (array_agg(g.root_remote ORDER BY g.root_remote, g.id)
                FILTER (WHERE g.root_span_id IS NOT NULL))[1],
            TRUE
        FROM gone AS g
        GROUP BY g.trace_id
        RETURNING 1
    )

    SELECT count(*) INTO v_traces FROM merged;

    WITH keys AS (
        SELECT DISTINCT m.minute, m.operation_id
        FROM monitoring.trace_operation_minutes AS m WHERE NOT m.folded
    ),

    gone AS (
        DELETE FROM monitoring.trace_operation_minutes AS m
        USING keys AS k
        WHERE m.minute = k.minute AND m.operation_id = k.operation_id
        RETURNING m.*
    ),

    merged AS (
        INSERT INTO monitoring.trace_operation_minutes (
            minute, operation_id, calls, errors, duration_ns_sum, histogram, folded
        )
        SELECT g.minute, g.operation_id, sum(g.calls), sum(g.errors), sum(g.duration_ns_sum),
            monitoring.histogram_sum(g.histogram), TRUE
        FROM gone AS g
        GROUP BY g.minute, g.operation_id
        RETURNING 1
    ),

    -- Prometheus's counters (trace_operation_totals) take each minute row once, when it is
    -- folded for the first time: retention deletes minute rows, the totals stay.
    fresh AS (
        SELECT g.operation_id, g.calls, g.errors, g.duration_ns_sum, g.histogram
        FROM gone AS g
        WHERE NOT g.folded
    ),

    edges AS (
        SELECT
            monitoring._span_duration_edges() AS edges,
            cardinality(monitoring.span_duration_buckets()) + 1 AS buckets
    ),

    -- by rollup bucket first (its key as it is), then into Prometheus's few
    counted AS (
        SELECT c.operation_id, sum(c.n) AS n, width_bucket(c.key::integer - 1, e.edges) + 1 AS bucket
        FROM (
            SELECT f.operation_id, h.key, sum(h.value::bigint) AS n
            FROM fresh AS f
            CROSS JOIN LATERAL jsonb_each_text(f.histogram) AS h
            GROUP BY f.operation_id, h.key
        ) AS c
        CROSS JOIN edges AS e
        GROUP BY c.operation_id, width_bucket(c.key::integer - 1, e.edges) + 1
    ),

    histograms AS (
        SELECT o.operation_id, array_agg(coalesce(c.n, 0) ORDER BY b.bucket) AS buckets
        FROM (SELECT DISTINCT f.operation_id FROM fresh AS f) AS o
        CROSS JOIN edges AS e
        CROSS JOIN LATERAL generate_series(1, e.buckets) AS b (bucket)
        LEFT JOIN counted AS c ON o.operation_id = c.operation_id AND b.bucket = c.bucket
        GROUP BY o.operation_id
    ),

    totals AS (
        INSERT INTO monitoring.trace_operation_totals AS t (
            operation_id, calls, errors, duration_ns_sum, buckets
        )
        SELECT f.operation_id, sum(f.calls), sum(f.errors), sum(f.duration_ns_sum), h.buckets
        FROM fresh AS f
        INNER JOIN histograms AS h ON f.operation_id = h.operation_id
        GROUP BY f.operation_id, h.buckets
        ON CONFLICT (operation_id) DO UPDATE
            SET
                calls = t.calls + excluded.calls,
                errors = t.errors + excluded.errors,
                duration_ns_sum = t.duration_ns_sum + excluded.duration_ns_sum,
                buckets = ARRAY(
                    SELECT u.a + u.b
                    FROM unnest(t.buckets, excluded.buckets) WITH ORDINALITY AS u (a, b, i)
                    ORDER BY u.i
                )
    )

    SELECT count(*) INTO v_minutes FROM merged;

    WITH keys AS (
        SELECT DISTINCT e.minute, e.parent_operation_id, e.child_operation_id
        FROM monitoring.trace_edge_minutes AS e WHERE NOT e.folded
    ),

    gone AS (
        DELETE FROM monitoring.trace_edge_minutes AS e
        USING keys AS k
        WHERE e.minute = k.minute AND e.parent_operation_id = k.parent_operation_id
            AND e.child_operation_id = k.child_operation_id
        RETURNING e.*
    ),

    merged AS (
        INSERT INTO monitoring.trace_edge_minutes (
            minute, parent_operation_id, child_operation_id, calls, errors, folded
        )
        SELECT g.minute, g.parent_operation_id, g.child_operation_id, sum(g.calls),
            sum(g.errors), TRUE
        FROM gone AS g
        GROUP BY g.minute, g.parent_operation_id, g.child_operation_id
        RETURNING 1
    )

    SELECT count(*) INTO v_edges FROM merged;

    RETURN jsonb_build_object(
        'traces_folded', v_traces,
        'operation_minutes_folded', v_minutes,
        'edge_minutes_folded', v_edges,
        'edges_resolved', v_resolved,
        'orphans_expired', v_expired
    );
END
$$;

COMMENT ON FUNCTION monitoring.fold_traces() IS
'Merges the trace, operation and edge summaries ingest appended, and counts edges whose '
'parent span came later; run by run_maintenance';

CREATE OR REPLACE FUNCTION monitoring.ensure_trace_partitions(p_days_ahead integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN monitoring._ensure_daily_partitions(
        'monitoring.trace_spans', 'start_time',
        coalesce(p_days_ahead, (monitoring.get_setting('traces.partition_days_ahead'))::integer)
    );
END
$$;

COMMENT ON FUNCTION monitoring.ensure_trace_partitions(integer) IS
'Creates the daily span partitions from today (UTC) to p_days_ahead days ahead; returns how '
'many it created';

CREATE OR REPLACE FUNCTION monitoring.apply_trace_retention()
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_cutoff timestamptz := now()
        - make_interval(days => (monitoring.get_setting('traces.retention_days'))::integer);
    v_spans record;
    v_traces bigint;
    v_minutes bigint;
BEGIN
    v_spans := monitoring._drop_daily_partitions('monitoring.trace_spans', 'start_time', v_cutoff);
    -- a trace goes when its last span started before the window: its spans went with
    -- their partitions (or do at the next run)
    DELETE FROM monitoring.trace_parts AS p
    WHERE p.trace_id IN (
        SELECT o.trace_id FROM monitoring.trace_parts AS o WHERE o.first_start < v_cutoff
    )
        AND NOT EXISTS (
            SELECT FROM monitoring.trace_parts AS n
            WHERE n.trace_id = p.trace_id AND n.last_start >= v_cutoff
        );
    GET DIAGNOSTICS v_traces = ROW_COUNT;
    DELETE FROM monitoring.trace_operation_minutes AS m WHERE m.minute < v_cutoff;
    GET DIAGNOSTICS v_minutes = ROW_COUNT;
    DELETE FROM monitoring.trace_edge_minutes AS e WHERE e.minute < v_cutoff;
    RETURN jsonb_build_object(
        'span_partitions_dropped', v_spans.partitions_dropped,
        'default_spans_deleted', v_spans.default_rows_deleted,
        'trace_rows_deleted', v_traces,
        'operation_minutes_deleted', v_minutes
    );
END
$$;

COMMENT ON FUNCTION monitoring.apply_trace_retention() IS
'Drops span partitions older than traces.retention_days, deletes older spans from DEFAULT, '
'and the trace and minute summaries of the same age';
