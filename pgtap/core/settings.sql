-- Settings: defaults from definitions, overrides by admins, type and range checks.
BEGIN;
SELECT plan(27);

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
)
VALUES
('test.days', '90', 'a number setting', 1, 3650),
('test.keys', '["a", "b"]', 'an array setting', 0, 3);

SELECT is(monitoring.get_setting('test.days'), '90'::jsonb, 'get_setting gives the default');

SELECT throws_ok(
    $$SELECT monitoring.get_setting('test.nope')$$,
    '22023',
    $$unknown setting: 'test.nope'$$,
    'an unknown name is an invalid_parameter_value naming it'
);

SELECT is(
    pgtap_helpers.run_as('monitoring_admin', $$SELECT monitoring.set_setting('test.days', '7')$$),
    NULL,
    'an admin may override a setting'
);
SELECT is(monitoring.get_setting('test.days'), '7'::jsonb, 'get_setting gives the override');
SELECT is(
    (SELECT value -> 'test.days' FROM monitoring.settings_snapshot),
    '7'::jsonb,
    'the snapshot capture reads follows an override'
);

SELECT results_eq(
    $$SELECT value, is_default FROM monitoring.effective_settings WHERE name LIKE 'test.%'
      ORDER BY name$$,
    $$VALUES ('7'::jsonb, FALSE), ('["a", "b"]'::jsonb, TRUE)$$,
    'effective_settings shows the value in force and whether it is the default'
);

SELECT is(
    (
        SELECT updated_by FROM monitoring.settings
        WHERE name = 'test.days'
    ),
    session_user,
    'the override records who made it'
);

SELECT throws_ok(
    $$SELECT monitoring.set_setting('test.days', '"seven"')$$,
    '22023',
    'setting test.days takes a number value, not string',
    'a value of the wrong JSON type is refused'
);

SELECT throws_ok(
    $$SELECT monitoring.set_setting('test.days', NULL)$$,
    '22004',
    NULL,
    'NULL is refused'
);

SELECT throws_ok(
    $$SELECT monitoring.set_setting('test.days', 'null')$$,
    '22004',
    NULL,
    'JSON null is refused'
);

SELECT throws_ok(
    $$SELECT monitoring.set_setting('test.nope', '1')$$,
    '22023',
    NULL,
    'an unknown name can not be set'
);

SELECT is(monitoring.reset_setting('test.days'), '90'::jsonb, 'reset_setting returns the default');
SELECT is(
    (SELECT value -> 'test.days' FROM monitoring.settings_snapshot),
    '90'::jsonb,
    'the snapshot follows a reset'
);
SELECT is_empty(
    $$SELECT FROM monitoring.settings WHERE name = 'test.days'$$,
    'reset_setting removes the override'
);

-- Every setting has a range, checked when set: a value that would break capture or
-- maintenance (retention of 100,000,000 days made every capture fail) is refused by name.
SELECT is_empty(
    $$SELECT d.name FROM monitoring.setting_definitions AS d
      WHERE d.name NOT LIKE 'test.%'
        AND monitoring._setting_problem(d.name, d.default_value) IS NOT NULL$$,
    'every default is in its range'
);
SELECT is_empty(
    $$SELECT d.name FROM monitoring.setting_definitions AS d
      WHERE jsonb_typeof(d.default_value) <> 'boolean' AND d.max_value IS NULL$$,
    'every setting of ours declares its range'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.retention_days', '100000000')$$,
    '22023',
    'setting errors.retention_days must be a whole number from 1 to 36500, not 100000000',
    'a number out of its range is refused, saying the range'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.max_frames', '2.5')$$,
    '22023',
    'setting errors.max_frames must be a whole number from 1 to 1000, not 2.5',
    'a fraction is refused where a whole number belongs'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.max_context_bytes', '0')$$,
    '22023', NULL,
    'so is zero where it can not work'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.default_environment', to_jsonb(repeat('e', 201)))$$,
    '22023',
    'setting errors.default_environment must be text of 1 to 200 characters on one line, not "'
    || repeat('e', 99) || '... [truncated: 103 more characters]',
    'text too long for the issue index is refused, quoting the start of it'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.default_service', to_jsonb(E'two\nlines'::text))$$,
    '22023', NULL,
    'and text over two lines'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('errors.default_service', '""')$$,
    '22023', NULL,
    'and empty text'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('scrub.extra_keys', '["ok", 3]')$$,
    '22023', NULL,
    'a list of names holds only strings'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('scrub.safe_keys', '[""]')$$,
    '22023', NULL,
    'and no empty one'
);
SELECT throws_ok(
    $$SELECT monitoring.set_setting('test.keys', '["a", "b", "c", "d"]')$$,
    '22023', NULL,
    'and no more than its maximum'
);
SELECT lives_ok(
    $$SELECT monitoring.set_setting('errors.retention_days', '36500'),
        monitoring.set_setting('errors.max_message_length', '256'),
        monitoring.set_setting('scrub.extra_keys', '["sessionid", "x-auth"]'),
        monitoring.set_setting('errors.default_environment', '"staging"')$$,
    'values in range are taken, the limits included'
);
SELECT is(
    (monitoring.capture_message('after the limits changed')).issue_id IS NOT NULL,
    TRUE,
    'and capture works with them'
);

SELECT * FROM finish();
ROLLBACK;
