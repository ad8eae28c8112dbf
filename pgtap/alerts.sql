-- Alerts: channels and their checks, rules, the outbox a firing rule writes in the capture's
-- transaction, and the claim / complete / fail / retry cycle the worker drives.
BEGIN;
SELECT plan(89);

-- An event of the issue with explicit fingerprint p_name in service alerts.
CREATE FUNCTION pg_temp.event(
    p_name text, p_level text DEFAULT 'error', p_environment text DEFAULT 'production'
)
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT c.issue_id
    FROM monitoring.capture_message(
        'alert test ' || p_name, p_level,
        p_service => 'alerts', p_environment => p_environment, p_fingerprint => ARRAY[p_name]
    ) AS c;
$$;

CREATE FUNCTION pg_temp.queued(p_channel text DEFAULT NULL)
RETURNS TABLE (channel text, condition text, issue_id bigint)
LANGUAGE sql
AS $$
    SELECT n.channel, n.condition, n.issue_id
    FROM monitoring.notifications AS n
    WHERE p_channel IS NULL OR n.channel = p_channel
    ORDER BY n.id;
$$;

SELECT has_table('monitoring', 'alert_channels', 'channels are a table');
SELECT has_table('monitoring', 'alert_outbox', 'the outbox is a table');
SELECT has_trigger(
    'monitoring', 'issue_activity', 'alert_on_activity', 'fact rules fire from issue_activity'
);
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

-- Channels: what each kind takes, secrets apart.
SELECT
    throws_ok(
        format(
            'SELECT monitoring.add_channel(%L, %L, %L, %L)', t.name, t.kind, t.config, t.secrets
        ),
        '22023',
        t.message,
        'add_channel refuses ' || t.what
    )
FROM (
    VALUES
    (
        'a kind it does not know', 'x', 'sms', '{}', '{}',
        'p_kind must be one of email, slack, webhook, pagerduty; not ''sms'''
    ),
    (
        'a secret in config', 'x', 'slack', '{"webhook_url": "https://h.example/x"}', '{}',
        'p_config.webhook_url is a secret: pass it in p_secrets, or name an environment '
        || 'variable with p_config.webhook_url_env'
    ),
    (
        'a channel without its required fields', 'x', 'webhook', '{}', '{}',
        'a webhook channel needs p_secrets.url or p_config.url_env'
    ),
    (
        'a field it does not know', 'x', 'slack', '{"channel": "#ops"}',
        '{"webhook_url": "https://h.example/x"}',
        'p_config.channel is not a setting of a slack channel (it takes webhook_url, or any '
        || 'of them as NAME_env)'
    ),
    (
        'an unknown secret', 'x', 'slack', '{}', '{"token": "t"}',
        'p_secrets.token is not a secret of a slack channel (its secrets: webhook_url)'
    ),
    (
        'a field given twice', 'x', 'slack', '{"webhook_url_env": "SLACK"}',
        '{"webhook_url": "https://h.example/x"}',
        'webhook_url is given twice: as a value and as p_config.webhook_url_env'
    ),
    (
        'an environment variable name that is none', 'x', 'slack',
        '{"webhook_url_env": "no such; var"}', '{}',
        'p_config.webhook_url_env must name an environment variable, not "no such; var"'
    ),
    (
        'a URL that is none', 'x', 'webhook', '{}', '{"url": "ftp://h.example/x"}',
        'p_secrets.url must be an http:// or https:// URL, not "ftp://h.example/x"'
    ),
    (
        'a port that is none', 'x', 'email',
        '{"smtp_host": "h", "smtp_port": 70000, "from_email": "a@b.c", "to_emails": ["d@e.f"]}',
        '{}', 'p_config.smtp_port must be a port number (1-65535), not 70000'
    ),
    (
        'an address with a line break', 'x', 'email',
        '{"smtp_host": "h", "from_email": "a@b.c", "to_emails": ["d@e.f\nBcc: x@y.z"]}',
        '{}', 'p_config.to_emails must be a list of email addresses, not ["d@e.f\nBcc: x@y.z"]'
    )
) AS t (what, name, kind, config, secrets, message);

SELECT throws_ok(
    $$SELECT monitoring.add_channel(' ', 'slack')$$,
    '22004',
    'p_name must not be empty',
    'a channel needs a name'
);

SELECT ok(
    monitoring.add_channel(
        'mail', 'email',
        '{"smtp_host": "smtp.example.com", "smtp_port": "2525", "from_email": "a@example.com",
          "to_emails": "b@example.com, c@example.com", "starttls": "no"}',
        '{"smtp_password": "hunter2"}'
    ) > 0,
    'an email channel from command-line text'
);
SELECT is(
    (
        SELECT c.config FROM monitoring.notification_channels AS c
        WHERE c.name = 'mail'
    ),
    '{"smtp_host": "smtp.example.com", "smtp_port": 2525, "from_email": "a@example.com",
      "to_emails": ["b@example.com", "c@example.com"], "starttls": false}'::jsonb,
    'text becomes the JSON each field takes'
);
SELECT is(
    (
        SELECT c.secret_fields FROM monitoring.notification_channels AS c
        WHERE c.name = 'mail'
    ),
    ARRAY['smtp_password'],
    'the reader view names the secrets and shows none'
);
SELECT results_eq(
    $$SELECT r.condition, r.action_interval FROM monitoring.notification_rules AS r
      WHERE r.channel = 'mail' ORDER BY r.id$$,
    $$VALUES ('new_issue', interval '30 minutes'), ('regression', interval '30 minutes')$$,
    'a new channel alerts on new issues and regressions, once per issue per 30 minutes'
);
SELECT is(
    monitoring.add_channel(
        'mail', 'email',
        '{"smtp_host": "smtp2.example.com", "from_email": "a@example.com",
          "to_emails": ["b@example.com"]}'
    ),
    (
        SELECT c.id FROM monitoring.alert_channels AS c
        WHERE c.name = 'mail'
    ),
    'adding a channel of the same name updates it'
);
SELECT is(
    (
        SELECT c.config ->> 'smtp_host' FROM monitoring.alert_channels AS c
        WHERE c.name = 'mail'
    ),
    'smtp2.example.com',
    'with the new settings'
);
SELECT is(
    (
        SELECT count(*) FROM monitoring.notification_rules AS r
        WHERE r.channel = 'mail'
    ),
    2::bigint,
    'and no second set of default rules'
);
SELECT monitoring.add_channel(
    'mail', 'email', '{"smtp_host": "h3", "from_email": "a@b.c", "to_emails": ["d@e.f"]}',
    p_replace => FALSE
);
SELECT is(
    (
        SELECT c.config ->> 'smtp_host' FROM monitoring.alert_channels AS c
        WHERE c.name = 'mail'
    ),
    'smtp2.example.com',
    'p_replace => false keeps the channel there is'
);
SELECT monitoring.remove_channel('mail');

-- Rules.
SELECT
    throws_ok(
        t.sql,
        t.state,
        t.message,
        'add_alert_rule refuses ' || t.what
    )
FROM (
    VALUES
    (
        'an unknown condition', $$SELECT monitoring.add_alert_rule('sometimes')$$, '22023',
        'p_condition must be one of new_issue, regression, escalating, occurrences, '
        || 'event_frequency, user_frequency; not ''sometimes'''
    ),
    (
        'a frequency rule without its window',
        $$SELECT monitoring.add_alert_rule('event_frequency', p_threshold => 10)$$, '22023',
        'a event_frequency rule needs a positive p_window of at most 100 years, not NULL'
    ),
    (
        'a threshold on a fact rule',
        $$SELECT monitoring.add_alert_rule('new_issue', p_threshold => 10)$$, '22023',
        'p_threshold and p_window belong to event_frequency and user_frequency rules, not '
        || 'new_issue'
    ),
    (
        'occurrence counts below 1',
        $$SELECT monitoring.add_alert_rule('occurrences', p_occurrences => '{0, 5}')$$, '22023',
        'p_occurrences must be counts of 1 or more, not {0,5}'
    ),
    (
        'a channel that does not exist',
        $$SELECT monitoring.add_alert_rule('new_issue', p_channel => 'nowhere')$$, 'P0002',
        'no channel named ''nowhere'''
    )
) AS t (what, sql, state, message);

SELECT is(
    monitoring.set_occurrence_alerts('limited', '{300, 1, 100, 200}'),
    monitoring.set_occurrence_alerts('limited', '{1, 10}', 0),
    'setting a fingerprint''s occurrence alerts again replaces its rule'
);
SELECT results_eq(
    $$SELECT r.occurrences, r.repeat_every FROM monitoring.notification_rules AS r
      WHERE r.fingerprint = 'limited'$$,
    $$VALUES ('{1,10}'::bigint[], 0::bigint)$$,
    'with the counts of the last call'
);
SELECT monitoring.set_occurrence_alerts('inferred', '{300, 1, 100, 200}') AS inferred_id \gset
SELECT results_eq(
    format(
        'SELECT r.occurrences, r.repeat_every FROM monitoring.alert_rules AS r WHERE r.id = %s',
        :inferred_id
    ),
    $$VALUES ('{1,100,200,300}'::bigint[], 100::bigint)$$,
    'counts are sorted, and the last step repeats: the 1st and every 100th'
);
DELETE FROM monitoring.alert_rules;

SELECT
    is(
        (
            SELECT row(c.thresholds, c.crossed)::text
            FROM monitoring._occurrences_crossed('{1,100,200,300}', 100, t.before, t.after) AS c
        ),
        t.expected,
        format('thresholds crossed from %s to %s events', t.before, t.after)
    )
FROM (
    VALUES
    (0, 1, '({1},1)'),
    (1, 99, '({},0)'),
    (1, 100, '({100},1)'),
    (99, 250, '("{100,200}",2)'),
    (300, 399, '({},0)'),
    (250, 520, '("{300,400,500}",3)'),
    (0, 5000, '({5000},51)')
) AS t (before, after, expected);

-- Fact rules fire in the capture's transaction; the default action interval holds back a
-- second regression.
SELECT monitoring.add_channel('hook', 'webhook', p_secrets => '{"url": "https://h.example/a"}');
SELECT monitoring.add_channel(
    'errors-only', 'webhook', p_secrets => '{"url": "https://h.example/b"}',
    p_min_level => 'error', p_environments => ARRAY['production']
);
SELECT pg_temp.event('first');
SELECT pg_temp.event('first');
SELECT pg_temp.event('quiet', 'warning');
SELECT pg_temp.event('elsewhere', 'fatal', 'staging');
SELECT results_eq(
    $$SELECT * FROM pg_temp.queued()$$,
    $$VALUES
        ('hook', 'new_issue', monitoring.issue_id('first', 'production', 'alerts')),
        ('errors-only', 'new_issue', monitoring.issue_id('first', 'production', 'alerts')),
        ('hook', 'new_issue', monitoring.issue_id('quiet', 'production', 'alerts')),
        ('hook', 'new_issue', monitoring.issue_id('elsewhere', 'staging', 'alerts'))$$,
    'a new issue alerts each channel whose filters let it through, once'
);
SELECT is(
    (
        SELECT n.payload - 'first_seen' - 'event_id' - 'fingerprint' - 'rule_id'
        FROM monitoring.notifications AS n
        ORDER BY n.id
        LIMIT 1
    ),
    jsonb_build_object(
        'condition', 'new_issue',
        'issue_id', monitoring.issue_id('first', 'production', 'alerts'),
        'title', 'alert test first',
        'level', 'error',
        'service', 'alerts',
        'environment', 'production',
        'status', 'unresolved',
        'times_seen', 1,
        'summary', 'New issue in alerts/production: alert test first'
    ),
    'the payload holds what a sender renders, and a link-free summary'
);
SELECT ok(
    (
        SELECT pg_catalog.bool_and(n.status = 'pending' AND n.attempts = 0)
        FROM monitoring.notifications AS n
    ),
    'queued notifications are pending, never tried'
);

SELECT monitoring.resolve_issue(monitoring.issue_id('first', 'production', 'alerts'));
SELECT pg_temp.event('first');
SELECT monitoring.resolve_issue(monitoring.issue_id('first', 'production', 'alerts'));
SELECT pg_temp.event('first');
SELECT is(
    (
        SELECT count(*) FROM pg_temp.queued('hook') AS q
        WHERE q.condition = 'regression'
    ),
    1::bigint,
    'two regressions within the action interval alert once'
);

SELECT monitoring.add_alert_rule('regression', p_channel => 'hook', p_action_interval => '0');
SELECT monitoring.resolve_issue(monitoring.issue_id('first', 'production', 'alerts'));
SELECT pg_temp.event('first');
SELECT is(
    (
        SELECT count(*) FROM pg_temp.queued('hook') AS q
        WHERE q.condition = 'regression'
    ),
    2::bigint,
    'a rule without an action interval alerts every time'
);

SELECT monitoring.add_alert_rule('escalating', p_channel => 'hook');
SELECT monitoring.ignore_issue(monitoring.issue_id('quiet', 'production', 'alerts'));
SELECT pg_temp.event('quiet', 'warning');
SELECT is(
    (
        SELECT count(*) FROM pg_temp.queued() AS q
        WHERE q.condition = 'escalating'
    ),
    0::bigint,
    'an issue ignored forever stays quiet'
);
SELECT monitoring.ignore_issue(
    monitoring.issue_id('quiet', 'production', 'alerts'), p_until_events => 1
);
SELECT pg_temp.event('quiet', 'warning');
SELECT results_eq(
    $$SELECT q.channel, q.condition FROM pg_temp.queued() AS q WHERE q.condition = 'escalating'$$,
    $$VALUES ('hook', 'escalating')$$,
    'an ignored issue whose condition is met escalates, and alerts'
);

-- An ignore that ran out of time without events, ended by maintenance.
SELECT monitoring.ignore_issue(
    monitoring.issue_id('elsewhere', 'staging', 'alerts'), p_until => now() + interval '1 hour'
);
UPDATE monitoring.error_groups SET ignore_until = now() - interval '1 second'
WHERE id = monitoring.issue_id('elsewhere', 'staging', 'alerts');
SELECT monitoring.expire_ignores();
SELECT is(
    (
        SELECT n.payload ->> 'reason' FROM monitoring.notifications AS n
        WHERE n.condition = 'escalating' AND n.issue_id = monitoring.issue_id('elsewhere')
    ),
    'ignore period ended',
    'an ignore period that ends is an ignore condition met too'
);

-- Threshold rules fire at the fold, once per threshold, never for ignored issues.
SELECT monitoring.set_occurrence_alerts('counted', '{2, 4}', 0);
SELECT pg_temp.event('counted') FROM pg_catalog.generate_series(1, 3);
SELECT is(
    (
        SELECT count(*) FROM pg_temp.queued() AS q
        WHERE q.issue_id = monitoring.issue_id('counted')
    ),
    0::bigint,
    'a fingerprint''s own rules replace the defaults, and nothing fires before the fold'
);
SELECT monitoring.fold_error_counts();
SELECT pg_temp.event('counted');
SELECT monitoring.fold_error_counts();
SELECT monitoring.fold_error_counts();
SELECT results_eq(
    $$SELECT (n.payload ->> 'threshold')::integer FROM monitoring.notifications AS n
      WHERE n.issue_id = monitoring.issue_id('counted') AND n.channel = 'hook' ORDER BY n.id$$,
    $$VALUES (2), (4)$$,
    'each threshold fires once, in the fold that crosses it'
);
SELECT monitoring.ignore_issue(monitoring.issue_id('counted'));
SELECT monitoring.set_occurrence_alerts('counted', '{5}', 0);
SELECT pg_temp.event('counted');
SELECT monitoring.fold_error_counts();
SELECT is(
    (
        SELECT count(*) FROM pg_temp.queued() AS q
        WHERE q.issue_id = monitoring.issue_id('counted')
    ),
    4::bigint,
    'an ignored issue crossing a threshold does not alert'
);

-- A paused channel gets nothing new and keeps what it has queued.
SELECT monitoring.set_channel_enabled('errors-only', FALSE);
SELECT pg_temp.event('while paused');
SELECT is(
    (
        SELECT count(*) FROM pg_temp.queued('errors-only') AS q
        WHERE q.issue_id = monitoring.issue_id('while paused')
    ),
    0::bigint,
    'a paused channel gets no new alerts'
);
SELECT is_empty(
    $$SELECT FROM monitoring.claim_notifications(100) AS c WHERE c.channel_name = 'errors-only'$$,
    'and its queued notifications are not claimed'
);
SELECT monitoring.set_channel_enabled('errors-only', TRUE);

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

-- Roles.
SELECT is(pgtap_helpers.run_as(t.role, t.sql), t.state, t.role || ': ' || t.sql)
FROM (
    VALUES
    ('monitoring_writer', 'SELECT * FROM monitoring.alert_channels', '42501'),
    ('monitoring_writer', 'SELECT * FROM monitoring.notification_channels', '42501'),
    ('monitoring_writer', 'SELECT * FROM monitoring.notifications', '42501'),
    ('monitoring_writer', $$SELECT monitoring.test_channel('hook')$$, '42501'),
    ('monitoring_reader', 'SELECT secrets FROM monitoring.alert_channels', '42501'),
    ('monitoring_reader', 'SELECT * FROM monitoring.notification_channels', NULL),
    ('monitoring_reader', 'SELECT * FROM monitoring.notification_rules', NULL),
    ('monitoring_reader', 'SELECT * FROM monitoring.notifications', NULL),
    ('monitoring_reader', 'SELECT * FROM monitoring.claim_notifications()', '42501'),
    ('monitoring_admin', 'SELECT secrets FROM monitoring.alert_channels', NULL),
    ('monitoring_admin', 'SELECT * FROM monitoring.claim_notifications()', NULL),
    ('monitoring_admin', 'SELECT monitoring.fold_counts()', NULL)
) AS t (role, sql, state);

SELECT * FROM finish();
ROLLBACK;
