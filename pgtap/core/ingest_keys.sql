-- Ingest keys: made once and shown once, stored as a hash, checked by scope, revoked.
BEGIN;
SELECT plan(22);

CREATE TEMPORARY TABLE made (name text, key text) ON COMMIT DROP;
GRANT SELECT, INSERT ON made TO monitoring_admin, monitoring_writer;
CREATE FUNCTION pg_temp.key_of(p_name text) RETURNS text
LANGUAGE sql AS $$SELECT m.key FROM made AS m WHERE m.name = p_name$$;

SELECT is(
    pgtap_helpers.run_as('monitoring_admin', $$
        INSERT INTO made
        SELECT 'shop', monitoring.add_ingest_key('shop');
        INSERT INTO made
        SELECT 'logs-only', monitoring.add_ingest_key('logs-only', ARRAY['logs']);
    $$),
    NULL,
    'an admin may add keys'
);

SELECT matches(
    pg_temp.key_of('shop'),
    '^pgm_[0-9a-f]{64}$',
    'a key is pgm_ and 64 hex digits'
);
SELECT isnt(
    pg_temp.key_of('shop'),
    pg_temp.key_of('logs-only'),
    'each key is new'
);
SELECT is(
    (
        SELECT key_hash FROM monitoring.ingest_keys
        WHERE name = 'shop'
    ),
    sha256(convert_to(pg_temp.key_of('shop'), 'UTF8')),
    'only the SHA-256 of the key is stored'
);
SELECT is(
    (
        SELECT scopes FROM monitoring.ingest_keys
        WHERE name = 'shop'
    ),
    ARRAY['events', 'logs', 'metrics', 'scrape', 'traces'],
    'by default a key may send every signal, and scrape'
);

SELECT ok(
    monitoring.check_ingest_key(pg_temp.key_of('shop'), 'traces'),
    'check_ingest_key accepts a live key for its scope'
);
SELECT ok(
    NOT monitoring.check_ingest_key(pg_temp.key_of('logs-only'), 'traces'),
    'and refuses a scope the key lacks'
);
SELECT ok(
    monitoring.check_ingest_key(pg_temp.key_of('logs-only'), 'logs'),
    'a key with one scope sends that one'
);
SELECT ok(NOT monitoring.check_ingest_key('pgm_' || repeat('0', 64), 'traces'), 'a wrong key');
SELECT ok(NOT monitoring.check_ingest_key(repeat('x', 1000000), 'traces'), 'a huge key');
SELECT ok(NOT monitoring.check_ingest_key(NULL, 'traces'), 'no key');
SELECT isnt(
    (
        SELECT last_used_at FROM monitoring.ingest_keys
        WHERE name = 'shop'
    ),
    NULL,
    'a check records when the key was last used'
);

SELECT is(
    pgtap_helpers.run_as('monitoring_writer', $$
        SELECT monitoring.check_ingest_key(pg_temp.key_of('shop'), 'logs')
    $$),
    NULL,
    'a writer may check a key'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', $$SELECT monitoring.add_ingest_key('mine')$$),
    '42501',
    'a writer may not add a key'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', $$SELECT * FROM monitoring.list_ingest_keys()$$),
    '42501',
    'nor list them'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_admin', $$SELECT * FROM monitoring.ingest_keys$$),
    '42501',
    'nobody but the owner reads the table, hashes and all'
);

SELECT throws_ok(
    $$SELECT monitoring.add_ingest_key('shop')$$,
    '23505',
    $$an ingest key named 'shop' exists already$$,
    'a live name is taken'
);
SELECT throws_ok(
    $$SELECT monitoring.add_ingest_key('x', ARRAY['traces', 'spans'])$$,
    '22023',
    'p_scopes: unknown scope spans; the scopes are traces, logs, metrics, events, scrape',
    'an unknown scope is named'
);

SELECT is(
    pgtap_helpers.run_as('monitoring_admin', $$SELECT monitoring.revoke_ingest_key('shop')$$),
    NULL,
    'an admin may revoke a key'
);
SELECT ok(
    NOT monitoring.check_ingest_key(pg_temp.key_of('shop'), 'traces'),
    'a revoked key is refused'
);
SELECT throws_ok(
    $$SELECT monitoring.revoke_ingest_key('shop')$$,
    'P0002',
    $$no ingest key named 'shop' (or it is revoked already)$$,
    'revoking it again says so'
);

SELECT monitoring.add_ingest_key('shop');
SELECT results_eq(
    $$SELECT name, revoked_at IS NOT NULL FROM monitoring.list_ingest_keys()$$,
    $$VALUES ('logs-only', FALSE), ('shop', FALSE), ('shop', TRUE)$$,
    'a revoked name may be given again; the list shows live keys first'
);

SELECT * FROM finish();
ROLLBACK;
