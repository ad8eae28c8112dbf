-- The database health views in one session: what they show of this server, and that a
-- reader may read them. Sessions that wait for each other: tests/test_database_views.py.
BEGIN;
SELECT plan(16);

SELECT is(
    (SELECT array_agg(c.state ORDER BY c.state) FROM monitoring.database_connections AS c),
    ARRAY[
        'active', 'disabled', 'fastpath function call', 'idle', 'idle in transaction',
        'idle in transaction (aborted)', 'not visible'
    ],
    'database_connections: a row for every state, counted or not'
);

SELECT ok(
    (
        SELECT c.connections >= 1 FROM monitoring.database_connections AS c
        WHERE c.state = 'active'
    ),
    'this session is an active connection'
);

SELECT is(
    (SELECT DISTINCT c.max_connections FROM monitoring.database_connections AS c),
    current_setting('max_connections')::integer,
    'against max_connections'
);

SELECT is(
    (SELECT count(*)::integer FROM monitoring.database_health),
    1,
    'database_health is one row'
);

SELECT ok(
    (
        SELECT
            h.connections >= 1 AND NOT h.in_recovery AND h.database_bytes > 0
            AND h.blocked = 0 AND h.buffer_hit_ratio BETWEEN 0 AND 1
        FROM monitoring.database_health AS h
    ),
    'with connections, no waits, a buffer hit ratio, the database size, not in recovery'
);

SELECT is(
    (SELECT count(*)::integer FROM monitoring.database_replication),
    0,
    'a primary without standbys: no replication rows (and no error from pg_current_wal_lsn)'
);

SELECT ok(
    NOT EXISTS (
        SELECT FROM monitoring.database_activity AS a
        WHERE a.pid = pg_backend_pid()
    ),
    'database_activity leaves out the session that reads it'
);

-- a table with a known width and rows: 10,000 rows, half deleted
CREATE TABLE public.pgtap_orders (id integer, note text);
INSERT INTO public.pgtap_orders
SELECT
    g AS id,
    repeat('x', 100) AS note
FROM generate_series(1, 10000) AS g;
DELETE FROM public.pgtap_orders
WHERE id % 2 = 0;
ANALYZE public.pgtap_orders;

SELECT ok(
    (
        SELECT t.table_bytes > 0 AND t.total_bytes >= t.table_bytes AND t.xid_age >= 0
        FROM monitoring.database_tables AS t
        WHERE t.schema_name = 'public' AND t.table_name = 'pgtap_orders'
    ),
    'database_tables: a table with its bytes and transaction id age'
);

-- a table's estimated bloat as a share of its heap
CREATE FUNCTION pg_temp.bloat_share(p_table text)
RETURNS numeric
LANGUAGE sql
AS $$
    SELECT t.bloat_bytes::numeric / pg_relation_size(format('public.%I', p_table)::regclass)
    FROM monitoring.database_tables AS t
    WHERE t.schema_name = 'public' AND t.table_name = p_table
$$;

SELECT ok(
    pg_temp.bloat_share('pgtap_orders') BETWEEN 0.3 AND 0.7,
    'half the rows deleted, not vacuumed: about half the heap is estimated bloat'
);

-- the same rows written compactly (VACUUM FULL can not run in this test's transaction)
CREATE TABLE public.pgtap_compact AS SELECT * FROM public.pgtap_orders;
ANALYZE public.pgtap_compact;
SELECT ok(pg_temp.bloat_share('pgtap_compact') < 0.2, 'the same rows written compactly: little');

CREATE TABLE public.pgtap_dense (id integer) WITH (fillfactor = 50);
INSERT INTO public.pgtap_dense SELECT generate_series(1, 10000);
ANALYZE public.pgtap_dense;
SELECT ok(pg_temp.bloat_share('pgtap_dense') < 0.2, 'the room a fillfactor leaves is not bloat');

CREATE TABLE public.pgtap_fresh (id integer);
SELECT is(
    (
        SELECT t.bloat_bytes
        FROM monitoring.database_tables AS t
        WHERE t.schema_name = 'public' AND t.table_name = 'pgtap_fresh'
    ),
    NULL,
    'never analyzed: no estimate'
);

SELECT ok(
    NOT EXISTS (
        SELECT FROM monitoring.database_tables AS t
        WHERE t.schema_name IN ('pg_catalog', 'information_schema', 'pg_toast')
    ),
    'system catalogs are left out'
);

-- a reader reads every view; a writer none
SELECT lives_ok(
    $$
        SET LOCAL ROLE monitoring_reader;
        SELECT count(*) FROM monitoring.database_connections;
        SELECT count(*) FROM monitoring.database_activity;
        SELECT count(*) FROM monitoring.database_blocking;
        SELECT count(*) FROM monitoring.database_replication;
        SELECT count(*) FROM monitoring.database_tables;
        SELECT count(*) FROM monitoring.database_health;
    $$,
    'monitoring_reader reads every database view'
);
RESET ROLE;

SELECT throws_ok(
    $$
        SET LOCAL ROLE monitoring_writer;
        SELECT count(*) FROM monitoring.database_health;
    $$,
    '42501',
    NULL,
    'monitoring_writer reads none'
);
RESET ROLE;

SELECT is(
    (SELECT count(*)::integer FROM monitoring.database_blocking),
    0,
    'nobody waits: database_blocking is empty'
);

SELECT * FROM finish();
ROLLBACK;
