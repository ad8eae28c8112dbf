-- The three group roles and what each may do.
BEGIN;
SELECT plan(46);

SELECT has_role('monitoring_reader');
SELECT has_role('monitoring_writer');
SELECT has_role('monitoring_admin');

SELECT is_empty(
    $$SELECT rolname FROM pg_catalog.pg_roles
      WHERE rolname LIKE 'monitoring\_%' AND (rolcanlogin OR rolsuper OR rolcreaterole)$$,
    'the monitoring_* roles can not log in and hold no special attributes'
);

SELECT is_member_of('monitoring_reader', 'monitoring_admin');
SELECT is_member_of('monitoring_writer', 'monitoring_admin');
SELECT ok(
    NOT pg_catalog.pg_has_role('monitoring_writer', 'monitoring_reader', 'MEMBER'),
    'a writer is not a reader'
);

SELECT schema_privs_are('monitoring', 'monitoring_writer', ARRAY['USAGE']);
SELECT schema_privs_are('monitoring', 'public', '{}'::text[]);

SELECT is(
    pgtap_helpers.run_as('monitoring_writer', 'SELECT * FROM monitoring.effective_settings'),
    '42501',
    'a writer can not read the settings'
);

SELECT is(
    pgtap_helpers.run_as(
        'monitoring_reader', $$SELECT monitoring.set_setting('any', '1'::jsonb)$$
    ),
    '42501',
    'a reader can not change a setting'
);

SELECT is(
    pgtap_helpers.run_as('monitoring_reader', 'SELECT * FROM monitoring.installed_versions'),
    NULL,
    'a reader can read what is installed'
);

-- Error tracking: a writer captures and reads nothing, a reader reads and changes nothing, an
-- admin triages.
CREATE TEMPORARY TABLE role_issue AS
SELECT c.issue_id
FROM monitoring.capture_error('RoleError', 'seed', p_service => 'roles') AS c;
GRANT SELECT ON role_issue TO monitoring_admin, monitoring_reader, monitoring_writer;

SELECT is(
    pgtap_helpers.run_as(
        'monitoring_writer', $$SELECT monitoring.capture_error('RoleError', 'from a writer')$$
    ),
    NULL,
    'a writer can capture_error'
);
SELECT is(
    pgtap_helpers.run_as(
        'monitoring_writer',
        $$SELECT monitoring.capture_error(NULL, NULL,
            E'Traceback (most recent call last):\n  File "/app/a.py", line 1, in f\n'
            || E'    g()\nKeyError: ''k''')$$
    ),
    NULL,
    'a writer can capture_error with a traceback as text'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', $$SELECT monitoring.capture_message('hello')$$),
    NULL,
    'a writer can capture_message'
);
SELECT is(
    pgtap_helpers.run_as(
        'monitoring_writer', $$SELECT monitoring.capture_event('{"message": "m"}'::jsonb)$$
    ),
    NULL,
    'a writer can capture_event(jsonb)'
);
SELECT is(
    pgtap_helpers.run_as(
        'monitoring_writer', $$SELECT monitoring.capture_event('{"message": "m"}'::text)$$
    ),
    NULL,
    'a writer can capture_event(text)'
);
SELECT is(
    pgtap_helpers.run_as(
        'monitoring_writer',
        $$SELECT * FROM monitoring.capture_events('[{"message": "m"}]'::jsonb)$$
    ),
    NULL,
    'a writer can capture_events(jsonb)'
);
SELECT is(
    pgtap_helpers.run_as(
        'monitoring_writer',
        $$SELECT * FROM monitoring.capture_events('[{"message": "m"}]'::text)$$
    ),
    NULL,
    'a writer can capture_events(text)'
);

SELECT
    is(
        pgtap_helpers.run_as('monitoring_writer', t.sql),
        '42501',
        'a writer can not read: ' || t.sql
    )
FROM (
    VALUES
    ('SELECT * FROM monitoring.errors'),
    ('SELECT * FROM monitoring.issues'),
    ('SELECT * FROM monitoring.issue_history'),
    ('SELECT * FROM monitoring.error_events'),
    ('SELECT * FROM monitoring.error_events_default'),
    ('SELECT * FROM monitoring.error_issues'),
    ('SELECT * FROM monitoring.error_issue_counts'),
    ('SELECT * FROM monitoring.error_issue_users'),
    ('SELECT * FROM monitoring.issue_activity'),
    ($$SELECT monitoring.issue_id('any')$$)
) AS t (sql);

SELECT is(
    pgtap_helpers.run_as(
        'monitoring_writer', 'SELECT monitoring.resolve_issue(issue_id) FROM role_issue'
    ),
    '42501',
    'a writer can not resolve an issue'
);

SELECT
    is(
        pgtap_helpers.run_as('monitoring_reader', t.sql),
        NULL,
        'a reader can read: ' || t.sql
    )
FROM (
    VALUES
    ('SELECT * FROM monitoring.errors'),
    ('SELECT * FROM monitoring.issues'),
    ('SELECT * FROM monitoring.issue_history')
) AS t (sql);
SELECT is(
    pgtap_helpers.run_as('monitoring_reader', 'SELECT * FROM monitoring.error_events'),
    '42501',
    'a reader reads the views, not the tables under them'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_reader', $$SELECT monitoring.capture_message('no')$$),
    '42501',
    'a reader can not capture'
);
SELECT is(
    pgtap_helpers.run_as(
        'monitoring_reader', 'SELECT monitoring.resolve_issue(issue_id) FROM role_issue'
    ),
    '42501',
    'a reader can not resolve an issue'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_reader', 'SELECT monitoring.run_maintenance()'),
    '42501',
    'a reader can not run maintenance'
);

SELECT
    is(
        pgtap_helpers.run_as('monitoring_admin', t.sql),
        NULL,
        'an admin can ' || t.what
    )
FROM (
    VALUES
    ('resolve an issue', 'SELECT monitoring.resolve_issue(issue_id) FROM role_issue'),
    ('ignore an issue', 'SELECT monitoring.ignore_issue(issue_id) FROM role_issue'),
    ('reopen an issue', 'SELECT monitoring.reopen_issue(issue_id) FROM role_issue'),
    (
        'assign an issue',
        $$SELECT monitoring.assign_issue(issue_id, 'oncall@example.com') FROM role_issue$$
    ),
    ('unassign an issue', 'SELECT monitoring.unassign_issue(issue_id) FROM role_issue'),
    ('run maintenance', 'SELECT monitoring.run_maintenance()')
) AS t (what, sql);

-- The scrub helpers granted to all three call the default key lists: those must be granted too.
SELECT
    is(
        pgtap_helpers.run_as(
            r.role,
            $$SELECT monitoring.scrub_key_pattern(), monitoring.scrub_key_likes(),
            monitoring.scrub_with('{"token": "x"}', monitoring.scrub_key_pattern(), NULL)$$
        ),
        NULL,
        r.role || ' can call scrub_key_pattern, scrub_key_likes and scrub_with'
    )
FROM (VALUES ('monitoring_reader'), ('monitoring_writer'), ('monitoring_admin')) AS r (role);

SELECT * FROM finish();
ROLLBACK;
