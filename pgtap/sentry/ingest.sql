-- The Sentry ingest in SQL: projects keep their public key hashed, sentry_ingest checks it,
-- stores and counts, refuses over the quota with Sentry's headers, and counts every drop.
BEGIN;
SELECT plan(20);

CREATE TEMPORARY TABLE made (project_id bigint, key text) ON COMMIT DROP;
GRANT SELECT, INSERT ON made TO monitoring_admin, monitoring_writer;
CREATE FUNCTION pg_temp.ingest(p_key text, p_items jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT monitoring.sentry_ingest((SELECT m.project_id FROM made AS m), p_key, p_items)
$$;
CREATE FUNCTION pg_temp.project_key() RETURNS text
LANGUAGE sql AS $$SELECT m.key FROM made AS m$$;
CREATE FUNCTION pg_temp.counted(p_outcome text, p_category text, p_reason text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT coalesce(sum(o.quantity), 0)::bigint FROM monitoring.sentry_outcomes AS o
    WHERE o.outcome = p_outcome AND o.category = p_category AND o.reason = p_reason
$$;

SELECT is(
    pgtap_helpers.run_as('monitoring_admin', $$
        INSERT INTO made
        SELECT * FROM monitoring.add_sentry_project('tap-shop', 'tap', 'qa', 4242);
        SELECT monitoring.set_sentry_project_quota('tap-shop', 2, 100);
    $$),
    NULL,
    'an admin may add a project (with the id of its DSN) and set its quota'
);
SELECT is(
    (SELECT m.project_id FROM made AS m), 4242::bigint, 'the project has the id asked for'
);
SELECT is(
    (
        SELECT k.key_hash FROM monitoring.ingest_keys AS k
        INNER JOIN monitoring.sentry_projects AS p ON k.id = p.key_id
        WHERE p.name = 'tap-shop'
    ),
    sha256(convert_to(pg_temp.project_key(), 'UTF8')),
    'its public key is an ingest key, stored as its SHA-256 only'
);

SELECT is(
    pg_temp.ingest(NULL, '{}') ->> 'status', 'unauthorized', 'no key: unauthorized (401)'
);
SELECT is(
    pg_temp.ingest('pgm_wrong', '{}') ->> 'status', 'forbidden', 'a wrong key: forbidden (403)'
);

SELECT is(
    pg_temp.ingest(
        pg_temp.project_key(),
        '{"events": [{"event_id": "0a0b0c0d0e0f40a0b0c0d0e0f0a0b0c1", "message": "tap one",
          "level": "error"}], "skipped": {"session": 2}}'
    ) ->> 'status',
    'accepted',
    'an event within the quota is accepted'
);
SELECT is(
    (
        SELECT i.service || '/' || i.environment FROM monitoring.error_events AS e
        INNER JOIN monitoring.issues AS i ON e.issue_id = i.id
        WHERE e.event_id = '0a0b0c0d0e0f40a0b0c0d0e0f0a0b0c1'
    ),
    'tap/qa',
    'an event naming no service or environment gets the project''s'
);
SELECT is(pg_temp.counted('skipped', 'session', ''), 2::bigint, 'skipped items are counted');

SELECT is(
    pg_temp.ingest(
        pg_temp.project_key(),
        '{"events": [{"message": "tap two"}, {"message": "tap three"}]}'
    ) ->> 'status',
    'rate_limited',
    'two more events are over the quota of 2 a minute'
);
SELECT matches(
    pg_temp.ingest(
        pg_temp.project_key(), '{"events": [{"message": "tap four"}, {"message": "tap five"}]}'
    )
    ->> 'rate_limits',
    '^[0-9]+:error;default;security;transaction;span:project:project_quota_minute$',
    'X-Sentry-Rate-Limits: seconds, categories, scope and reason'
);
SELECT is(
    pg_temp.counted('dropped', 'error', 'ratelimited'), 4::bigint,
    'the events over the quota are counted as dropped'
);
SELECT is(
    pg_temp.ingest(
        pg_temp.project_key(),
        '{"client_reports": [{"category": "error", "reason": "ratelimit_backoff",
          "quantity": 5}]}'
    ) ->> 'status',
    'accepted',
    'a client report is no event: never over the quota'
);
SELECT is(
    pg_temp.counted('client_dropped', 'error', 'ratelimit_backoff'), 5::bigint,
    'the SDK''s own drops are recorded'
);

-- serve's requests stored together: each answered as sentry_ingest would, in order
SELECT is(
    (
        SELECT
            jsonb_path_query_array(
                monitoring.sentry_ingest_many(jsonb_build_array(
                    jsonb_build_array(m.project_id, m.key, jsonb_build_object(
                        'client_reports', jsonb_build_array(jsonb_build_object(
                            'category', 'error', 'reason', 'sample_rate', 'quantity', 3
                        ))
                    )),
                    jsonb_build_array(m.project_id, 'pgm_wrong', '{}'::jsonb),
                    jsonb_build_array(m.project_id, NULL, '{}'::jsonb),
                    jsonb_build_array(
                        m.project_id, m.key, '{"events": [{"message": "tap six"}]}'::jsonb
                    )
                )),
                '$[*].status'
            )
        FROM made AS m
    ),
    '["accepted", "forbidden", "unauthorized", "accepted"]'::jsonb,
    'sentry_ingest_many answers each request as sentry_ingest, in order'
);
SELECT is(
    pg_temp.counted('client_dropped', 'error', 'sample_rate')
    + (
        SELECT count(*) FROM monitoring.error_events AS e
        WHERE e.message = 'tap six'
    ),
    4::bigint,
    'and stores what each holds'
);
SELECT throws_ok(
    $$SELECT monitoring.sentry_ingest_many('[[1, "k"]]')$$,
    '22023',
    'each request must be [project id, key, items], not [1, "k"]',
    'a request that is no [project id, key, items] is refused by name'
);

-- retention deletes old hours, and the exposition's counter keeps what they counted
CREATE TEMPORARY TABLE exposed_before ON COMMIT DROP AS
SELECT sum(m.value) AS total FROM monitoring._sentry_ingest_metrics() AS m;
INSERT INTO monitoring.sentry_outcomes (
    project_id, hour, outcome, category, reason, slot, quantity
)
SELECT
    m.project_id,
    date_trunc('hour', now()) - interval '400 days' AS hour,
    'accepted' AS outcome,
    'error' AS category,
    '' AS reason,
    0 AS slot,
    7 AS quantity
FROM made AS m;
SELECT is(
    monitoring.apply_sentry_outcomes_retention(), 1::bigint,
    'retention deletes the hours older than sentry.outcomes_retention_days'
);
SELECT is(
    (SELECT sum(m.value) FROM monitoring._sentry_ingest_metrics() AS m),
    (SELECT b.total + 7 FROM exposed_before AS b),
    'and pg_monitoring_sentry_items_total still counts them: it never goes down'
);

SELECT is(
    pgtap_helpers.run_as(
        'monitoring_admin', $$SELECT monitoring.revoke_sentry_project('tap-shop')$$
    ),
    NULL,
    'an admin may revoke a project'
);
SELECT is(
    pg_temp.ingest(pg_temp.project_key(), '{}') ->> 'status', 'forbidden',
    'a revoked project''s key is refused'
);

SELECT * FROM finish();
ROLLBACK;
