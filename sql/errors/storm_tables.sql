-- Storm protection (storm.sql): its settings, and the events it counted without storing them,
-- by minute, for "more than N events in M minutes" alert rules.
--
-- Defaults: 100 whole events of an issue per hour, then one in 100. An hour, as Sentry's
-- spike protection and its rate-limit windows think of a spike: one long storm is a handful
-- of windows, not thousands, and 100 events an hour with their contexts, users and
-- breadcrumbs are more than anyone reads of one issue. One in 100 keeps a trickle of recent
-- examples through the storm (a new release, another host) at 1% of its storage.
INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES
(
    'errors.storm_full_events', '100',
    'Events of one issue stored whole per window before the rest are sampled (counted exactly, '
    'stored one in errors.storm_keep_one_in)',
    1, 1000000
),
(
    'errors.storm_window_minutes', '60',
    'Length of the storm protection window, in minutes (windows are aligned to UTC midnight)',
    1, 1440
),
(
    'errors.storm_check_one_in', '8',
    'How often a capture of an issue not yet sampled in the window counts its stored events '
    '(one in this many, at random): the count reads up to errors.storm_full_events index '
    'entries; about this many more events are stored whole past the threshold',
    1, 1000
),
(
    'errors.storm_keep_one_in', '100',
    'Of an issue''s events past errors.storm_full_events in a window, one in this many is '
    'stored whole (by its event id); 1 stores every event',
    1, 1000000
);

-- Written by the fold only (one writer), one row per issue and minute.
CREATE TABLE monitoring.error_issue_sampled (
    issue_id bigint NOT NULL,
    minute timestamptz NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (issue_id, minute)
);

COMMENT ON TABLE monitoring.error_issue_sampled IS
'Events storm protection counted but did not store, per issue and minute (as of the last fold)';

SELECT monitoring._keep_rows_in_dump('monitoring.error_issue_sampled'::regclass);
