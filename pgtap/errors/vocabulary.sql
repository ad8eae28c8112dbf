-- The statuses of an issue, defined once: the table refuses any other, the lifecycle
-- functions move between them, and readers may read them.
BEGIN;
SELECT plan(6);

SELECT is(
    monitoring.issue_statuses(), ARRAY['unresolved', 'resolved', 'ignored'],
    'the statuses of an issue, the first one first'
);

CREATE TEMPORARY TABLE vocabulary_issue AS
SELECT c.issue_id AS id FROM monitoring.capture_message('vocabulary', 'error') AS c;

SELECT is(
    (
        SELECT i.status FROM monitoring.issues AS i, vocabulary_issue AS v
        WHERE i.id = v.id
    ),
    (monitoring.issue_statuses())[1],
    'a new issue has the first status'
);

SELECT throws_ok(
    $$UPDATE monitoring.error_issues SET status = 'archived'$$,
    '23514', NULL,
    'the table refuses a status issue_statuses() does not list'
);

SELECT is(
    ARRAY[
        (SELECT r.status FROM vocabulary_issue AS v, monitoring.resolve_issue(v.id) AS r),
        (SELECT g.status FROM vocabulary_issue AS v, monitoring.ignore_issue(v.id) AS g),
        (SELECT o.status FROM vocabulary_issue AS v, monitoring.reopen_issue(v.id) AS o)
    ],
    ARRAY['resolved', 'ignored', 'unresolved'],
    'resolve_issue and ignore_issue take an issue in any status, reopen_issue brings it back'
);

SELECT is(
    pgtap_helpers.run_as('monitoring_reader', 'SELECT monitoring.issue_statuses()'), NULL,
    'a reader may read them'
);
SELECT is(
    pgtap_helpers.run_as('monitoring_writer', 'SELECT monitoring.issue_statuses()'), NULL,
    'a writer may too (the words, not an issue)'
);

SELECT * FROM finish();
ROLLBACK;
