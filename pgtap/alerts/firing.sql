-- Firing: fact rules in the capture's transaction, threshold rules at the fold, and what
-- holds an alert back (filters, the action interval, ignored issues, a paused channel).
BEGIN;
SELECT plan(23);

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

SELECT has_trigger(
    'monitoring', 'issue_activity', 'alert_on_activity', 'fact rules fire from issue_activity'
);


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
UPDATE monitoring.error_issues SET ignore_until = now() - interval '1 second'
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

-- A frequency rule counts the events storm protection did not store: 8 events, 2 stored,
-- fire "more than 5 in an hour".
SELECT monitoring.set_setting('errors.storm_full_events', '2');
SELECT monitoring.set_setting('errors.storm_check_one_in', '1');
SELECT monitoring.set_setting('errors.storm_keep_one_in', '1000000');
SELECT monitoring.add_alert_rule(
    'event_frequency', 'hook', p_threshold => 5, p_window => '1 hour',
    p_service => 'alerts-storm'
);
SELECT monitoring.capture_message('flood', 'error', p_service => 'alerts-storm')
FROM pg_catalog.generate_series(1, 8);
SELECT monitoring.fold_error_counts();
SELECT is(
    (
        SELECT row(i.times_seen, i.events_sampled_out)::text FROM monitoring.issues AS i
        WHERE i.service = 'alerts-storm'
    ),
    '(8,6)',
    'a storm: 8 events counted, 6 of them not stored'
);
SELECT is(
    (
        SELECT count(*) FROM monitoring.notifications AS n
        INNER JOIN monitoring.error_issues AS g ON n.issue_id = g.id
        WHERE g.service = 'alerts-storm' AND n.condition = 'event_frequency'
    ),
    1::bigint,
    'a frequency rule counts the events not stored, and fires'
);

SELECT * FROM finish();
ROLLBACK;
