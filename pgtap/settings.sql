-- Settings: defaults from definitions, overrides by admins, type checks.
BEGIN;
SELECT plan(14);

INSERT INTO monitoring.setting_definitions (name, default_value, description)
VALUES
('test.days', '90', 'a number setting'),
('test.keys', '["a", "b"]', 'an array setting');

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

SELECT * FROM finish();
ROLLBACK;
