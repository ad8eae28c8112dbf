-- Channels: what each kind takes, checked, secrets apart from config; adding one again.
BEGIN;
SELECT plan(26);

SELECT has_table('monitoring', 'alert_channels', 'channels are a table');

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

-- channel_split: the rule, not the client, says which fields are secrets
SELECT is(
    (
        SELECT row(s.config, s.secrets)::text FROM monitoring.channel_split(
            'webhook', '{"url": "https://h.example/x", "secret": "s", "bogus": 1}'
        ) AS s
    ),
    row('{"bogus": 1}'::jsonb, '{"url": "https://h.example/x", "secret": "s"}'::jsonb)::text,
    'channel_split puts secrets apart and leaves unknown fields to add_channel''s refusal'
);

-- channel_environment: FIELD_env values checked and converted like any value
SELECT is(
    monitoring.channel_environment(
        'email', '{"smtp_host": "h", "smtp_port_env": "PORT", "starttls_env": "TLS"}', '{}',
        '{"PORT": "2525", "TLS": "off"}'
    ),
    '{"smtp_host": "h", "smtp_port": 2525, "starttls": false}'::jsonb,
    'channel_environment converts variables as add_channel converts text'
);
SELECT throws_ok(
    $$SELECT monitoring.channel_environment('email', '{"starttls_env": "TLS"}', '{}',
        '{"TLS": "ture"}')$$,
    '22023',
    'environment variable TLS (the channel''s starttls_env) must be true or false, not "ture"',
    'a typo in a variable is refused, not read as false'
);
SELECT throws_ok(
    $$SELECT monitoring.channel_environment('webhook', '{"url_env": "URL"}', '{}',
        '{"URL": "s3cret"}')$$,
    '22023',
    'environment variable URL (the channel''s url_env) must be an http:// or https:// URL '
    '(a secret: its value is not shown)',
    'a secret''s bad value is not quoted'
);
SELECT throws_ok(
    $$SELECT monitoring.channel_environment('webhook', '{"url_env": "URL"}', '{}', '{}')$$,
    '22004',
    'environment variable URL (the channel''s url_env) is not set in the worker''s environment',
    'an unset variable for a required field is an error'
);
SELECT is(
    monitoring.channel_environment(
        'webhook', '{"url_env": "URL", "secret_env": "SECRET"}', '{}',
        '{"URL": "https://h.example/x"}'
    ),
    '{"url": "https://h.example/x"}'::jsonb,
    'an unset variable for an optional field is skipped'
);

SELECT * FROM finish();
ROLLBACK;
