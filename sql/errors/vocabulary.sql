-- The words of error tracking, each defined once: the statuses of an issue. The table's
-- CHECK constraint calls this (so this file comes before tables.sql), the lifecycle
-- functions read it, and clients read it rather than spell it again. Replacing it does not
-- check the rows already stored (see sql/pg_monitoring.sql): a status taken away needs an
-- upgrade that deals with the issues in it.

-- unresolved (new issues, and every reopened one), resolved, ignored; what happened within
-- a status (regressed, escalating) is the substatus.
CREATE OR REPLACE FUNCTION monitoring.issue_statuses()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT ARRAY['unresolved', 'resolved', 'ignored'];
$$;

COMMENT ON FUNCTION monitoring.issue_statuses() IS
'The statuses of an issue: unresolved (the first), resolved, ignored';

-- Every role: a writer refused a list of issues is told about the view, not the words.
GRANT EXECUTE ON FUNCTION monitoring.issue_statuses()
TO monitoring_reader, monitoring_writer, monitoring_admin;
