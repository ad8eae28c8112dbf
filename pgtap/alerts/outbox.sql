-- The outbox: the claim / complete / fail / retry cycle the worker drives, leases that run
-- out, and retention.
BEGIN;
SELECT plan(28);

SELECT has_table('monitoring', 'alert_outbox', 'the outbox is a table');
SELECT has_trigger(
    'monitoring', 'alert_outbox', 'alert_outbox_notify', 'each outbox row wakes the workers'
);
SELECT is(
    (
        SELECT relpersistence FROM pg_catalog.pg_class
        WHERE oid = 'monitoring.alert_outbox'::regclass
    ),
    'p',
    'the outbox is a logged table: it survives a crash and reaches standbys'
);

SELECT monitoring.add_channel('hook', 'webhook', p_secrets => '{"url": "https://h.example/a"}');

-- Claim, complete, fail, retry.
DELETE FROM monitoring.alert_outbox;
SELECT monitoring.test_channel('hook') AS test_id \gset
SELECT results_eq(
    $$SELECT c.id, c.attempt, c.condition, c.channel_kind, c.secrets
      FROM monitoring.claim_notifications(10, 60, 'pgtap') AS c$$,
    format(
        $$VALUES (%s::bigint, 1, 'test', 'webhook', '{"url": "https://h.example/a"}'::jsonb)$$,
        :test_id
    ),
    'a claim hands the worker the notification with its channel''s secrets'
);
SELECT is_empty(
    $$SELECT FROM monitoring.claim_notifications(10, 60, 'pgtap')$$,
    'a claimed notification is not claimed twice'
);
SELECT is(
    (
        SELECT n.status FROM monitoring.notifications AS n
        WHERE n.id = :test_id
    ),
    'sending',
    'it is sending until its lease runs out'
);
SELECT ok(
    NOT monitoring.complete_notification(:test_id, gen_random_uuid()),
    'an outcome needs the claim''s token'
);
SELECT ok(
    monitoring.complete_notification(
        :test_id, (
            SELECT o.claim_token FROM monitoring.alert_outbox AS o
            WHERE o.id = :test_id
        )
    ),
    'complete_notification records the delivery'
);
SELECT results_eq(
    format(
        'SELECT n.status, n.sent_at IS NOT NULL FROM monitoring.notifications AS n WHERE n.id = %s',
        :test_id
    ),
    $$VALUES ('sent', TRUE)$$,
    'a delivered notification is sent'
);

SELECT monitoring.test_channel('hook') AS retry_id \gset
CREATE TEMPORARY TABLE claim AS SELECT * FROM monitoring.claim_notifications(1, 60);
SELECT is(
    monitoring.fail_notification(
        :retry_id, (SELECT c.claim_token FROM claim AS c), 'HTTP 500 from https://h.example',
        p_max_attempts => 3, p_retry_base_seconds => 10, p_retry_max_seconds => 100
    ),
    'failed',
    'a failed attempt before the last is retried'
);
SELECT ok(
    (
        SELECT
            o.next_attempt_at - clock_timestamp() BETWEEN interval '4 seconds'
            AND interval '10 seconds'
        FROM monitoring.alert_outbox AS o
        WHERE o.id = :retry_id
    ),
    'after the base delay, of which a random half is jitter'
);
SELECT is(
    (
        SELECT n.last_error FROM monitoring.notifications AS n
        WHERE n.id = :retry_id
    ),
    'HTTP 500 from https://h.example',
    'with the error recorded'
);
SELECT is(
    monitoring.fail_notification(:retry_id, (SELECT c.claim_token FROM claim AS c), 'again'),
    NULL,
    'a claim is good for one outcome'
);
UPDATE monitoring.alert_outbox SET next_attempt_at = now()
WHERE id = :retry_id;
TRUNCATE claim;
INSERT INTO claim SELECT * FROM monitoring.claim_notifications(1, 60);
SELECT is((SELECT c.attempt FROM claim AS c), 2, 'the retry is the second attempt');
SELECT ok(
    (
        SELECT
            o.next_attempt_at - clock_timestamp() BETWEEN interval '55 seconds'
            AND interval '60 seconds'
        FROM monitoring.alert_outbox AS o
        WHERE o.id = :retry_id
    ),
    'claimed for the lease'
);
SELECT monitoring.fail_notification(
    :retry_id, (SELECT c.claim_token FROM claim AS c), 'HTTP 503', p_max_attempts => 3,
    p_retry_base_seconds => 10, p_retry_max_seconds => 15, p_retry_after_seconds => 3600
);
SELECT ok(
    (
        SELECT
            o.next_attempt_at - clock_timestamp() BETWEEN interval '14 seconds'
            AND interval '15 seconds'
        FROM monitoring.alert_outbox AS o
        WHERE o.id = :retry_id
    ),
    'Retry-After is honoured up to the longest delay'
);
UPDATE monitoring.alert_outbox SET next_attempt_at = now()
WHERE id = :retry_id;
TRUNCATE claim;
INSERT INTO claim SELECT * FROM monitoring.claim_notifications(1, 60);
SELECT is(
    monitoring.fail_notification(
        :retry_id, (SELECT c.claim_token FROM claim AS c), 'HTTP 500', p_max_attempts => 3
    ),
    'dead',
    'the last attempt failing dead-letters it'
);
SELECT throws_ok(
    format('SELECT monitoring.retry_notification(%s)', :test_id),
    '22023',
    format('notification %s is sent; only failed and dead ones can be retried', :test_id),
    'a sent notification is not sent again'
);
SELECT throws_ok(
    'SELECT monitoring.retry_notification(-1)', 'P0002', 'no notification with id -1',
    'retry_notification of an unknown id is no_data_found'
);
SELECT is(monitoring.retry_notification(:retry_id), 'pending', 'a dead letter can be retried');
SELECT results_eq(
    format(
        'SELECT n.status, n.attempts FROM monitoring.notifications AS n WHERE n.id = %s', :retry_id
    ),
    $$VALUES ('pending', 0)$$,
    'with its attempts counted afresh'
);

-- A worker that dies: its claims run out and come back; after the last attempt, dead.
TRUNCATE claim;
INSERT INTO claim SELECT * FROM monitoring.claim_notifications(1, 0.001, p_max_attempts => 2);
SELECT pg_catalog.pg_sleep(0.01);
SELECT is(
    (SELECT c.attempt FROM monitoring.claim_notifications(1, 0.001, p_max_attempts => 2) AS c),
    2,
    'a claim that ran out without an outcome is claimed again'
);
SELECT pg_catalog.pg_sleep(0.01);
SELECT is_empty(
    $$SELECT FROM monitoring.claim_notifications(1, 0.001, p_max_attempts => 2)$$,
    'not after the last attempt'
);
SELECT alike(
    (
        SELECT n.last_error FROM monitoring.notifications AS n
        WHERE n.id = :retry_id
    ),
    'no outcome recorded for attempt 2 of 2: the worker stopped or stalled while sending%',
    'it is dead, and says why'
);
SELECT ok(
    NOT monitoring.complete_notification(:retry_id, (SELECT c.claim_token FROM claim AS c)),
    'the first claim''s late outcome is not recorded'
);
SELECT throws_ok(
    'SELECT monitoring.claim_notifications(0)', '22023', 'p_limit must be 1 or more, not 0',
    'claim_notifications checks p_limit'
);

-- Retention keeps what is undelivered.
UPDATE monitoring.alert_outbox SET created_at = now() - interval '31 days';
SELECT monitoring.test_channel('hook');
SELECT is(monitoring.apply_alert_retention(), 2::bigint, 'old sent and dead notifications go');
SELECT is(
    (SELECT count(*) FROM monitoring.alert_outbox), 1::bigint, 'new and pending ones stay'
);

SELECT * FROM finish();
ROLLBACK;
