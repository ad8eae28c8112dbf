-- Alerts: channels (where alerts go), rules (when they fire) and a transactional outbox that
-- the delivery worker (`pg-monitoring worker`) drains. Whether to alert is decided here; the
-- worker only renders and sends.
--
-- Fact rules (new issue, regression, escalating) fire from a trigger on issue_activity, in
-- the transaction of the event that caused the fact: capture records each such fact exactly
-- once however many writers race (one first_seen per issue, one regression per resolve).
-- Threshold rules (occurrence counts, events or users in a window) fire where counting is
-- already serial: fold_error_counts folds each buffered event exactly once, with its issue's
-- row locked, and compares the counts before and after. So they fire at the next fold
-- (run_maintenance, or the worker's fold_counts every few seconds), never per event: a
-- per-event check would either race or make every writer of an error storm update one row.
--
-- A firing rule inserts one outbox row per channel and NOTIFYs pg_monitoring_alerts with the
-- row's id. NOTIFY is only a wake-up (a worker that is not listening never gets it); the rows
-- are the truth, claimed with FOR UPDATE SKIP LOCKED under a lease, so several workers can
-- run and the claims of a worker that died come back when their lease runs out.

CREATE OR REPLACE FUNCTION monitoring._alert_summary(
    p_condition text, p_issue monitoring.error_issues, p_facts jsonb
)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT
        CASE p_condition
            WHEN 'new_issue' THEN 'New issue'
            WHEN 'regression' THEN 'Regression'
            WHEN 'escalating' THEN 'Escalating ('
                || coalesce(p_facts ->> 'reason', 'ignore condition met') || ')'
            WHEN 'occurrences' THEN CASE p_facts ->> 'threshold'
                WHEN '1' THEN 'First event'
                ELSE 'Reached ' || (p_facts ->> 'threshold') || ' events'
            END
            WHEN 'event_frequency' THEN 'More than ' || (p_facts ->> 'threshold')
                || ' events in ' || (p_facts ->> 'window_minutes') || ' minutes'
            WHEN 'user_frequency' THEN 'More than ' || (p_facts ->> 'threshold')
                || ' users in ' || (p_facts ->> 'window_minutes') || ' minutes'
        END
        || ' in ' || p_issue.service || '/' || p_issue.environment || ': ' || p_issue.title;
$$;

-- What the worker needs to render an alert without reading anything else: a link-free
-- summary line and the issue's fields as of the firing.
CREATE OR REPLACE FUNCTION monitoring._alert_payload(
    p_rule monitoring.alert_rules, p_issue monitoring.error_issues, p_facts jsonb
)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'condition', p_rule.condition,
        'rule_id', p_rule.id,
        'issue_id', p_issue.id,
        'title', p_issue.title,
        'culprit', p_issue.culprit,
        'level', p_issue.level,
        'service', p_issue.service,
        'environment', p_issue.environment,
        'fingerprint', p_issue.fingerprint,
        'status', p_issue.status,
        'substatus', p_issue.substatus,
        'first_seen', monitoring._json_time(p_issue.first_seen),
        'first_release', p_issue.first_release,
        'assignee', p_issue.assignee,
        'summary', monitoring._alert_summary(p_rule.condition, p_issue, p_facts)
    )) || coalesce(p_facts, '{}');
$$;

-- Queues one notification per channel of p_rule that lets p_issue through, unless the rule
-- fired for this issue within its action interval or the issue is not unresolved (ignored
-- issues do not alert). Returns how many it queued.
CREATE OR REPLACE FUNCTION monitoring._queue_alert(
    p_rule monitoring.alert_rules, p_issue monitoring.error_issues, p_facts jsonb
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_channels bigint[];
    v_payload jsonb;
BEGIN
    IF p_issue.status <> 'unresolved' THEN
        RETURN 0;
    END IF;
    v_channels := ARRAY(
        SELECT c.id
        FROM monitoring.alert_channels AS c
        WHERE
            c.enabled
            AND (p_rule.channel_id IS NULL OR c.id = p_rule.channel_id)
            AND (c.services IS NULL OR p_issue.service = ANY(c.services))
            AND (c.environments IS NULL OR p_issue.environment = ANY(c.environments))
            AND (
                c.min_level IS NULL
                OR monitoring._level_rank(p_issue.level) >= monitoring._level_rank(c.min_level)
            )
        ORDER BY c.id
    );
    IF cardinality(v_channels) = 0 THEN
        RETURN 0;
    END IF;

    -- The action interval. ON CONFLICT locks the state row: of two transactions firing the
    -- same rule for the same issue, the second waits for the first and then finds its time.
    -- An issue is new once (capture records one first_seen): nothing to hold back, no row.
    IF p_rule.condition <> 'new_issue' THEN
        INSERT INTO monitoring.alert_rule_state AS s (rule_id, issue_id, last_fired_at, times_fired)
        VALUES (p_rule.id, p_issue.id, now(), 1)
        ON CONFLICT (rule_id, issue_id) DO UPDATE
            SET last_fired_at = excluded.last_fired_at, times_fired = s.times_fired + 1
            WHERE s.last_fired_at IS NULL
            OR s.last_fired_at <= excluded.last_fired_at - p_rule.action_interval;
        IF NOT FOUND THEN
            RETURN 0;
        END IF;
    END IF;

    v_payload := monitoring._alert_payload(p_rule, p_issue, p_facts);
    INSERT INTO monitoring.alert_outbox (channel_id, rule_id, issue_id, condition, payload)
    SELECT c.id, p_rule.id, p_issue.id, p_rule.condition, v_payload
    FROM unnest(v_channels) AS c (id);
    RETURN cardinality(v_channels);
END
$$;

-- Fact rules, in the transaction that recorded the fact. The trigger's WHEN clause keeps
-- every other activity (and capture's common path, which records none) away from here.
CREATE OR REPLACE FUNCTION monitoring._alert_on_activity()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_condition text := CASE NEW.action
        WHEN 'first_seen' THEN 'new_issue'
        WHEN 'regression' THEN 'regression'
        ELSE 'escalating'
    END;
    v_issue monitoring.error_issues;
    v_rule monitoring.alert_rules;
    v_facts jsonb;
BEGIN
    -- an ignore that ran out of time without events (expire_ignores) met its condition too
    IF NEW.action = 'unresolved' AND NEW.data ->> 'reason' IS DISTINCT FROM 'ignore period ended'
        THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (
        SELECT FROM monitoring.alert_rules AS r WHERE r.condition = v_condition AND r.enabled
    ) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_issue FROM monitoring.error_issues AS g WHERE g.id = NEW.issue_id;
    FOR v_rule IN
        SELECT * FROM monitoring._rules_for(v_issue) AS r WHERE r.condition = v_condition
    LOOP
        IF v_facts IS NULL THEN
            v_facts := jsonb_strip_nulls(jsonb_build_object(
                'event_id', NEW.data -> 'event_id',
                'release', NEW.data -> 'release',
                'reason', NEW.data -> 'reason'
            ));
            -- a first event is counted after its issue is made: it is the one
            v_facts := v_facts || CASE
                WHEN v_condition = 'new_issue' THEN '{"times_seen": 1}'
                ELSE (
                    SELECT jsonb_build_object(
                        'times_seen', i.times_seen, 'users_seen', i.users_seen,
                        'last_seen', monitoring._json_time(i.last_seen)
                    )
                    FROM monitoring.issues AS i
                    WHERE i.id = v_issue.id
                )
            END;
        END IF;
        PERFORM monitoring._queue_alert(v_rule, v_issue, v_facts);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER alert_on_activity
AFTER INSERT ON monitoring.issue_activity
FOR EACH ROW
WHEN (
    new.action IN ('first_seen', 'regression', 'escalating')
    OR (new.action = 'unresolved' AND new.actor IS NULL)
)
EXECUTE FUNCTION monitoring._alert_on_activity();

-- The thresholds of an occurrences rule in (p_before, p_after]: how many, and the ten
-- highest (a fold that crosses more than ten alerts once, for the highest).
CREATE OR REPLACE FUNCTION monitoring._occurrences_crossed(
    p_occurrences bigint[], p_repeat_every bigint, p_before bigint, p_after bigint,
    OUT thresholds bigint[], OUT crossed bigint
)
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_last bigint := p_occurrences[cardinality(p_occurrences)];
    v_first_step bigint;
    v_last_step bigint;
BEGIN
    thresholds := ARRAY(
        SELECT o FROM unnest(p_occurrences) AS o WHERE o > p_before AND o <= p_after ORDER BY o
    );
    crossed := cardinality(thresholds);
    IF p_repeat_every > 0 AND p_after > v_last THEN
        v_first_step := (greatest(p_before, v_last) - v_last) / p_repeat_every + 1;
        v_last_step := (p_after - v_last) / p_repeat_every;
        IF v_last_step >= v_first_step THEN
            crossed := crossed + v_last_step - v_first_step + 1;
            thresholds := thresholds || ARRAY(
                SELECT v_last + k * p_repeat_every
                FROM generate_series(greatest(v_first_step, v_last_step - 9), v_last_step) AS k
                ORDER BY k
            );
        END IF;
    END IF;
    IF crossed > 10 THEN
        thresholds := thresholds[cardinality(thresholds):];
    END IF;
END
$$;

-- Threshold rules, called by fold_error_counts with the issues it folded (their rows locked),
-- each with its counts after the fold and the events the fold added. Each event is folded
-- once, so each threshold is crossed in exactly one fold: no check-then-act race, whatever
-- the number of writers.
CREATE OR REPLACE FUNCTION monitoring._alert_after_fold(
    p_issues bigint[], p_times_seen bigint[], p_events bigint[], p_users_seen bigint[]
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_folded record;
    v_issue monitoring.error_issues;
    v_rule monitoring.alert_rules;
    v_crossing record;
    v_threshold bigint;
    v_counts jsonb;
    v_count bigint;
    v_was_above boolean;
    v_queued integer := 0;
BEGIN
    IF NOT EXISTS (
        SELECT FROM monitoring.alert_rules AS r
        WHERE r.enabled AND r.condition IN ('occurrences', 'event_frequency', 'user_frequency')
    ) THEN
        RETURN 0;
    END IF;
    FOR v_folded IN
        SELECT f.times_seen, f.events, f.users_seen, g AS issue
        FROM unnest(p_issues, p_times_seen, p_events, p_users_seen)
            AS f (issue_id, times_seen, events, users_seen)
        INNER JOIN monitoring.error_issues AS g ON f.issue_id = g.id
        WHERE g.status = 'unresolved'
        ORDER BY f.issue_id
    LOOP
        v_issue := v_folded.issue;
        v_counts := jsonb_build_object(
            'times_seen', v_folded.times_seen, 'users_seen', v_folded.users_seen,
            'last_seen', monitoring._json_time(v_issue.last_seen)
        );
        FOR v_rule IN
            SELECT * FROM monitoring._rules_for(v_issue) AS r
            WHERE r.condition IN ('occurrences', 'event_frequency', 'user_frequency')
        LOOP
            IF v_rule.condition = 'occurrences' THEN
                SELECT * INTO v_crossing FROM monitoring._occurrences_crossed(
                    v_rule.occurrences, v_rule.repeat_every,
                    v_folded.times_seen - v_folded.events, v_folded.times_seen
                );
                FOREACH v_threshold IN ARRAY v_crossing.thresholds LOOP
                    v_queued := v_queued + monitoring._queue_alert(
                        v_rule, v_issue,
                        v_counts || jsonb_build_object('threshold', v_threshold)
                        || CASE WHEN v_crossing.crossed > 10
                            THEN jsonb_build_object('thresholds_crossed', v_crossing.crossed)
                            ELSE '{}'
                        END
                    );
                END LOOP;
                CONTINUE;
            END IF;

            -- Frequency: counted up to threshold + 1, which is all "more than" needs. Events
            -- storm protection did not store are counted by minute (error_issue_sampled,
            -- folded just now): the window's first minute counts whole.
            IF v_rule.condition = 'event_frequency' THEN
                SELECT count(*) INTO v_count FROM (
                    SELECT FROM monitoring.error_events AS e
                    WHERE e.issue_id = v_issue.id AND e.occurred_at > now() - v_rule.time_window
                    LIMIT v_rule.threshold + 1
                ) AS recent;
                IF v_issue.sampling_until IS NOT NULL THEN
                    v_count := v_count + coalesce((
                        SELECT sum(s.events) FROM monitoring.error_issue_sampled AS s
                        WHERE s.issue_id = v_issue.id
                            AND s.minute >= date_trunc('minute', now() - v_rule.time_window)
                    ), 0);
                END IF;
            ELSE
                SELECT count(*) INTO v_count FROM (
                    SELECT FROM monitoring.error_issue_users AS u
                    WHERE u.issue_id = v_issue.id AND u.last_seen > now() - v_rule.time_window
                    LIMIT v_rule.threshold + 1
                ) AS recent;
            END IF;
            SELECT s.above INTO v_was_above FROM monitoring.alert_rule_state AS s
            WHERE s.rule_id = v_rule.id AND s.issue_id = v_issue.id;
            v_was_above := coalesce(v_was_above, FALSE);
            IF v_count > v_rule.threshold AND NOT v_was_above THEN
                v_queued := v_queued + monitoring._queue_alert(
                    v_rule, v_issue,
                    v_counts || jsonb_build_object(
                        'threshold', v_rule.threshold,
                        'window_minutes',
                        trim_scale(round(extract(EPOCH FROM v_rule.time_window) / 60, 1))
                    )
                );
            END IF;
            IF (v_count > v_rule.threshold) <> v_was_above THEN
                INSERT INTO monitoring.alert_rule_state AS s (rule_id, issue_id, above)
                VALUES (v_rule.id, v_issue.id, v_count > v_rule.threshold)
                ON CONFLICT (rule_id, issue_id) DO UPDATE SET above = excluded.above;
            END IF;
        END LOOP;
    END LOOP;
    RETURN v_queued;
END
$$;
