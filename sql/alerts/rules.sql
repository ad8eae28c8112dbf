-- Rules: adding and removing them, and which rules apply to an issue.

-- p_occurrences sorted and checked, and the step that repeats after the last: given, or the
-- last step of the list ([1, 100, 200, 300] goes on with 400, 500...), or none for one count.
CREATE OR REPLACE FUNCTION monitoring._occurrence_schedule(
    p_occurrences bigint[], p_repeat_every bigint,
    OUT occurrences bigint[], OUT repeat_every bigint
)
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF coalesce(cardinality(p_occurrences), 0) = 0 OR array_position(p_occurrences, NULL) > 0
        OR EXISTS (SELECT FROM unnest(p_occurrences) AS o WHERE o < 1) THEN
        RAISE EXCEPTION 'p_occurrences must be counts of 1 or more, not %',
            coalesce(monitoring.truncate_text(p_occurrences::text, 100), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_repeat_every < 0 THEN
        RAISE EXCEPTION 'p_repeat_every must be 0 (no repeat) or more, not %', p_repeat_every
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    occurrences := ARRAY(SELECT DISTINCT o FROM unnest(p_occurrences) AS o ORDER BY o);
    repeat_every := coalesce(
        p_repeat_every,
        CASE WHEN cardinality(occurrences) >= 2
            THEN occurrences[cardinality(occurrences)] - occurrences[cardinality(occurrences) - 1]
            ELSE 0
        END
    );
END
$$;

-- Adds a rule. An occurrences rule replaces the one of the same scope (channel, service,
-- environment, fingerprint) if there is one.
CREATE OR REPLACE FUNCTION monitoring.add_alert_rule(
    p_condition text,
    p_channel text DEFAULT NULL,
    p_threshold bigint DEFAULT NULL,
    p_window interval DEFAULT NULL,
    p_occurrences bigint[] DEFAULT NULL,
    p_repeat_every bigint DEFAULT NULL,
    p_action_interval interval DEFAULT NULL,
    p_service text DEFAULT NULL,
    p_environment text DEFAULT NULL,
    p_fingerprint text DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_channel_id bigint;
    v_occurrences bigint[];
    v_repeat_every bigint;
    v_scope text;
    v_id bigint;
BEGIN
    IF p_condition IS NULL OR NOT p_condition = ANY(monitoring.alert_conditions()) THEN
        RAISE EXCEPTION 'p_condition must be one of %; not %',
            array_to_string(monitoring.alert_conditions(), ', '),
            coalesce(quote_literal(monitoring.truncate_text(p_condition, 100)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A scope names what an issue has: a service, environment or fingerprint of 1 to 200
    -- characters. Longer ones would also overflow the occurrence rules' index, and '' counts
    -- as NULL in it: a rule for '' would replace the one for every issue.
    SELECT s.name INTO v_scope
    FROM (
        VALUES ('p_service', p_service), ('p_environment', p_environment),
        ('p_fingerprint', p_fingerprint)
    ) AS s (name, value)
    WHERE s.value = '' OR length(s.value) > 200
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '% must be 1 to 200 characters, as an issue''s is (NULL: any)', v_scope
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_channel IS NOT NULL THEN
        v_channel_id := monitoring._channel_id(p_channel);
    END IF;
    -- The bounds keep what the rule is evaluated with in range, where an error would fail
    -- the capture or the fold that fires it: now() minus the interval or window, and a
    -- count to p_threshold + 1.
    IF p_action_interval < interval '0' OR p_action_interval > interval '100 years' THEN
        RAISE EXCEPTION 'p_action_interval must be from 0 to 100 years, not %', p_action_interval
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF p_condition IN ('event_frequency', 'user_frequency') THEN
        IF p_threshold IS NULL OR p_threshold NOT BETWEEN 0 AND 1000000000000 THEN
            RAISE EXCEPTION 'a % rule needs p_threshold (more than p_threshold in p_window), '
                'from 0 to 1000000000000, not %', p_condition, coalesce(p_threshold::text, 'NULL')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p_window IS NULL OR p_window <= interval '0' OR p_window > interval '100 years' THEN
            RAISE EXCEPTION 'a % rule needs a positive p_window of at most 100 years, not %',
                p_condition, coalesce(p_window::text, 'NULL')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSIF p_threshold IS NOT NULL OR p_window IS NOT NULL THEN
        RAISE EXCEPTION 'p_threshold and p_window belong to event_frequency and '
            'user_frequency rules, not %', p_condition
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_condition = 'occurrences' THEN
        SELECT s.occurrences, s.repeat_every INTO v_occurrences, v_repeat_every
        FROM monitoring._occurrence_schedule(p_occurrences, p_repeat_every) AS s;
    ELSIF p_occurrences IS NOT NULL OR p_repeat_every IS NOT NULL THEN
        RAISE EXCEPTION 'p_occurrences and p_repeat_every belong to occurrences rules, not %',
            p_condition
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO monitoring.alert_rules AS r (
        condition, channel_id, service, environment, fingerprint, threshold, time_window,
        occurrences, repeat_every, action_interval
    )
    VALUES (
        p_condition, v_channel_id, p_service, p_environment, p_fingerprint, p_threshold,
        p_window, v_occurrences, v_repeat_every,
        -- the counts are the rate limit of an occurrences rule
        coalesce(
            p_action_interval,
            CASE WHEN p_condition = 'occurrences' THEN interval '0' ELSE interval '30 minutes' END
        )
    )
    ON CONFLICT (
        coalesce(channel_id, 0), coalesce(service, ''), coalesce(environment, ''),
        coalesce(fingerprint, '')
    ) WHERE condition = 'occurrences'
    DO UPDATE SET
        occurrences = excluded.occurrences,
        repeat_every = excluded.repeat_every,
        action_interval = excluded.action_interval,
        enabled = TRUE
    RETURNING r.id INTO v_id;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION monitoring.add_alert_rule(
    text, text, bigint, interval, bigint[], bigint, interval, text, text, text
) IS
'Adds an alert rule: new_issue, regression, escalating, occurrences (p_occurrences, then '
'every p_repeat_every), event_frequency or user_frequency (more than p_threshold in '
'p_window); for channel p_channel or all, scoped by service, environment, fingerprint (1 to '
'200 characters). Thresholds go to 10^12, windows and action intervals to 100 years. '
'Returns its id';

-- The design document's tracker.set_notification_rate_limit(fingerprint=...,
-- notify_on_occurrence=[1, 100, 200, 300]).
CREATE OR REPLACE FUNCTION monitoring.set_occurrence_alerts(
    p_fingerprint text,
    p_occurrences bigint[],
    p_repeat_every bigint DEFAULT NULL,
    p_environment text DEFAULT NULL,
    p_service text DEFAULT NULL,
    p_channel text DEFAULT NULL
)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT monitoring.add_alert_rule(
        'occurrences',
        p_channel => p_channel,
        p_occurrences => p_occurrences,
        p_repeat_every => p_repeat_every,
        p_service => p_service,
        p_environment => p_environment,
        p_fingerprint => p_fingerprint
    );
$$;

COMMENT ON FUNCTION monitoring.set_occurrence_alerts(text, bigint[], bigint, text, text, text) IS
'Alerts the issues with fingerprint p_fingerprint only when their count reaches one of '
'p_occurrences, then every p_repeat_every (default: the list''s last step); replaces the '
'previous such rule. Returns the rule''s id';

CREATE OR REPLACE FUNCTION monitoring.remove_alert_rule(p_rule_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM monitoring.alert_rules AS r WHERE r.id = p_rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no alert rule with id %', coalesce(p_rule_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN p_rule_id;
END
$$;

COMMENT ON FUNCTION monitoring.remove_alert_rule(bigint) IS 'Removes an alert rule';

-- The enabled rules that apply to an issue. Rules scoped to its fingerprint, when there are
-- any, replace the others.
CREATE OR REPLACE FUNCTION monitoring._rules_for(p_issue monitoring.error_issues)
RETURNS SETOF monitoring.alert_rules
LANGUAGE sql
STABLE
AS $$
    WITH matching AS (
        SELECT r.*
        FROM monitoring.alert_rules AS r
        WHERE
            r.enabled
            AND (r.service IS NULL OR r.service = p_issue.service)
            AND (r.environment IS NULL OR r.environment = p_issue.environment)
            AND (r.fingerprint IS NULL OR r.fingerprint = p_issue.fingerprint)
    )

    SELECT m.*
    FROM matching AS m
    WHERE
        m.fingerprint IS NOT NULL
        OR NOT EXISTS (SELECT FROM matching AS s WHERE s.fingerprint IS NOT NULL)
    ORDER BY m.id;
$$;

GRANT EXECUTE ON FUNCTION
monitoring.add_alert_rule(
    text, text, bigint, interval, bigint[], bigint, interval, text, text, text
),
monitoring.set_occurrence_alerts(text, bigint[], bigint, text, text, text),
monitoring.remove_alert_rule(bigint)
TO monitoring_admin;
