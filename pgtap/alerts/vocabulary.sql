-- The words of alerting, each defined once: channel_fields is the rule add_channel applies,
-- the tables refuse any other kind, condition, status or level, and readers may read them.
BEGIN;
SELECT plan(20);

SELECT is(
    monitoring.channel_kinds(), ARRAY['email', 'slack', 'webhook', 'pagerduty'],
    'the kinds of channel, as channel_fields lists them'
);
SELECT results_eq(
    $$SELECT f.field, f.value_type, f.required, f.secret FROM monitoring.channel_fields() AS f
      WHERE f.kind = 'webhook'$$,
    $$VALUES ('url', 'url', TRUE, TRUE), ('secret', 'text', FALSE, TRUE)$$,
    'channel_fields: each field''s value type, whether it is required, whether it is a secret'
);
SELECT is(
    monitoring.alert_conditions(),
    ARRAY[
        'new_issue', 'regression', 'escalating', 'occurrences', 'event_frequency',
        'user_frequency'
    ],
    'the conditions a rule fires on'
);
SELECT is(
    monitoring.notification_statuses(), ARRAY['pending', 'sending', 'sent', 'failed', 'dead'],
    'the statuses of a notification'
);

-- channel_fields is what add_channel checks: a channel with every required field (a value of
-- each type, secrets in p_secrets) is added, and without any one of them it is refused.
CREATE TEMPORARY TABLE sample (value_type text PRIMARY KEY, value jsonb);
INSERT INTO sample VALUES
('text', '"x"'), ('port', '25'), ('email', '"a@example.com"'),
('emails', '["b@example.com"]'), ('url', '"https://h.example/"'), ('boolean', 'true');
CREATE FUNCTION pg_temp.add(p_kind text, p_without text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM monitoring.add_channel(
        'vocabulary ' || p_kind, p_kind,
        coalesce((
            SELECT jsonb_object_agg(f.field, s.value)
            FROM monitoring.channel_fields() AS f INNER JOIN sample AS s USING (value_type)
            WHERE f.kind = p_kind AND f.required AND NOT f.secret
                AND f.field IS DISTINCT FROM p_without
        ), '{}'),
        coalesce((
            SELECT jsonb_object_agg(f.field, s.value)
            FROM monitoring.channel_fields() AS f INNER JOIN sample AS s USING (value_type)
            WHERE f.kind = p_kind AND f.required AND f.secret
                AND f.field IS DISTINCT FROM p_without
        ), '{}')
    );
    RETURN NULL;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN SQLERRM;
END
$$;
SELECT is_empty(
    $$SELECT k FROM unnest(monitoring.channel_kinds()) AS k WHERE pg_temp.add(k) IS NOT NULL$$,
    'a channel of each kind with its required fields is added'
);
SELECT is_empty(
    $$SELECT f.kind, f.field FROM monitoring.channel_fields() AS f
      WHERE f.required
        AND pg_temp.add(f.kind, f.field) IS DISTINCT FROM format(
            'a %s channel needs %s%s or p_config.%s_env', f.kind,
            CASE WHEN f.secret THEN 'p_secrets.' ELSE 'p_config.' END, f.field, f.field
        )$$,
    'and without any one required field it is refused, naming the field'
);

-- channel_value converts as add_channel does, for values clients read from elsewhere.
SELECT is(
    monitoring.channel_value('email', 'smtp_port', '"587"'), '587'::jsonb,
    'channel_value converts text to the JSON a field takes'
);
SELECT is(
    monitoring.channel_value('email', 'starttls', '" no "'), 'false'::jsonb,
    'a boolean as add_channel reads it'
);
SELECT throws_ok(
    $$SELECT monitoring.channel_value('email', 'starttls', '"ture"', 'PG_MONITORING_STARTTLS')$$,
    '22023', 'PG_MONITORING_STARTTLS must be true or false, not "ture"',
    'a typo is refused, naming the value as the caller knows it'
);
SELECT throws_ok(
    $$SELECT monitoring.channel_value('slack', 'channel', '"#ops"')$$,
    '22023', '''channel'' is not a field of a ''slack'' channel',
    'channel_value names a field the kind does not take'
);

-- The tables refuse words from nowhere else, whoever writes them.
SELECT monitoring.add_channel('hook', 'webhook', p_secrets => '{"url": "https://h.example/a"}');
SELECT throws_ok(t.sql, '23514', NULL, t.what)
FROM (
    VALUES
    (
        $$INSERT INTO monitoring.alert_channels (name, kind) VALUES ('x', 'sms')$$,
        'a channel of a kind channel_fields does not list is refused'
    ),
    (
        $$INSERT INTO monitoring.alert_channels (name, kind, min_level)
          VALUES ('x', 'slack', 'loud')$$,
        'a min_level that is no level is refused'
    ),
    (
        $$INSERT INTO monitoring.alert_rules (condition) VALUES ('sometimes')$$,
        'a rule of no known condition is refused'
    ),
    (
        $$INSERT INTO monitoring.alert_outbox (channel_id, condition, payload, status)
          SELECT c.id, 'test', '{}', 'lost' FROM monitoring.alert_channels AS c
          WHERE c.name = 'hook'$$,
        'a notification of no known status is refused'
    )
) AS t (sql, what);

SELECT is(pgtap_helpers.run_as(t.role, t.sql), t.state, t.role || ': ' || t.sql)
FROM (
    VALUES
    ('monitoring_reader', 'SELECT * FROM monitoring.channel_fields()', NULL),
    ('monitoring_reader', 'SELECT monitoring.channel_kinds()', NULL),
    ('monitoring_reader', $$SELECT monitoring.channel_value('slack', 'url', '"x"')$$, '22023'),
    ('monitoring_admin', $$SELECT monitoring.channel_value('email', 'ssl', '"on"')$$, NULL),
    ('monitoring_admin', 'SELECT monitoring.notification_statuses()', NULL),
    ('monitoring_writer', 'SELECT * FROM monitoring.channel_fields()', '42501')
) AS t (role, sql, state);

SELECT * FROM finish();
ROLLBACK;
