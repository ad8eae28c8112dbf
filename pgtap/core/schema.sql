-- The schema, the version record and the rules every object follows.
BEGIN;
SELECT plan(7);

SELECT has_schema('monitoring');

SELECT is(
    monitoring.version(),
    (
        SELECT extversion FROM pg_catalog.pg_extension
        WHERE extname = 'pg_monitoring'
    ),
    'version() reports the version CREATE EXTENSION installed'
);

SELECT is(monitoring.install_mode(), 'extension', 'install_mode() knows it is an extension');

SELECT results_eq(
    'SELECT version, install_mode FROM monitoring.installed_versions ORDER BY id',
    $$VALUES (monitoring.version(), 'extension')$$,
    'the install recorded its version once'
);

SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
      WHERE p.pronamespace = 'monitoring'::regnamespace
        AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'no function in the schema is executable by PUBLIC'
);

SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
      WHERE p.pronamespace = 'monitoring'::regnamespace AND p.prosecdef
        AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)$$,
    'every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp'
);

SELECT ok(
    'monitoring.settings'::regclass IN (
        SELECT pg_catalog.unnest(extconfig) FROM pg_catalog.pg_extension
        WHERE extname = 'pg_monitoring'
    ),
    'pg_dump keeps the rows of monitoring.settings in an extension install'
);

SELECT * FROM finish();
ROLLBACK;
