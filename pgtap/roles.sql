-- The three group roles and what each may do.
BEGIN;
SELECT plan(12);

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

SELECT * FROM finish();
ROLLBACK;
