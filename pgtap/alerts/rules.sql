-- Rules: add_alert_rule's checks, and occurrence rules replaced, sorted and repeated.
BEGIN;
SELECT plan(8);

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

SELECT * FROM finish();
ROLLBACK;
