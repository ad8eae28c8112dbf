-- The errors' tables are named for the concepts the views and functions speak of: an issue
-- is stored in error_issues, and whatever names one says issue_id (README, Glossary).
BEGIN;
SELECT plan(7);

SELECT has_table('monitoring', 'error_issues', 'issues are stored in error_issues');
SELECT has_table(
    'monitoring', 'error_issue_counts', 'their counts not folded yet in error_issue_counts'
);
SELECT has_table('monitoring', 'error_issue_users', 'their users in error_issue_users');

SELECT is_empty(
    $$SELECT c.relname FROM pg_catalog.pg_class AS c
      WHERE c.relnamespace = 'monitoring'::regnamespace AND c.relname LIKE '%group%'$$,
    'no table, index, sequence or view says group for an issue'
);

SELECT is_empty(
    $$SELECT c.conname FROM pg_catalog.pg_constraint AS c
      WHERE c.connamespace = 'monitoring'::regnamespace AND c.conname LIKE '%group%'$$,
    'no constraint says group'
);

SELECT is_empty(
    $$SELECT a.attrelid::regclass, a.attname FROM pg_catalog.pg_attribute AS a
      INNER JOIN pg_catalog.pg_class AS c ON a.attrelid = c.oid
      WHERE c.relnamespace = 'monitoring'::regnamespace AND a.attname LIKE '%group%'
        AND NOT a.attisdropped$$,
    'no column says group'
);

SELECT results_eq(
    $$SELECT a.attrelid::regclass::text FROM pg_catalog.pg_attribute AS a
      INNER JOIN pg_catalog.pg_class AS c ON a.attrelid = c.oid
      WHERE c.relnamespace = 'monitoring'::regnamespace AND c.relkind IN ('r', 'p')
        AND NOT c.relispartition
        AND a.attname = 'issue_id' AND NOT a.attisdropped
      ORDER BY 1$$,
    $$VALUES ('monitoring.alert_outbox'), ('monitoring.alert_rule_state'),
        ('monitoring.error_events'), ('monitoring.error_issue_counts'),
        ('monitoring.error_issue_regressions'), ('monitoring.error_issue_sampled'),
        ('monitoring.error_issue_users'), ('monitoring.issue_activity')$$,
    'the tables that name an issue call it issue_id'
);

SELECT * FROM finish();
ROLLBACK;
