-- Who reads what: channels' secrets for monitoring_admin only, the views for readers, the
-- worker's functions for monitoring_admin.
BEGIN;
SELECT plan(12);

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
