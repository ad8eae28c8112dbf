-- The health of the PostgreSQL server pg_monitoring lives in, from PostgreSQL's own
-- statistics: connections, what runs long, who blocks whom, the buffer cache, tables' size,
-- bloat and vacuum, replication. Views over PostgreSQL's statistics views and catalogs: no
-- table is scanned, so each is cheap enough to read every 15 seconds.
--
-- They run as the role that reads them. PostgreSQL shows another role's sessions (query,
-- state, waits) and replication only to members of pg_read_all_stats, which pg_monitor
-- includes: GRANT pg_monitor TO monitoring_reader gives a reader the whole picture (README).
-- Without it, database_connections counts the processes it can not see as 'not visible'.
-- Durations end at clock_timestamp(): statistics are read when a statement first reads them,
-- after it started, so a query that began in between would show a negative age.

-- Client connections by state, against max_connections.
CREATE OR REPLACE VIEW monitoring.database_connections AS
SELECT
    st.state,
    count(a.pid)::integer AS connections,
    pg_catalog.current_setting('max_connections')::integer AS max_connections,
    round(
        count(a.pid) * 100.0 / pg_catalog.current_setting('max_connections')::integer, 1
    ) AS percent_of_max
FROM
    unnest(ARRAY[
        'active', 'idle', 'idle in transaction', 'idle in transaction (aborted)',
        'fastpath function call', 'disabled', 'not visible'
    ]) WITH ORDINALITY AS st (state, ord)
    -- a reader without pg_read_all_stats sees neither the state nor the type of another role's
-- processes: they are counted as 'not visible', client sessions and server processes alike
LEFT JOIN pg_catalog.pg_stat_activity AS a
    ON
        CASE
            WHEN a.backend_type IS NULL THEN 'not visible'
            WHEN a.backend_type = 'client backend' THEN a.state
        END = st.state
GROUP BY st.state, st.ord
ORDER BY st.ord;

COMMENT ON VIEW monitoring.database_connections IS
'Client connections by state, with max_connections (''not visible'': another role''s '
'processes, client or server, to a reader without pg_monitor)';

-- Sessions inside a query or a transaction, the oldest transaction first: what runs long,
-- what holds a transaction open while idle, and what waits for whom.
CREATE OR REPLACE VIEW monitoring.database_activity AS
SELECT
    a.pid,
    a.datname AS database_name,
    a.usename AS user_name,
    a.application_name,
    a.client_addr,
    a.state,
    round(extract(EPOCH FROM pg_catalog.clock_timestamp() - a.xact_start), 3)
        AS transaction_seconds,
    CASE
        WHEN a.state = 'active'
            THEN round(extract(EPOCH FROM pg_catalog.clock_timestamp() - a.query_start), 3)
    END AS query_seconds,
    round(extract(EPOCH FROM pg_catalog.clock_timestamp() - a.state_change), 3)
        AS state_seconds,
    a.wait_event_type,
    a.wait_event,
    -- only for lock waits: pg_blocking_pids takes the lock manager's locks
    CASE WHEN a.wait_event_type = 'Lock' THEN pg_catalog.pg_blocking_pids(a.pid) END
        AS blocked_by,
    a.backend_xmin IS NOT NULL AS holds_xmin,
    left(a.query, 1000) AS query
FROM pg_catalog.pg_stat_activity AS a
WHERE
    a.backend_type = 'client backend'
    AND a.pid <> pg_catalog.pg_backend_pid()
    AND (a.state IS DISTINCT FROM 'idle' OR a.xact_start IS NOT NULL)
ORDER BY a.xact_start NULLS LAST, a.query_start NULLS LAST;

COMMENT ON VIEW monitoring.database_activity IS
'Sessions in a query or a transaction, oldest transaction first: durations, waits, the pids '
'a lock wait waits for, the query (its first 1,000 characters)';

-- Each session waiting for a lock, with each session it waits for: one row per pair.
CREATE OR REPLACE VIEW monitoring.database_blocking AS
SELECT
    w.pid AS blocked_pid,
    w.usename AS blocked_user,
    round(extract(EPOCH FROM pg_catalog.clock_timestamp() - (
        SELECT min(l.waitstart) FROM pg_catalog.pg_locks AS l
        WHERE l.pid = w.pid AND NOT l.granted
    )), 3) AS waiting_seconds,
    left(w.query, 1000) AS blocked_query,
    b.pid AS blocking_pid,
    b.usename AS blocking_user,
    b.state AS blocking_state,
    round(extract(EPOCH FROM pg_catalog.clock_timestamp() - b.xact_start), 3)
        AS blocking_transaction_seconds,
    left(b.query, 1000) AS blocking_query
FROM pg_catalog.pg_stat_activity AS w
CROSS JOIN LATERAL unnest(pg_catalog.pg_blocking_pids(w.pid)) AS bp (pid)
LEFT JOIN pg_catalog.pg_stat_activity AS b ON bp.pid = b.pid
WHERE w.wait_event_type = 'Lock'
ORDER BY waiting_seconds DESC NULLS LAST, w.pid ASC, b.pid ASC;

COMMENT ON VIEW monitoring.database_blocking IS
'Who waits for a lock and who holds it: one row per (blocked, blocking) pair';

-- Replication seen from here: on a primary, one row per standby (or cascade) it sends to; on
-- a standby, one row for itself (role 'standby'). Bytes behind and seconds behind.
CREATE OR REPLACE VIEW monitoring.database_replication AS
SELECT
    'primary'::text AS role,
    r.application_name,
    r.client_addr,
    r.state,
    r.sync_state,
    -- pg_current_wal_lsn() fails during recovery: a cascading standby measures from what
    -- it has received
    pg_catalog.pg_wal_lsn_diff(
        CASE
            WHEN pg_catalog.pg_is_in_recovery()
                THEN pg_catalog.pg_last_wal_receive_lsn()
            ELSE pg_catalog.pg_current_wal_lsn()
        END,
        r.replay_lsn
    )::bigint AS replay_lag_bytes,
    round(extract(EPOCH FROM r.write_lag), 3) AS write_lag_seconds,
    round(extract(EPOCH FROM r.flush_lag), 3) AS flush_lag_seconds,
    round(extract(EPOCH FROM r.replay_lag), 3) AS replay_lag_seconds
FROM pg_catalog.pg_stat_replication AS r
UNION ALL
SELECT
    'standby' AS role,
    NULL AS application_name,
    NULL AS client_addr,
    (SELECT w.status FROM pg_catalog.pg_stat_wal_receiver AS w) AS state,
    NULL AS sync_state,
    pg_catalog.pg_wal_lsn_diff(
        pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn()
    )::bigint AS replay_lag_bytes,
    NULL AS write_lag_seconds,
    NULL AS flush_lag_seconds,
    -- nothing to replay: not behind, however long ago the primary last wrote
    CASE
        WHEN pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn()
            THEN 0
        ELSE
            round(extract(
                EPOCH FROM pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp()
            ), 3)
    END AS replay_lag_seconds
WHERE pg_catalog.pg_is_in_recovery();

COMMENT ON VIEW monitoring.database_replication IS
'Replication lag: per standby on a primary, or this standby''s own (bytes and seconds behind)';

-- Tables (and materialized views) of this database: size, rows, an estimate of bloat,
-- vacuum and analyze freshness, transaction id age. Largest first. Sizes are as of the last
-- VACUUM, ANALYZE or CREATE INDEX (pg_class.relpages): reading it never waits for a lock.
CREATE OR REPLACE VIEW monitoring.database_tables AS
SELECT
    t.schema_name,
    t.table_name,
    t.table_bytes,
    t.index_bytes,
    t.total_bytes,
    t.live_rows,
    t.dead_rows,
    round(t.dead_rows * 100.0 / nullif(t.live_rows + t.dead_rows, 0), 1) AS dead_percent,
    -- the heap's pages beyond what its rows need at their average width (pg_stats, from the
    -- last ANALYZE) and the table's fillfactor: NULL before an ANALYZE, or for a reader who
    -- may not read the table's columns
    CASE WHEN t.row_width IS NOT NULL THEN greatest(
        t.heap_bytes - ceil(
            t.estimated_rows / nullif(floor(
                (t.block_size - 24) * t.fill / 100.0 / (
                    -- tuple header and line pointer, data aligned to 8 bytes
                    28 + ceil(t.row_width / 8.0) * 8
                )
            ), 0)
        ) * t.block_size,
        0
    )::bigint END AS bloat_bytes,
    t.last_vacuum,
    t.last_autovacuum,
    t.last_analyze,
    t.last_autoanalyze,
    t.rows_changed_since_analyze,
    t.xid_age
FROM (
    SELECT
        n.nspname AS schema_name,
        c.relname AS table_name,
        -- sizes from the pages VACUUM, ANALYZE and CREATE INDEX last counted: the size
        -- functions would lock each table, and wait behind an ALTER TABLE or a VACUUM FULL,
        -- which is when someone looks
        (c.relpages + coalesce(tc.relpages, 0))::bigint * b.block_size AS table_bytes,
        coalesce(ix.pages, 0) * b.block_size AS index_bytes,
        (c.relpages + coalesce(tc.relpages, 0) + coalesce(ix.pages, 0)) * b.block_size
            AS total_bytes,
        c.relpages::bigint * b.block_size AS heap_bytes,
        s.n_live_tup AS live_rows,
        s.n_dead_tup AS dead_rows,
        greatest(c.reltuples, 0) AS estimated_rows,
        b.block_size,
        coalesce((
            SELECT substr(o.opt, 12)::integer
            FROM unnest(c.reloptions) AS o (opt)
            WHERE o.opt LIKE 'fillfactor=%'
        ), 100) AS fill,
        (
            SELECT sum(ps.avg_width)
            FROM pg_catalog.pg_stats AS ps
            WHERE ps.schemaname = n.nspname AND ps.tablename = c.relname AND NOT ps.inherited
        ) AS row_width,
        s.last_vacuum,
        s.last_autovacuum,
        s.last_analyze,
        s.last_autoanalyze,
        s.n_mod_since_analyze AS rows_changed_since_analyze,
        pg_catalog.age(c.relfrozenxid) AS xid_age
    FROM pg_catalog.pg_class AS c
    CROSS JOIN (
        SELECT pg_catalog.current_setting('block_size')::bigint AS block_size
    ) AS b
    INNER JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid
    LEFT JOIN pg_catalog.pg_class AS tc ON c.reltoastrelid = tc.oid
    LEFT JOIN LATERAL (
        SELECT sum(ic.relpages)::bigint AS pages
        FROM pg_catalog.pg_index AS i
        INNER JOIN pg_catalog.pg_class AS ic ON i.indexrelid = ic.oid
        WHERE i.indrelid = c.oid
    ) AS ix ON TRUE
    LEFT JOIN pg_catalog.pg_stat_all_tables AS s ON c.oid = s.relid
    WHERE
        c.relkind IN ('r', 'm')
        AND n.nspname <> 'information_schema'
        AND NOT pg_catalog.starts_with(n.nspname, 'pg_')
) AS t
ORDER BY t.total_bytes DESC, t.schema_name ASC, t.table_name ASC;

COMMENT ON VIEW monitoring.database_tables IS
'Tables of this database, largest first: bytes (heap and TOAST, indexes; as of the last '
'VACUUM or ANALYZE), live and dead rows, estimated bloat, vacuum and analyze times, '
'transaction id age';

-- The whole server at a glance: one row.
CREATE OR REPLACE VIEW monitoring.database_health AS
SELECT
    a.connections,
    pg_catalog.current_setting('max_connections')::integer AS max_connections,
    a.active,
    a.idle_in_transaction,
    a.blocked,
    a.longest_query_seconds,
    a.oldest_transaction_seconds,
    -- shared buffers' hits of this database's reads since its statistics were reset
    round(d.blks_hit::numeric / nullif(d.blks_hit + d.blks_read, 0), 4) AS buffer_hit_ratio,
    d.deadlocks,
    d.temp_bytes,
    d.xact_commit AS commits,
    d.xact_rollback AS rollbacks,
    pg_catalog.pg_database_size(pg_catalog.current_database()) AS database_bytes,
    pg_catalog.pg_is_in_recovery() AS in_recovery,
    (SELECT max(r.replay_lag_seconds) FROM monitoring.database_replication AS r)
        AS replication_lag_seconds,
    (SELECT max(r.replay_lag_bytes) FROM monitoring.database_replication AS r)
        AS replication_lag_bytes,
    d.stats_reset
FROM (
    SELECT
        count(*)::integer AS connections,
        count(*) FILTER (WHERE s.state = 'active')::integer AS active,
        count(*) FILTER (WHERE s.state LIKE 'idle in transaction%')::integer
            AS idle_in_transaction,
        count(*) FILTER (WHERE s.wait_event_type = 'Lock')::integer AS blocked,
        round(
            max(extract(EPOCH FROM pg_catalog.clock_timestamp() - s.query_start))
            FILTER (WHERE s.state = 'active' AND s.pid <> pg_catalog.pg_backend_pid()), 3)
            AS longest_query_seconds,
        round(
            max(extract(EPOCH FROM pg_catalog.clock_timestamp() - s.xact_start))
            FILTER (WHERE s.pid <> pg_catalog.pg_backend_pid()), 3)
            AS oldest_transaction_seconds
    FROM pg_catalog.pg_stat_activity AS s
    WHERE s.backend_type = 'client backend'
) AS a
CROSS JOIN pg_catalog.pg_stat_database AS d
WHERE d.datname = pg_catalog.current_database();

COMMENT ON VIEW monitoring.database_health IS
'The server at a glance: connections, waits, the longest query and transaction, buffer hit '
'ratio, deadlocks, database size, recovery and replication lag';

GRANT SELECT ON
monitoring.database_connections,
monitoring.database_activity,
monitoring.database_blocking,
monitoring.database_replication,
monitoring.database_tables,
monitoring.database_health
TO monitoring_reader, monitoring_admin;
