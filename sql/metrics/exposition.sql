-- Prometheus's text exposition (format 0.0.4) of what the database knows, for
-- `GET /metrics` on pg-monitoring serve or any scraper that can run a query. Read from
-- counters, small tables and PostgreSQL's statistics, never from raw events or spans, so a
-- scrape every 15 seconds costs the same on a database of any size.

-- A label value as the format writes it: backslash, double quote and newline escaped.
CREATE OR REPLACE FUNCTION monitoring._prometheus_label(p_value text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
        p_value, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n');
$$;

CREATE OR REPLACE FUNCTION monitoring.prometheus_metrics()
RETURNS text
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH health AS (SELECT * FROM monitoring.database_health),

    samples (name, kind, help, labels, value) AS (
        SELECT
            'pg_monitoring_issues', 'gauge',
            'Issues by service, environment, level and status',
            jsonb_build_object(
                'service', i.service, 'environment', i.environment, 'level', i.level,
                'status', i.status
            ),
            count(*)::numeric
        FROM monitoring.error_issues AS i
        GROUP BY i.service, i.environment, i.level, i.status
        UNION ALL
        SELECT
            'pg_monitoring_alert_notifications', 'gauge',
            'Notifications in the alert outbox by status (sent and dead ones until retention)',
            jsonb_build_object('status', s.status),
            count(o.id)::numeric
        FROM unnest(monitoring.notification_statuses()) AS s (status)
        LEFT JOIN monitoring.alert_outbox AS o ON s.status = o.status
        GROUP BY s.status
        UNION ALL
        SELECT
            'pg_monitoring_cache_' || c.name || '_total', 'counter', c.help, '{}'::jsonb, c.value
        FROM monitoring._cache_counter_totals() AS t
        CROSS JOIN LATERAL (VALUES
            ('hits', 'Cache reads that found a value (as clients report them)', t.hits),
            ('misses', 'Cache reads that found none (as clients report them)', t.misses),
            ('expired_removed', 'Expired cache entries removed by maintenance', t.expired_removed),
            ('evicted', 'Cache entries evicted to stay within the bounds', t.evicted)
        ) AS c (name, help, value)
        UNION ALL
        -- estimates, from the last VACUUM or ANALYZE: counting a million entries per scrape
        -- would cost more than the scrape is worth
        SELECT
            'pg_monitoring_cache_entries', 'gauge',
            'Cache entries, estimated (pg_class.reltuples)', '{}'::jsonb,
            greatest(c.reltuples, 0)::numeric
        FROM pg_catalog.pg_class AS c
        WHERE c.oid = 'monitoring.cache_entries'::regclass
        UNION ALL
        SELECT
            'pg_monitoring_maintenance_' || m.name, 'gauge', m.help, '{}'::jsonb, m.value
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
            jsonb_build_object('table', t.name),
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
            ('log_records', 'logs.partition_days_ahead')
        ) AS t (name, setting)
        UNION ALL
        SELECT
            'pg_monitoring_database_connections', 'gauge',
            'Client connections by state (not visible: processes the owner may not see)',
            jsonb_build_object('state', c.state), c.connections::numeric
        FROM monitoring.database_connections AS c
        UNION ALL
        SELECT
            'pg_monitoring_database_' || m.name, m.kind, m.help, '{}'::jsonb, m.value
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

    lines AS (
        SELECT
            s.name,
            s.kind,
            s.help,
            s.name || CASE WHEN s.labels = '{}' THEN '' ELSE '{' || (
                SELECT string_agg(
                    l.key || '="' || monitoring._prometheus_label(l.value) || '"', ','
                    ORDER BY l.key
                )
                FROM jsonb_each_text(s.labels) AS l
            ) || '}' END || ' ' || s.value::text AS line
        FROM samples AS s
        WHERE s.value IS NOT NULL
    )

    SELECT coalesce(string_agg(f.family, '' ORDER BY f.name), '')
    FROM (
        SELECT
            l.name,
            '# HELP ' || l.name || ' ' || l.help || E'\n# TYPE ' || l.name || ' ' || l.kind
            || E'\n' || string_agg(l.line || E'\n', '' ORDER BY l.line) AS family
        FROM lines AS l
        GROUP BY l.name, l.kind, l.help
    ) AS f;
$$;

COMMENT ON FUNCTION monitoring.prometheus_metrics() IS
'Prometheus text exposition (0.0.4) of issues, alert notifications, the cache, maintenance, '
'partitions and the database server''s health, cheap enough to scrape every 15 seconds';

GRANT EXECUTE ON FUNCTION monitoring.prometheus_metrics() TO monitoring_reader, monitoring_admin;
