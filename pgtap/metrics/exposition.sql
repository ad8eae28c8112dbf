-- prometheus_metrics: the families and samples of what the database holds, in the text
-- format's rules (promtool's check of the live page: tests/test_server_metrics.py).
BEGIN;
SELECT plan(13);

SELECT monitoring.capture_message('card declined', 'error', NULL, 'production', 'shop');
SELECT monitoring.capture_message('card declined again', 'error', NULL, 'production', 'shop');
SELECT monitoring.capture_message('odd', 'warning', NULL, 'staging', E'we"ird\\na\nme');
SELECT monitoring.fold_counts();

CREATE TEMPORARY TABLE page AS SELECT monitoring.prometheus_metrics() AS text;
CREATE TEMPORARY TABLE page_lines AS
SELECT
    l.line,
    l.n
FROM page AS p
CROSS JOIN LATERAL regexp_split_to_table(p.text, E'\n') WITH ORDINALITY AS l (line, n);

SELECT ok((SELECT right(p.text, 1) = E'\n' FROM page AS p), 'the page ends with a newline');

-- the issues sample whose labels hold p_part
CREATE FUNCTION pg_temp.issues_line(p_part text)
RETURNS text
LANGUAGE sql
AS $$
    SELECT l.line FROM page_lines AS l
    WHERE l.line LIKE 'pg\_monitoring\_issues{%' AND strpos(l.line, p_part) > 0
$$;

SELECT is(
    pg_temp.issues_line('service="shop"'),
    'pg_monitoring_issues{environment="production",level="error",service="shop",'
    || 'status="unresolved"} 2',
    'issues counted by service, environment, level and status'
);

SELECT is(
    pg_temp.issues_line('staging'),
    'pg_monitoring_issues{environment="staging",level="warning",service="we\"ird\\na\nme",'
    || 'status="unresolved"} 1',
    'label values escape double quotes, backslashes and newlines'
);

SELECT is(
    (
        SELECT count(*)::integer FROM page_lines AS l
        WHERE l.line LIKE '# TYPE %'
    ),
    (
        SELECT count(DISTINCT split_part(l.line, ' ', 3))::integer FROM page_lines AS l
        WHERE l.line LIKE '# HELP %'
    ),
    'one HELP and one TYPE per family'
);

-- each family's lines together: a sample's name is that of the last TYPE line before it (a
-- histogram's with _bucket, _sum or _count)
SELECT is(
    (
        SELECT count(*)::integer
        FROM page_lines AS s
        CROSS JOIN
            LATERAL (
                SELECT
                    split_part(t.line, ' ', 3) AS name,
                    split_part(t.line, ' ', 4) AS kind
                FROM page_lines AS t
                WHERE t.line LIKE '# TYPE %' AND t.n < s.n
                ORDER BY t.n DESC LIMIT 1
            ) AS f
        WHERE
            s.line NOT LIKE '#%' AND s.line <> ''
            AND split_part(split_part(s.line, '{', 1), ' ', 1) <> all(
                CASE
                    WHEN f.kind = 'histogram'
                        THEN ARRAY[f.name || '_bucket', f.name || '_sum', f.name || '_count']
                    ELSE ARRAY[f.name]
                END
            )
    ),
    0,
    'every sample follows its own family''s TYPE line'
);

SELECT ok(
    (
        SELECT l.line ~ '^pg_monitoring_cache_store_hits_total [0-9]+$' FROM page_lines AS l
        WHERE l.line LIKE 'pg\_monitoring\_cache\_store\_hits\_total %'
    ),
    'cache counters end in _total, named cache_store apart from the app''s own cache_hits_total'
);

SELECT is(
    (
        SELECT array_agg(split_part(split_part(l.line, '"', 2), '"', 1) ORDER BY l.line)
        FROM page_lines AS l
        WHERE l.line LIKE 'pg\_monitoring\_alert\_notifications{%'
    ),
    ARRAY['dead', 'failed', 'pending', 'sending', 'sent'],
    'alert notifications: a sample for every status, zero or not'
);

SELECT ok(
    (
        SELECT l.line ~ '^pg_monitoring_database_connections\{state="active"\} [1-9][0-9]*$'
        FROM page_lines AS l
        WHERE l.line LIKE 'pg\_monitoring\_database\_connections{state="active"}%'
    ),
    'the database''s health: this session is an active connection'
);

-- maintenance and partitions: after a run, nothing failed and nothing is missing ahead
SELECT monitoring.run_maintenance();
CREATE FUNCTION pg_temp.sample(p_start text)
RETURNS text
LANGUAGE sql
AS $$
    SELECT string_agg(l.line, ';' ORDER BY l.line)
    FROM regexp_split_to_table(monitoring.prometheus_metrics(), E'\n') AS l (line)
    WHERE starts_with(l.line, p_start)
$$;

SELECT ok(
    pg_temp.sample('pg_monitoring_maintenance_last_run_timestamp_seconds ')
    ~ '^pg_monitoring_maintenance_last_run_timestamp_seconds 1[0-9]{9}(\.[0-9]+)?$'
    AND pg_temp.sample('pg_monitoring_maintenance_last_run_failed_steps ')
    = 'pg_monitoring_maintenance_last_run_failed_steps 0',
    'the last run_maintenance: when it finished, and no step failed'
);

SELECT is(
    pg_temp.sample('pg_monitoring_partitions_missing_ahead{'),
    'pg_monitoring_partitions_missing_ahead{table="error_events"} 0;'
    || 'pg_monitoring_partitions_missing_ahead{table="log_records"} 0;'
    || 'pg_monitoring_partitions_missing_ahead{table="metric_data_points"} 0;'
    || 'pg_monitoring_partitions_missing_ahead{table="trace_spans"} 0',
    'no partition missing ahead after maintenance'
);

DO $$
BEGIN
    EXECUTE format(
        'DROP TABLE monitoring.trace_spans_p%s',
        to_char((now() AT TIME ZONE 'UTC')::date + 7, 'YYYYMMDD')
    );
END
$$;
SELECT is(
    pg_temp.sample('pg_monitoring_partitions_missing_ahead{table="trace_spans"}'),
    'pg_monitoring_partitions_missing_ahead{table="trace_spans"} 1',
    'a day''s partition missing ahead is counted'
);

SELECT lives_ok(
    $$
        SET LOCAL ROLE monitoring_reader;
        SELECT monitoring.prometheus_metrics();
    $$,
    'a reader may scrape'
);
RESET ROLE;

-- the cache's size, as its statistics last counted it
SELECT monitoring.cache_set('size:' || i, jsonb_build_object('v', repeat('x', 200)), 3600)
FROM generate_series(1, 2000) AS i;
ANALYZE monitoring.cache_entries;
SELECT ok(
    (
        SELECT
            substring(l.line FROM '^pg_monitoring_cache_bytes ([0-9]+)$')::bigint
            >= 2000 * 200
        FROM regexp_split_to_table(monitoring.prometheus_metrics(), E'\n') AS l (line)
        WHERE l.line LIKE 'pg\_monitoring\_cache\_bytes %'
    ),
    'the cache''s bytes, from the statistics: at least its values'' size'
);

SELECT * FROM finish();
ROLLBACK;
