-- Prometheus's text exposition (format 0.0.4) of what the database knows, for
-- `GET /metrics` on pg-monitoring serve or any scraper that can run a query. Read from
-- counters, small tables and PostgreSQL's statistics, never from raw events or spans, so a
-- scrape every 15 seconds costs the same on a database of any size.
--
-- Counters (*_total) only grow, whatever retention drops: events, new and regressed issues
-- come from error_totals, which the errors' fold adds to; spans, errors and latency from
-- trace_operation_totals, which the traces' fold adds each minute row to once; ingest drops
-- from ingest_drops. So they read as of the last fold (run_maintenance, every minute; the
-- worker's fold_counts for events): reading the buffers not folded yet would make a scrape
-- cost grow with an error storm's backlog.

CREATE OR REPLACE FUNCTION monitoring.prometheus_metrics()
RETURNS text
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- PL/pgSQL, not SQL: a SQL function with SET is planned again at every call (15 ms of
    -- a scrape); PL/pgSQL keeps the plan for the session, and serve's pool reuses sessions.
    -- Labels are built as text, each key in order: a jsonb per sample cost as much again.
    RETURN (
    WITH health AS (SELECT * FROM monitoring.database_health),

    -- Span counters for a bounded set of series (Prometheus's cardinality): entry points
    -- only (server and consumer spans: the requests and messages a service handles), the
    -- metrics.max_span_operations with the most calls. One operation name of a service
    -- may be both a server's and a consumer's: one series.
    span_operations AS MATERIALIZED (
        SELECT
            o.service,
            o.name AS operation,
            sum(t.calls) AS calls,
            sum(t.errors) AS errors,
            sum(t.duration_ns_sum) AS duration_ns_sum,
            array_agg(t.operation_id) AS operation_ids
        FROM (
            SELECT t.*
            FROM monitoring.trace_operation_totals AS t
            INNER JOIN monitoring.trace_operations AS o ON t.operation_id = o.id
            WHERE o.kind IN (2, 5)
            ORDER BY t.calls DESC, t.operation_id
            LIMIT monitoring.get_setting('metrics.max_span_operations')::integer
        ) AS t
        INNER JOIN monitoring.trace_operations AS o ON t.operation_id = o.id
        GROUP BY o.service, o.name
    ),

    -- cumulative, ascending, the last (+Inf) equal to the calls
    span_buckets AS (
        SELECT
            s.service,
            s.operation,
            b.i,
            CASE WHEN b.i <= cardinality(monitoring.span_duration_buckets())
                    THEN (monitoring.span_duration_buckets())[b.i]::numeric::text
                ELSE '+Inf'
            END AS le,
            sum(sum(b.n)) OVER (PARTITION BY s.service, s.operation ORDER BY b.i) AS n
        FROM span_operations AS s
        INNER JOIN monitoring.trace_operation_totals AS t ON t.operation_id = ANY(s.operation_ids)
        CROSS JOIN LATERAL unnest(t.buckets) WITH ORDINALITY AS b (n, i)
        GROUP BY s.service, s.operation, b.i
    ),

    -- Histograms' samples: a family's _bucket, _sum and _count, in the order the format
    -- wants them (ord)
    -- (columns named in the first SELECT, not in a list after the CTE's name: Citus loses
    -- such a list when it plans the CTE, "column h.family does not exist")
    histogram_samples AS (
        SELECT
            'pg_monitoring_span_duration_seconds' AS family,
            'Duration of entry-point spans (server, consumer) by service and operation, '
            || 'from the trace rollups (within one 19% rollup bucket of each boundary)' AS help,
            'pg_monitoring_span_duration_seconds_bucket' AS name,
            'operation="' || monitoring._prometheus_label(b.operation)
            || '",service="' || monitoring._prometheus_label(b.service) || '"' AS labels,
            b.le,
            b.i AS ord,
            b.n::numeric AS value
        FROM span_buckets AS b
        UNION ALL
        SELECT
            'pg_monitoring_span_duration_seconds', NULL,
            'pg_monitoring_span_duration_seconds_' || m.suffix,
            'operation="' || monitoring._prometheus_label(s.operation)
            || '",service="' || monitoring._prometheus_label(s.service) || '"',
            NULL,
            m.ord,
            m.value
        FROM span_operations AS s
        CROSS JOIN LATERAL (VALUES
            ('sum', 1000, round(s.duration_ns_sum / 1000000000, 9)),
            ('count', 1001, s.calls::numeric)
        ) AS m (suffix, ord, value)
    ),

    samples AS (
        SELECT s.name, s.kind, s.help, s.labels, s.value
        FROM monitoring._sentry_ingest_metrics() AS s
        UNION ALL
        SELECT
            'pg_monitoring_issues', 'gauge',
            'Issues by service, environment, level and status',
            'environment="' || monitoring._prometheus_label(i.environment)
            || '",level="' || monitoring._prometheus_label(i.level)
            || '",service="' || monitoring._prometheus_label(i.service)
            || '",status="' || monitoring._prometheus_label(i.status) || '"',
            count(*)::numeric
        FROM monitoring.error_issues AS i
        GROUP BY i.service, i.environment, i.level, i.status
        UNION ALL
        SELECT
            'pg_monitoring_alert_notifications', 'gauge',
            'Notifications in the alert outbox by status (sent and dead ones until retention)',
            'status="' || monitoring._prometheus_label(s.status) || '"',
            count(o.id)::numeric
        FROM unnest(monitoring.notification_statuses()) AS s (status)
        LEFT JOIN monitoring.alert_outbox AS o ON s.status = o.status
        GROUP BY s.status
        UNION ALL
        -- cache_store: the app's PostgresCache(prometheus=True) counts its own process's
        -- reads as pg_monitoring_cache_hits_total; these are every client's, as reported
        SELECT
            'pg_monitoring_cache_store_' || c.name || '_total', 'counter', c.help, NULL,
            c.value
        FROM monitoring._cache_counter_totals() AS t
        CROSS JOIN LATERAL (VALUES
            ('hits', 'Cache reads that found a value (as clients report them)', t.hits),
            ('misses', 'Cache reads that found none (as clients report them)', t.misses),
            ('expired_removed', 'Expired cache entries removed by maintenance', t.expired_removed),
            ('evicted', 'Cache entries evicted to stay within the bounds', t.evicted)
        ) AS c (name, help, value)
        UNION ALL
        SELECT
            'pg_monitoring_' || c.name, 'counter', c.help,
            'environment="' || monitoring._prometheus_label(t.environment)
            || '",level="' || monitoring._prometheus_label(t.level)
            || '",service="' || monitoring._prometheus_label(t.service) || '"',
            c.value
        FROM monitoring.error_totals AS t
        CROSS JOIN LATERAL (VALUES
            (
                'events_total',
                'Error events captured, by service, environment and the event''s level (as of '
                || 'the last fold)',
                t.events::numeric
            ),
            (
                'events_sampled_out_total',
                'Error events counted but not stored by storm protection (errors.storm_*), by '
                || 'service, environment and level (as of the last fold)',
                t.events_sampled_out::numeric
            )
        ) AS c (name, help, value)
        UNION ALL
        SELECT
            'pg_monitoring_issues_' || c.name || '_total', 'counter', c.help,
            'environment="' || monitoring._prometheus_label(t.environment)
            || '",service="' || monitoring._prometheus_label(t.service) || '"', c.value
        FROM (
            SELECT
                t.service, t.environment, sum(t.new_issues) AS new_issues,
                sum(t.regressed_issues) AS regressed_issues
            FROM monitoring.error_totals AS t
            GROUP BY t.service, t.environment
        ) AS t
        CROSS JOIN LATERAL (VALUES
            ('new', 'Issues seen for the first time (as of the last fold)', t.new_issues),
            (
                'regressed', 'Resolved issues that came back with a new event',
                t.regressed_issues
            )
        ) AS c (name, help, value)
        UNION ALL
        SELECT
            'pg_monitoring_spans_' || c.name, 'counter', c.help,
            'operation="' || monitoring._prometheus_label(s.operation)
            || '",service="' || monitoring._prometheus_label(s.service) || '"', c.value
        FROM span_operations AS s
        CROSS JOIN LATERAL (VALUES
            (
                'total',
                'Entry-point spans (server, consumer) by service and operation (as of the last '
                || 'trace fold)',
                s.calls::numeric
            )
        ) AS c (name, help, value)
        UNION ALL
        SELECT
            'pg_monitoring_span_errors_total', 'counter',
            'Entry-point spans with status ERROR by service and operation',
            'operation="' || monitoring._prometheus_label(s.operation)
            || '",service="' || monitoring._prometheus_label(s.service) || '"', s.errors::numeric
        FROM span_operations AS s
        UNION ALL
        SELECT
            'pg_monitoring_ingest_dropped_total', 'counter',
            'Items refused or dropped at ingest, by signal and reason',
            'reason="' || monitoring._prometheus_label(d.reason)
            || '",signal="' || monitoring._prometheus_label(d.signal) || '"',
            coalesce(sum(d.dropped), 0)
        -- the reasons spans, logs and metric points are refused for are there from the start,
        -- at 0: an alert on their rate sees the first drop
        FROM (
            SELECT k.signal, r.reason, NULL::bigint AS dropped
            FROM (VALUES ('spans'), ('logs'), ('metrics')) AS k (signal)
            CROSS JOIN (VALUES ('invalid'), ('too_old'), ('in_future')) AS r (reason)
            UNION ALL
            SELECT d.signal, d.reason, d.dropped
            FROM monitoring.ingest_drops AS d
        ) AS d
        GROUP BY d.signal, d.reason
        UNION ALL
        -- estimates, from the last VACUUM or ANALYZE: counting a million entries per scrape
        -- would cost more than the scrape is worth
        SELECT
            'pg_monitoring_cache_entries', 'gauge',
            'Cache entries, estimated (pg_class.reltuples)', NULL,
            greatest(c.reltuples, 0)::numeric
        FROM pg_catalog.pg_class AS c
        WHERE c.oid = 'monitoring.cache_entries'::regclass
        UNION ALL
        SELECT
            'pg_monitoring_cache_bytes', 'gauge',
            'Cache table size with its TOAST and indexes, estimated (pg_class.relpages)', NULL,
            (
                c.relpages + coalesce(t.relpages, 0) + (
                    SELECT coalesce(sum(i.relpages), 0)
                    FROM pg_catalog.pg_index AS x
                    INNER JOIN pg_catalog.pg_class AS i ON x.indexrelid = i.oid
                    WHERE x.indrelid = c.oid
                )
            )::numeric * pg_catalog.current_setting('block_size')::numeric
        FROM pg_catalog.pg_class AS c
        LEFT JOIN pg_catalog.pg_class AS t ON c.reltoastrelid = t.oid
        WHERE c.oid = 'monitoring.cache_entries'::regclass
        UNION ALL
        SELECT
            'pg_monitoring_maintenance_' || m.name, 'gauge', m.help, NULL, m.value
        FROM monitoring.maintenance_runs AS r
        CROSS JOIN LATERAL (VALUES
            (
                'last_run_timestamp_seconds',
                'When run_maintenance last finished (Unix time; alert on time() minus it)',
                round(extract(EPOCH FROM r.finished_at)::numeric, 3)
            ),
            (
                'last_run_failed_steps', 'Steps that failed in the last run_maintenance',
                cardinality(r.failed_steps)::numeric
            )
        ) AS m (name, help, value)
        UNION ALL
        -- days from today (UTC) to each table's days-ahead setting without their partition:
        -- their rows would land in the DEFAULT partition, which retention does not drop
        SELECT
            'pg_monitoring_partitions_missing_ahead', 'gauge',
            'Daily partitions missing from today to the days-ahead setting, by table',
            'table="' || monitoring._prometheus_label(t.name) || '"',
            (
                SELECT count(*)
                FROM generate_series(0, monitoring.get_setting(t.setting)::integer) AS d (n)
                WHERE pg_catalog.to_regclass(
                    'monitoring.' || t.name || '_p'
                    || to_char((now() AT TIME ZONE 'UTC')::date + d.n, 'YYYYMMDD')
                ) IS NULL
            )::numeric
        FROM (VALUES
            ('error_events', 'errors.partition_days_ahead'),
            ('trace_spans', 'traces.partition_days_ahead'),
            ('log_records', 'logs.partition_days_ahead'),
            ('metric_data_points', 'metrics.partition_days_ahead')
        ) AS t (name, setting)
        UNION ALL
        SELECT
            'pg_monitoring_database_connections', 'gauge',
            'Client connections by state (not visible: processes the owner may not see)',
            'state="' || monitoring._prometheus_label(c.state) || '"', c.connections::numeric
        FROM monitoring.database_connections AS c
        UNION ALL
        SELECT
            'pg_monitoring_database_' || m.name, m.kind, m.help, NULL, m.value
        FROM health AS h
        CROSS JOIN LATERAL (VALUES
            ('max_connections', 'gauge', 'max_connections', h.max_connections::numeric),
            (
                'blocked_sessions', 'gauge', 'Sessions waiting for a lock',
                h.blocked::numeric
            ),
            (
                'longest_query_seconds', 'gauge',
                'Age of the longest-running query (0: none)',
                coalesce(h.longest_query_seconds, 0)
            ),
            (
                'oldest_transaction_seconds', 'gauge',
                'Age of the oldest open transaction (0: none)',
                coalesce(h.oldest_transaction_seconds, 0)
            ),
            (
                'buffer_hit_ratio', 'gauge',
                'Share of this database''s reads found in shared buffers',
                h.buffer_hit_ratio
            ),
            ('deadlocks_total', 'counter', 'Deadlocks detected', h.deadlocks::numeric),
            ('size_bytes', 'gauge', 'Size of this database', h.database_bytes::numeric),
            (
                'in_recovery', 'gauge', '1 on a standby, 0 on a primary',
                CASE WHEN h.in_recovery THEN 1 ELSE 0 END
            ),
            (
                'replication_lag_seconds', 'gauge',
                'The largest replay lag of a standby (on a standby: its own)',
                h.replication_lag_seconds
            )
        ) AS m (name, kind, help, value)
    ),

    all_samples AS (
        SELECT s.name AS family, s.kind, s.help, s.name, s.labels, NULL AS le, 0 AS ord, s.value
        FROM samples AS s
        UNION ALL
        SELECT h.family, 'histogram', h.help, h.name, h.labels, h.le, h.ord, h.value
        FROM histogram_samples AS h
    ),

    -- le last: a series' labels without it keep its _bucket, _sum and _count together
    lines AS (
        SELECT
            s.family,
            s.kind,
            s.help,
            s.ord,
            s.labels AS series,
            s.name
            || CASE WHEN s.labels IS NULL AND s.le IS NULL THEN ''
                ELSE '{' || concat_ws(',', s.labels, 'le="' || s.le || '"') || '}'
            END
            || ' ' || s.value::text AS line
        FROM all_samples AS s
        WHERE s.value IS NOT NULL
    )

    SELECT coalesce(string_agg(f.text, '' ORDER BY f.family), '')
    FROM (
        SELECT
            l.family,
            '# HELP ' || l.family || ' ' || max(l.help) || E'\n# TYPE ' || l.family || ' '
            || l.kind || E'\n'
            || string_agg(l.line || E'\n', '' ORDER BY l.series COLLATE "C", l.ord, l.line) AS text
        FROM lines AS l
        GROUP BY l.family, l.kind
    ) AS f
    );
END
$$;

COMMENT ON FUNCTION monitoring.prometheus_metrics() IS
'Prometheus text exposition (0.0.4) of issues, events, spans and their latency, ingest drops, '
'alert notifications, the cache, maintenance, partitions and the database server''s health, '
'cheap enough to scrape every 15 seconds';

GRANT EXECUTE ON FUNCTION monitoring.prometheus_metrics() TO monitoring_reader, monitoring_admin;
