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

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value, fractional
) VALUES
(
    'alerts.max_attempts', '10',
    'Delivery attempts of a notification before it is dead-lettered',
    1, 100, FALSE
),
(
    'alerts.retry_base_seconds', '10',
    'Delay before retrying a failed delivery; doubles with each attempt, with jitter',
    0.01, 86400, TRUE
),
(
    'alerts.retry_max_seconds', '3600',
    'Longest delay between two delivery attempts',
    0.01, 604800, TRUE
),
(
    'alerts.retention_days', '30',
    'Days sent and dead notifications are kept; run_maintenance deletes older ones',
    1, 36500, FALSE
);

-- Where alerts go. Secrets (webhook URLs, SMTP passwords, routing keys) live in their own
-- column of a table only monitoring_admin reads (the worker connects with that role);
-- monitoring.notification_channels shows the rest to readers.
CREATE TABLE monitoring.alert_channels (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('email', 'slack', 'webhook', 'pagerduty')),
    -- no secrets here; FIELD_env names an environment variable the worker reads FIELD from
    config jsonb NOT NULL DEFAULT '{}',
    secrets jsonb NOT NULL DEFAULT '{}',
    -- filters: NULL lets every service, environment, level through
    services text[],
    environments text[],
    min_level text CHECK (min_level IN ('debug', 'info', 'warning', 'error', 'fatal')),
    enabled boolean NOT NULL DEFAULT TRUE,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by name NOT NULL DEFAULT session_user,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE monitoring.alert_channels IS
'Alert channels with their secrets (monitoring_admin only); readers see '
'monitoring.notification_channels';

-- When alerts fire. A rule with no channel alerts every channel; a rule scoped to a
-- fingerprint replaces the unscoped rules for the issues with that fingerprint (the design
-- document's "only notify on the 1st and every 100th occurrence").
CREATE TABLE monitoring.alert_rules (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    condition text NOT NULL CHECK (condition IN (
        'new_issue', 'regression', 'escalating', 'occurrences', 'event_frequency',
        'user_frequency'
    )),
    channel_id bigint REFERENCES monitoring.alert_channels (id) ON DELETE CASCADE,
    service text,
    environment text,
    fingerprint text,
    -- event_frequency, user_frequency: more than threshold events (users) in time_window
    threshold bigint CHECK (threshold >= 0),
    time_window interval CHECK (time_window > interval '0'),
    -- occurrences: these counts, then every repeat_every after the last (0: no repeat)
    occurrences bigint[],
    repeat_every bigint CHECK (repeat_every >= 0),
    -- at most one alert per issue in this interval
    action_interval interval NOT NULL DEFAULT '30 minutes'
    CHECK (action_interval >= interval '0'),
    enabled boolean NOT NULL DEFAULT TRUE,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by name NOT NULL DEFAULT session_user,
    -- each condition has its own parameters and no others
    CONSTRAINT alert_rules_parameters CHECK (
        (condition = 'occurrences') = (occurrences IS NOT NULL)
        AND (condition = 'occurrences') = (repeat_every IS NOT NULL)
        AND (condition IN ('event_frequency', 'user_frequency')) = (threshold IS NOT NULL)
        AND (condition IN ('event_frequency', 'user_frequency')) = (time_window IS NOT NULL)
    )
);

COMMENT ON TABLE monitoring.alert_rules IS
'When alerts fire: new issue, regression, escalating, occurrence counts, events or users '
'in a time window; read monitoring.notification_rules';

-- One occurrence rule per scope, so that an application setting its rate limit at every
-- start (set_notification_rate_limit) replaces it instead of adding one more.
CREATE UNIQUE INDEX alert_rules_one_occurrence_rule ON monitoring.alert_rules (
    coalesce(channel_id, 0), coalesce(service, ''), coalesce(environment, ''),
    coalesce(fingerprint, '')
)
WHERE condition = 'occurrences';

-- Per rule and issue: when it last fired (the action interval) and whether a frequency
-- rule's count is above its threshold (it fires when the count crosses, not while it stays).
CREATE TABLE monitoring.alert_rule_state (
    rule_id bigint NOT NULL REFERENCES monitoring.alert_rules (id) ON DELETE CASCADE,
    group_id bigint NOT NULL REFERENCES monitoring.error_groups (id) ON DELETE CASCADE,
    last_fired_at timestamptz,
    times_fired bigint NOT NULL DEFAULT 0,
    above boolean NOT NULL DEFAULT FALSE,
    PRIMARY KEY (rule_id, group_id)
);

CREATE INDEX alert_rule_state_group ON monitoring.alert_rule_state (group_id);

-- The outbox. status: pending (never tried), sending (claimed until next_attempt_at),
-- failed (retried at next_attempt_at), sent, dead (gave up; retry_notification revives it).
CREATE TABLE monitoring.alert_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- sent with every delivery attempt of this row: receivers drop what they have seen
    idempotency_key uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    channel_id bigint NOT NULL REFERENCES monitoring.alert_channels (id) ON DELETE CASCADE,
    rule_id bigint REFERENCES monitoring.alert_rules (id) ON DELETE SET NULL,
    -- no foreign key: a notification outlives the issue retention deletes
    group_id bigint,
    condition text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    -- pending, failed: when it may be tried; sending: when the claim runs out
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    claim_token uuid,
    claimed_at timestamptz,
    claimed_by text,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    sent_at timestamptz
);

COMMENT ON TABLE monitoring.alert_outbox IS
'Notifications to deliver, written in the transaction that fired them; read '
'monitoring.notifications';

CREATE INDEX alert_outbox_due ON monitoring.alert_outbox (next_attempt_at)
WHERE status IN ('pending', 'sending', 'failed');
CREATE INDEX alert_outbox_created ON monitoring.alert_outbox (created_at);
CREATE INDEX alert_outbox_channel ON monitoring.alert_outbox (channel_id);

SELECT monitoring._keep_rows_in_dump(t)
FROM pg_catalog.unnest(ARRAY[
    'monitoring.alert_channels',
    'monitoring.alert_channels_id_seq',
    'monitoring.alert_rules',
    'monitoring.alert_rules_id_seq',
    'monitoring.alert_rule_state',
    'monitoring.alert_outbox',
    'monitoring.alert_outbox_id_seq'
]::regclass[]) AS t;

CREATE FUNCTION monitoring._level_rank(p_level text)
RETURNS integer
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT pg_catalog.array_position(ARRAY['debug', 'info', 'warning', 'error', 'fatal'], p_level);
$$;

-- What each kind of channel takes. Any field may instead be given as FIELD_env: the name of
-- an environment variable the worker reads it from. Secret fields are never stored in config.
CREATE FUNCTION monitoring._channel_fields()
RETURNS TABLE (kind text, field text, value_type text, secret boolean, required boolean)
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT f.kind, f.field, f.value_type, f.secret, f.required
    FROM (
        VALUES
        ('email', 'smtp_host', 'text', FALSE, TRUE),
        ('email', 'smtp_port', 'port', FALSE, FALSE),
        ('email', 'from_email', 'email', FALSE, TRUE),
        ('email', 'to_emails', 'emails', FALSE, TRUE),
        ('email', 'smtp_user', 'text', FALSE, FALSE),
        ('email', 'smtp_password', 'text', TRUE, FALSE),
        ('email', 'starttls', 'boolean', FALSE, FALSE),
        ('email', 'ssl', 'boolean', FALSE, FALSE),
        ('slack', 'webhook_url', 'url', TRUE, TRUE),
        ('webhook', 'url', 'url', TRUE, TRUE),
        ('webhook', 'secret', 'text', TRUE, FALSE),
        ('pagerduty', 'routing_key', 'text', TRUE, TRUE),
        ('pagerduty', 'api_url', 'url', FALSE, FALSE)
    ) AS f (kind, field, value_type, secret, required);
$$;

-- p_value as the JSON a field of type p_type takes. Text from a command line ("587",
-- "false", "a@example.com, b@example.com") is converted. p_name names the value in errors.
CREATE FUNCTION monitoring._channel_value(p_value jsonb, p_type text, p_name text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_text text := CASE WHEN jsonb_typeof(p_value) = 'string' THEN btrim(p_value #>> '{}') END;
    v_result jsonb := p_value;
    v_valid boolean;
BEGIN
    -- a setting is an address, a host, a URL or a short list of addresses
    IF length(p_value::text) > 2000 THEN
        RAISE EXCEPTION '% must be at most 2000 characters, not %', p_name, length(p_value::text)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    CASE p_type
        WHEN 'port' THEN
            IF v_text ~ '^[0-9]{1,5}$' THEN
                v_result := to_jsonb(v_text::integer);
            END IF;
            v_valid := jsonb_typeof(v_result) = 'number'
                AND v_result::numeric BETWEEN 1 AND 65535 AND v_result::numeric % 1 = 0;
        WHEN 'boolean' THEN
            v_result := CASE
                WHEN lower(v_text) IN ('true', 'yes', 'on', '1') THEN 'true'
                WHEN lower(v_text) IN ('false', 'no', 'off', '0') THEN 'false'
                ELSE p_value
            END;
            v_valid := jsonb_typeof(v_result) = 'boolean';
        WHEN 'emails' THEN
            IF v_text IS NOT NULL THEN
                v_result := to_jsonb(regexp_split_to_array(v_text, E'\\s*,\\s*'));
            END IF;
            v_valid := jsonb_typeof(v_result) = 'array' AND jsonb_array_length(v_result) > 0
                AND NOT EXISTS (
                    SELECT FROM jsonb_array_elements(v_result) AS e (address)
                    WHERE jsonb_typeof(e.address) <> 'string'
                        OR e.address #>> '{}' !~ E'^[^@\\s<>,;"]+@[^@\\s<>,;"]+$'
                );
        WHEN 'email' THEN
            v_result := to_jsonb(v_text);
            v_valid := v_text ~ E'^[^@\\s<>,;"]+@[^@\\s<>,;"]+$';
        WHEN 'url' THEN
            v_result := to_jsonb(v_text);
            v_valid := v_text ~* E'^https?://[^\\s/]+\\S*$';
        ELSE
            v_result := to_jsonb(v_text);
            v_valid := v_text ~ E'\\S' AND v_text !~ E'[\\r\\n]';
    END CASE;
    IF NOT coalesce(v_valid, FALSE) THEN
        RAISE EXCEPTION '% must be %, not %', p_name,
            CASE p_type
                WHEN 'port' THEN 'a port number (1-65535)'
                WHEN 'boolean' THEN 'true or false'
                WHEN 'emails' THEN 'a list of email addresses'
                WHEN 'email' THEN 'an email address'
                WHEN 'url' THEN 'an http:// or https:// URL'
                ELSE 'non-empty text on one line'
            END,
            coalesce(monitoring.truncate_text(p_value::text, 100), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_result;
END
$$;

-- Checks a channel's settings against _channel_fields; returns them as stored: config
-- without secrets, and secrets.
CREATE FUNCTION monitoring._channel_settings(
    p_kind text, p_config jsonb, p_secrets jsonb, OUT config jsonb, OUT secrets jsonb
)
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_key text;
    v_value jsonb;
    v_field record;
    v_takes text;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('email', 'slack', 'webhook', 'pagerduty') THEN
        RAISE EXCEPTION 'p_kind must be one of email, slack, webhook, pagerduty; not %',
            coalesce(quote_literal(monitoring.truncate_text(p_kind, 100)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(f.field, ', ' ORDER BY f.field) INTO v_takes
    FROM monitoring._channel_fields() AS f
    WHERE f.kind = p_kind;
    config := '{}';
    secrets := '{}';

    FOR v_key, v_value IN
        SELECT e.key, e.value
        FROM jsonb_each(coalesce(monitoring._expect(p_config, 'object', 'p_config'), '{}')) AS e
    LOOP
        SELECT * INTO v_field FROM monitoring._channel_fields() AS f
        WHERE f.kind = p_kind AND f.field = regexp_replace(v_key, '_env$', '');
        IF NOT FOUND THEN
            RAISE EXCEPTION 'p_config.% is not a setting of a % channel (it takes %, or any of '
                'them as NAME_env)', monitoring.truncate_text(v_key, 100), p_kind, v_takes
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_key ~ '_env$' THEN
            IF jsonb_typeof(v_value) IS DISTINCT FROM 'string'
                OR v_value #>> '{}' !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
                RAISE EXCEPTION 'p_config.% must name an environment variable, not %',
                    v_key, monitoring.truncate_text(v_value::text, 100)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            config := config || jsonb_build_object(v_key, v_value);
        ELSIF v_field.secret THEN
            RAISE EXCEPTION 'p_config.% is a secret: pass it in p_secrets, or name an '
                'environment variable with p_config.%_env', v_key, v_key
                USING ERRCODE = 'invalid_parameter_value';
        ELSE
            config := config || jsonb_build_object(
                v_key, monitoring._channel_value(v_value, v_field.value_type, 'p_config.' || v_key)
            );
        END IF;
    END LOOP;

    FOR v_key, v_value IN
        SELECT e.key, e.value
        FROM jsonb_each(coalesce(monitoring._expect(p_secrets, 'object', 'p_secrets'), '{}')) AS e
    LOOP
        SELECT * INTO v_field FROM monitoring._channel_fields() AS f
        WHERE f.kind = p_kind AND f.field = v_key AND f.secret;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'p_secrets.% is not a secret of a % channel (its secrets: %)',
                monitoring.truncate_text(v_key, 100), p_kind, (
                    SELECT coalesce(string_agg(f.field, ', ' ORDER BY f.field), 'none')
                    FROM monitoring._channel_fields() AS f
                    WHERE f.kind = p_kind AND f.secret
                )
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        secrets := secrets || jsonb_build_object(
            v_key, monitoring._channel_value(v_value, v_field.value_type, 'p_secrets.' || v_key)
        );
    END LOOP;

    FOR v_field IN SELECT * FROM monitoring._channel_fields() AS f WHERE f.kind = p_kind LOOP
        IF (config ? v_field.field OR secrets ? v_field.field)
            AND config ? (v_field.field || '_env') THEN
            RAISE EXCEPTION '% is given twice: as a value and as p_config.%_env',
                v_field.field, v_field.field
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_field.required
            AND NOT (
                config ? v_field.field OR secrets ? v_field.field
                OR config ? (v_field.field || '_env')
            ) THEN
            RAISE EXCEPTION 'a % channel needs %', p_kind,
                CASE WHEN v_field.secret THEN 'p_secrets.' ELSE 'p_config.' END
                || v_field.field || ' or p_config.' || v_field.field || '_env'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$$;

-- Adds a channel, or (p_replace) updates the one with that name: an application registering
-- its channels at every start changes nothing twice. A new channel with p_default_rules
-- alerts on new issues and regressions, at most once per issue per 30 minutes.
CREATE FUNCTION monitoring.add_channel(
    p_name text,
    p_kind text,
    p_config jsonb DEFAULT '{}',
    p_secrets jsonb DEFAULT '{}',
    p_services text[] DEFAULT NULL,
    p_environments text[] DEFAULT NULL,
    p_min_level text DEFAULT NULL,
    p_enabled boolean DEFAULT TRUE,
    p_default_rules boolean DEFAULT TRUE,
    p_replace boolean DEFAULT TRUE
)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := btrim(p_name);
    v_settings record;
    v_level text;
    v_id bigint;
BEGIN
    IF coalesce(v_name, '') !~ E'\\S' THEN
        RAISE EXCEPTION 'p_name must not be empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- a name is a key of the names' index, which holds ~2.7 kB
    IF length(v_name) > 200 THEN
        RAISE EXCEPTION 'p_name must be at most 200 characters, not %', length(v_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_services) = 0 OR cardinality(p_environments) = 0 THEN
        RAISE EXCEPTION 'p_services and p_environments must not be empty; NULL lets all through'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_settings FROM monitoring._channel_settings(p_kind, p_config, p_secrets);
    IF p_min_level IS NOT NULL THEN
        v_level := monitoring._level(p_min_level, 'p_min_level');
    END IF;

    INSERT INTO monitoring.alert_channels AS c (
        name, kind, config, secrets, services, environments, min_level, enabled
    )
    VALUES (
        v_name, p_kind, v_settings.config, v_settings.secrets, p_services, p_environments,
        v_level, coalesce(p_enabled, TRUE)
    )
    ON CONFLICT (name) DO NOTHING
    RETURNING c.id INTO v_id;
    IF v_id IS NOT NULL THEN
        IF coalesce(p_default_rules, TRUE) THEN
            INSERT INTO monitoring.alert_rules (condition, channel_id, action_interval)
            VALUES
            ('new_issue', v_id, interval '30 minutes'),
            ('regression', v_id, interval '30 minutes');
        END IF;
        RETURN v_id;
    END IF;

    IF coalesce(p_replace, TRUE) THEN
        UPDATE monitoring.alert_channels AS c
        SET kind = p_kind,
            config = v_settings.config,
            secrets = v_settings.secrets,
            services = p_services,
            environments = p_environments,
            min_level = v_level,
            enabled = coalesce(p_enabled, TRUE),
            updated_at = now()
        WHERE c.name = v_name
        RETURNING c.id INTO v_id;
    ELSE
        SELECT c.id INTO v_id FROM monitoring.alert_channels AS c WHERE c.name = v_name;
    END IF;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION monitoring.add_channel(
    text, text, jsonb, jsonb, text[], text[], text, boolean, boolean, boolean
) IS
'Adds an alert channel (email, slack, webhook, pagerduty), or updates the one named p_name '
'(unless p_replace is false); secrets go in p_secrets or are named as FIELD_env in p_config. '
'A new channel gets the default rules: new issue and regression, once per issue per 30 '
'minutes. Returns its id';

CREATE FUNCTION monitoring._channel_id(p_name text)
RETURNS bigint
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT c.id INTO v_id FROM monitoring.alert_channels AS c WHERE c.name = btrim(p_name);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no channel named %',
            coalesce(quote_literal(monitoring.truncate_text(p_name, 100)), 'NULL')
            USING ERRCODE = 'no_data_found',
                HINT = 'SELECT name FROM monitoring.notification_channels lists them.';
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION monitoring.remove_channel(p_name text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint := monitoring._channel_id(p_name);
BEGIN
    DELETE FROM monitoring.alert_channels AS c WHERE c.id = v_id;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION monitoring.remove_channel(text) IS
'Removes a channel with its own rules and its notifications, delivered or not; returns its id';

CREATE FUNCTION monitoring.set_channel_enabled(p_name text, p_enabled boolean)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint := monitoring._channel_id(p_name);
BEGIN
    IF p_enabled IS NULL THEN
        RAISE EXCEPTION 'p_enabled must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE monitoring.alert_channels AS c SET enabled = p_enabled, updated_at = now()
    WHERE c.id = v_id;
    IF p_enabled THEN
        PERFORM pg_notify('pg_monitoring_alerts', '');
    END IF;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION monitoring.set_channel_enabled(text, boolean) IS
'Pauses (false) or resumes a channel: a paused channel gets no new alerts, and what it has '
'queued waits for it';

CREATE FUNCTION monitoring.test_channel(p_name text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_channel monitoring.alert_channels;
    v_id bigint;
BEGIN
    SELECT * INTO v_channel FROM monitoring.alert_channels AS c
    WHERE c.id = monitoring._channel_id(p_name);
    INSERT INTO monitoring.alert_outbox (channel_id, condition, payload)
    VALUES (
        v_channel.id, 'test',
        jsonb_build_object(
            'condition', 'test',
            'title', 'Test notification',
            'level', 'info',
            'service', 'pg_monitoring',
            'environment', current_database(),
            'summary', format(
                'Test notification from pg_monitoring in database %s to channel %s',
                current_database(), v_channel.name
            )
        )
    )
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION monitoring.test_channel(text) IS
'Queues a test notification for channel p_name, whatever its rules and filters; returns its '
'id in monitoring.notifications';

-- p_occurrences sorted and checked, and the step that repeats after the last: given, or the
-- last step of the list ([1, 100, 200, 300] goes on with 400, 500...), or none for one count.
CREATE FUNCTION monitoring._occurrence_schedule(
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
CREATE FUNCTION monitoring.add_alert_rule(
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
    IF p_condition IS NULL OR p_condition NOT IN (
        'new_issue', 'regression', 'escalating', 'occurrences', 'event_frequency',
        'user_frequency'
    ) THEN
        RAISE EXCEPTION 'p_condition must be one of new_issue, regression, escalating, '
            'occurrences, event_frequency, user_frequency; not %',
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
CREATE FUNCTION monitoring.set_occurrence_alerts(
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

CREATE FUNCTION monitoring.remove_alert_rule(p_rule_id bigint)
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
CREATE FUNCTION monitoring._rules_for(p_group monitoring.error_groups)
RETURNS SETOF monitoring.alert_rules
LANGUAGE sql
STABLE
AS $$
    WITH matching AS (
        SELECT r.*
        FROM monitoring.alert_rules AS r
        WHERE
            r.enabled
            AND (r.service IS NULL OR r.service = p_group.service)
            AND (r.environment IS NULL OR r.environment = p_group.environment)
            AND (r.fingerprint IS NULL OR r.fingerprint = p_group.fingerprint)
    )

    SELECT m.*
    FROM matching AS m
    WHERE
        m.fingerprint IS NOT NULL
        OR NOT EXISTS (SELECT FROM matching AS s WHERE s.fingerprint IS NOT NULL)
    ORDER BY m.id;
$$;

CREATE FUNCTION monitoring._alert_summary(
    p_condition text, p_group monitoring.error_groups, p_facts jsonb
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
        || ' in ' || p_group.service || '/' || p_group.environment || ': ' || p_group.title;
$$;

-- What the worker needs to render an alert without reading anything else: a link-free
-- summary line and the issue's fields as of the firing.
CREATE FUNCTION monitoring._alert_payload(
    p_rule monitoring.alert_rules, p_group monitoring.error_groups, p_facts jsonb
)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'condition', p_rule.condition,
        'rule_id', p_rule.id,
        'issue_id', p_group.id,
        'title', p_group.title,
        'culprit', p_group.culprit,
        'level', p_group.level,
        'service', p_group.service,
        'environment', p_group.environment,
        'fingerprint', p_group.fingerprint,
        'status', p_group.status,
        'substatus', p_group.substatus,
        'first_seen', monitoring._json_time(p_group.first_seen),
        'first_release', p_group.first_release,
        'assignee', p_group.assignee,
        'summary', monitoring._alert_summary(p_rule.condition, p_group, p_facts)
    )) || coalesce(p_facts, '{}');
$$;

-- Queues one notification per channel of p_rule that lets p_group through, unless the rule
-- fired for this issue within its action interval or the issue is not unresolved (ignored
-- issues do not alert). Returns how many it queued.
CREATE FUNCTION monitoring._queue_alert(
    p_rule monitoring.alert_rules, p_group monitoring.error_groups, p_facts jsonb
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_channels bigint[];
    v_payload jsonb;
BEGIN
    IF p_group.status <> 'unresolved' THEN
        RETURN 0;
    END IF;
    v_channels := ARRAY(
        SELECT c.id
        FROM monitoring.alert_channels AS c
        WHERE
            c.enabled
            AND (p_rule.channel_id IS NULL OR c.id = p_rule.channel_id)
            AND (c.services IS NULL OR p_group.service = ANY(c.services))
            AND (c.environments IS NULL OR p_group.environment = ANY(c.environments))
            AND (
                c.min_level IS NULL
                OR monitoring._level_rank(p_group.level) >= monitoring._level_rank(c.min_level)
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
        INSERT INTO monitoring.alert_rule_state AS s (rule_id, group_id, last_fired_at, times_fired)
        VALUES (p_rule.id, p_group.id, now(), 1)
        ON CONFLICT (rule_id, group_id) DO UPDATE
            SET last_fired_at = excluded.last_fired_at, times_fired = s.times_fired + 1
            WHERE s.last_fired_at IS NULL
            OR s.last_fired_at <= excluded.last_fired_at - p_rule.action_interval;
        IF NOT FOUND THEN
            RETURN 0;
        END IF;
    END IF;

    v_payload := monitoring._alert_payload(p_rule, p_group, p_facts);
    INSERT INTO monitoring.alert_outbox (channel_id, rule_id, group_id, condition, payload)
    SELECT c.id, p_rule.id, p_group.id, p_rule.condition, v_payload
    FROM unnest(v_channels) AS c (id);
    RETURN cardinality(v_channels);
END
$$;

-- Fact rules, in the transaction that recorded the fact. The trigger's WHEN clause keeps
-- every other activity (and capture's common path, which records none) away from here.
CREATE FUNCTION monitoring._alert_on_activity()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_condition text := CASE NEW.action
        WHEN 'first_seen' THEN 'new_issue'
        WHEN 'regression' THEN 'regression'
        ELSE 'escalating'
    END;
    v_group monitoring.error_groups;
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
    SELECT * INTO v_group FROM monitoring.error_groups AS g WHERE g.id = NEW.group_id;
    FOR v_rule IN
        SELECT * FROM monitoring._rules_for(v_group) AS r WHERE r.condition = v_condition
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
                    WHERE i.id = v_group.id
                )
            END;
        END IF;
        PERFORM monitoring._queue_alert(v_rule, v_group, v_facts);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER alert_on_activity
AFTER INSERT ON monitoring.issue_activity
FOR EACH ROW
WHEN (
    new.action IN ('first_seen', 'regression', 'escalating')
    OR (new.action = 'unresolved' AND new.actor IS NULL)
)
EXECUTE FUNCTION monitoring._alert_on_activity();

-- The thresholds of an occurrences rule in (p_before, p_after]: how many, and the ten
-- highest (a fold that crosses more than ten alerts once, for the highest).
CREATE FUNCTION monitoring._occurrences_crossed(
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
CREATE FUNCTION monitoring._alert_after_fold(
    p_groups bigint[], p_times_seen bigint[], p_events bigint[], p_users_seen bigint[]
)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_folded record;
    v_group monitoring.error_groups;
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
        FROM unnest(p_groups, p_times_seen, p_events, p_users_seen)
            AS f (group_id, times_seen, events, users_seen)
        INNER JOIN monitoring.error_groups AS g ON f.group_id = g.id
        WHERE g.status = 'unresolved'
        ORDER BY f.group_id
    LOOP
        v_group := v_folded.issue;
        v_counts := jsonb_build_object(
            'times_seen', v_folded.times_seen, 'users_seen', v_folded.users_seen,
            'last_seen', monitoring._json_time(v_group.last_seen)
        );
        FOR v_rule IN
            SELECT * FROM monitoring._rules_for(v_group) AS r
            WHERE r.condition IN ('occurrences', 'event_frequency', 'user_frequency')
        LOOP
            IF v_rule.condition = 'occurrences' THEN
                SELECT * INTO v_crossing FROM monitoring._occurrences_crossed(
                    v_rule.occurrences, v_rule.repeat_every,
                    v_folded.times_seen - v_folded.events, v_folded.times_seen
                );
                FOREACH v_threshold IN ARRAY v_crossing.thresholds LOOP
                    v_queued := v_queued + monitoring._queue_alert(
                        v_rule, v_group,
                        v_counts || jsonb_build_object('threshold', v_threshold)
                        || CASE WHEN v_crossing.crossed > 10
                            THEN jsonb_build_object('thresholds_crossed', v_crossing.crossed)
                            ELSE '{}'
                        END
                    );
                END LOOP;
                CONTINUE;
            END IF;

            -- Frequency: counted up to threshold + 1, which is all "more than" needs.
            IF v_rule.condition = 'event_frequency' THEN
                SELECT count(*) INTO v_count FROM (
                    SELECT FROM monitoring.error_events AS e
                    WHERE e.group_id = v_group.id AND e.occurred_at > now() - v_rule.time_window
                    LIMIT v_rule.threshold + 1
                ) AS recent;
            ELSE
                SELECT count(*) INTO v_count FROM (
                    SELECT FROM monitoring.error_group_users AS u
                    WHERE u.group_id = v_group.id AND u.last_seen > now() - v_rule.time_window
                    LIMIT v_rule.threshold + 1
                ) AS recent;
            END IF;
            SELECT s.above INTO v_was_above FROM monitoring.alert_rule_state AS s
            WHERE s.rule_id = v_rule.id AND s.group_id = v_group.id;
            v_was_above := coalesce(v_was_above, FALSE);
            IF v_count > v_rule.threshold AND NOT v_was_above THEN
                v_queued := v_queued + monitoring._queue_alert(
                    v_rule, v_group,
                    v_counts || jsonb_build_object(
                        'threshold', v_rule.threshold,
                        'window_minutes',
                        trim_scale(round(extract(EPOCH FROM v_rule.time_window) / 60, 1))
                    )
                );
            END IF;
            IF (v_count > v_rule.threshold) <> v_was_above THEN
                INSERT INTO monitoring.alert_rule_state AS s (rule_id, group_id, above)
                VALUES (v_rule.id, v_group.id, v_count > v_rule.threshold)
                ON CONFLICT (rule_id, group_id) DO UPDATE SET above = excluded.above;
            END IF;
        END LOOP;
    END LOOP;
    RETURN v_queued;
END
$$;

-- The wake-up: the row's id only (a payload must stay under 8000 bytes), sent at commit.
CREATE FUNCTION monitoring._notify_alert()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('pg_monitoring_alerts', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER alert_outbox_notify
AFTER INSERT ON monitoring.alert_outbox
FOR EACH ROW
EXECUTE FUNCTION monitoring._notify_alert();

-- For the worker: claims up to p_limit due notifications (or the ones in p_ids) for
-- p_lease_seconds. A claim is a lease: if no outcome is recorded before it runs out (the
-- worker died), the row is due again, and after the last allowed attempt it is dead.
CREATE FUNCTION monitoring.claim_notifications(
    p_limit integer DEFAULT 10,
    p_lease_seconds double precision DEFAULT 120,
    p_worker text DEFAULT NULL,
    p_ids bigint[] DEFAULT NULL,
    p_max_attempts integer DEFAULT NULL
)
RETURNS TABLE (
    id bigint,
    claim_token uuid,
    idempotency_key uuid,
    attempt integer,
    condition text,
    channel_name text,
    channel_kind text,
    config jsonb,
    secrets jsonb,
    payload jsonb,
    created_at timestamptz
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- the clock, not the transaction's start: leases are measured from the claim itself
    v_now timestamptz := clock_timestamp();
    v_max integer := coalesce(
        p_max_attempts, monitoring.get_setting('alerts.max_attempts')::integer
    );
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be 1 or more, not %', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- At most a week (NaN is more): the lease's end is stored, and must be a time that
    -- clients can read (Python's end with the year 9999) and PostgreSQL can add.
    IF NOT coalesce(p_lease_seconds > 0 AND p_lease_seconds <= 604800, FALSE) THEN
        RAISE EXCEPTION 'p_lease_seconds must be positive and at most 604800 (a week), not %',
            coalesce(p_lease_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(p_worker) > 200 THEN
        RAISE EXCEPTION 'p_worker must be at most 200 characters, not %', length(p_worker)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_max < 1 THEN
        RAISE EXCEPTION 'p_max_attempts must be 1 or more, not %', v_max
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    UPDATE monitoring.alert_outbox AS o
    SET status = 'dead',
        claim_token = NULL,
        last_error = format(
            'no outcome recorded for attempt %s of %s: the worker stopped or stalled while '
            'sending', o.attempts, v_max
        ) || coalesce(E'\nbefore that: ' || o.last_error, '')
    WHERE o.id IN (
        SELECT x.id
        FROM monitoring.alert_outbox AS x
        WHERE
            x.status = 'sending' AND x.next_attempt_at <= v_now AND x.attempts >= v_max
            AND (p_ids IS NULL OR x.id = ANY(p_ids))
        FOR UPDATE SKIP LOCKED
    );

    RETURN QUERY
    WITH picked AS (
        SELECT x.id
        FROM monitoring.alert_outbox AS x
        INNER JOIN monitoring.alert_channels AS c ON x.channel_id = c.id
        WHERE
            x.status IN ('pending', 'sending', 'failed') AND x.next_attempt_at <= v_now
            AND c.enabled AND (p_ids IS NULL OR x.id = ANY(p_ids))
        ORDER BY x.next_attempt_at, x.id
        LIMIT p_limit
        FOR UPDATE OF x SKIP LOCKED
    ),

    claimed AS (
        UPDATE monitoring.alert_outbox AS o
        SET status = 'sending',
            attempts = o.attempts + 1,
            next_attempt_at = v_now + make_interval(secs => p_lease_seconds),
            claim_token = gen_random_uuid(),
            claimed_at = v_now,
            claimed_by = coalesce(p_worker, session_user)
        FROM picked AS p
        WHERE o.id = p.id
        RETURNING o.*
    )

    SELECT
        o.id, o.claim_token, o.idempotency_key, o.attempts, o.condition, c.name, c.kind,
        c.config, c.secrets, o.payload, o.created_at
    FROM claimed AS o
    INNER JOIN monitoring.alert_channels AS c ON o.channel_id = c.id
    ORDER BY o.id;
END
$$;

COMMENT ON FUNCTION monitoring.claim_notifications(
    integer, double precision, text, bigint[], integer
) IS
'For delivery workers: claims up to p_limit due notifications (or those in p_ids) for '
'p_lease_seconds, with their channel''s config and secrets; FOR UPDATE SKIP LOCKED, so '
'workers never block each other';

CREATE FUNCTION monitoring.complete_notification(p_id bigint, p_claim_token uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE monitoring.alert_outbox AS o
    SET status = 'sent', sent_at = clock_timestamp(), claim_token = NULL
    WHERE o.id = p_id AND o.claim_token = p_claim_token AND o.status = 'sending';
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION monitoring.complete_notification(bigint, uuid) IS
'Records a delivery; false when the claim was lost (its lease ran out and another worker '
'claimed the notification, which it then delivers again with the same idempotency key)';

-- A failed attempt: retried after base * 2^(attempt - 1) seconds (at most max), of which a
-- random half is jitter so that retries of one outage spread out; dead after the last
-- attempt, or at once when p_permanent (the receiver refused the request itself).
CREATE FUNCTION monitoring.fail_notification(
    p_id bigint,
    p_claim_token uuid,
    p_error text,
    p_permanent boolean DEFAULT FALSE,
    p_retry_after_seconds double precision DEFAULT NULL,
    p_max_attempts integer DEFAULT NULL,
    p_retry_base_seconds double precision DEFAULT NULL,
    p_retry_max_seconds double precision DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max integer := coalesce(
        p_max_attempts, monitoring.get_setting('alerts.max_attempts')::integer
    );
    v_base double precision := coalesce(
        p_retry_base_seconds, monitoring.get_setting('alerts.retry_base_seconds')::double precision
    );
    v_cap double precision := coalesce(
        p_retry_max_seconds, monitoring.get_setting('alerts.retry_max_seconds')::double precision
    );
    v_row monitoring.alert_outbox;
    v_delay double precision;
    v_status text;
BEGIN
    -- In the ranges of the settings they stand for (0 allowed, as the worker's options do):
    -- the delay becomes a time, which NaN, infinity or 1e308 seconds are not.
    IF NOT coalesce(p_retry_base_seconds BETWEEN 0 AND 86400, TRUE)
        OR NOT coalesce(p_retry_max_seconds BETWEEN 0 AND 604800, TRUE) THEN
        RAISE EXCEPTION 'p_retry_base_seconds must be from 0 to 86400 and p_retry_max_seconds '
            'from 0 to 604800, not % and %',
            coalesce(p_retry_base_seconds::text, 'NULL'), coalesce(p_retry_max_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_row FROM monitoring.alert_outbox AS o
    WHERE o.id = p_id AND o.claim_token = p_claim_token AND o.status = 'sending'
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_delay := least(v_cap, v_base * power(2, greatest(v_row.attempts - 1, 0)));
    v_delay := v_delay / 2 + random() * v_delay / 2;
    IF p_retry_after_seconds > v_delay THEN
        v_delay := least(p_retry_after_seconds, v_cap);
    END IF;
    v_status := CASE
        WHEN coalesce(p_permanent, FALSE) OR v_row.attempts >= v_max THEN 'dead'
        ELSE 'failed'
    END;
    UPDATE monitoring.alert_outbox AS o
    SET status = v_status,
        claim_token = NULL,
        last_error = left(coalesce(p_error, 'unknown error'), 2000),
        next_attempt_at = clock_timestamp() + make_interval(secs => v_delay)
    WHERE o.id = p_id;
    RETURN v_status;
END
$$;

COMMENT ON FUNCTION monitoring.fail_notification(
    bigint, uuid, text, boolean, double precision, integer, double precision, double precision
) IS
'Records a failed delivery attempt: failed (retried with exponential backoff and jitter) or '
'dead after the last attempt or a permanent error; returns the new status, NULL when the '
'claim was lost';

CREATE FUNCTION monitoring.retry_notification(p_id bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text;
BEGIN
    SELECT o.status INTO v_status FROM monitoring.alert_outbox AS o WHERE o.id = p_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no notification with id %', coalesce(p_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v_status NOT IN ('dead', 'failed') THEN
        RAISE EXCEPTION 'notification % is %; only failed and dead ones can be retried',
            p_id, v_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE monitoring.alert_outbox AS o
    SET status = 'pending', attempts = 0, next_attempt_at = now(), claim_token = NULL
    WHERE o.id = p_id;
    PERFORM pg_notify('pg_monitoring_alerts', p_id::text);
    RETURN 'pending';
END
$$;

COMMENT ON FUNCTION monitoring.retry_notification(bigint) IS
'Sends a failed or dead notification again now, with a fresh count of attempts and the same '
'idempotency key';

-- When the worker should look again without a wake-up: the next retry or lease expiry.
CREATE FUNCTION monitoring.next_notification_at()
RETURNS timestamptz
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT min(o.next_attempt_at)
    FROM monitoring.alert_outbox AS o
    INNER JOIN monitoring.alert_channels AS c ON o.channel_id = c.id
    WHERE o.status IN ('pending', 'sending', 'failed') AND c.enabled;
$$;

COMMENT ON FUNCTION monitoring.next_notification_at() IS
'When the next notification falls due (a retry, or a claim running out); NULL when none waits';

-- For the worker, every few seconds: the fold of run_maintenance alone, under its lock, so
-- threshold rules fire soon without running partitioning, retention and cache cleanup
-- that often.
CREATE FUNCTION monitoring.fold_counts()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- run_maintenance's lock (see maintenance.sql): one fold at a time
    IF NOT pg_try_advisory_xact_lock(7378802412486251) THEN
        RETURN jsonb_build_object('skipped', 'another fold or run_maintenance is running');
    END IF;
    RETURN jsonb_build_object('events_folded', monitoring.fold_error_counts());
END
$$;

COMMENT ON FUNCTION monitoring.fold_counts() IS
'Folds buffered event counts into issues now, which fires threshold alert rules; '
'run_maintenance does it too, with everything else';

CREATE FUNCTION monitoring.apply_alert_retention()
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM monitoring.alert_outbox AS o
    WHERE
        o.status IN ('sent', 'dead')
        AND o.created_at < now() - make_interval(
            days => monitoring.get_setting('alerts.retention_days')::integer
        );
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring.apply_alert_retention() IS
'Deletes sent and dead notifications older than alerts.retention_days; returns how many';

CREATE VIEW monitoring.notification_channels AS
SELECT
    c.id,
    c.name,
    c.kind,
    c.enabled,
    c.services,
    c.environments,
    c.min_level,
    c.config,
    coalesce(
        (SELECT array_agg(k.key ORDER BY k.key) FROM jsonb_object_keys(c.secrets) AS k (key)),
        '{}'
    ) AS secret_fields,
    c.created_at,
    c.created_by,
    c.updated_at
FROM monitoring.alert_channels AS c;

COMMENT ON VIEW monitoring.notification_channels IS
'Alert channels without their secrets (secret_fields names them)';

CREATE VIEW monitoring.notification_rules AS
SELECT
    r.id,
    r.condition,
    c.name AS channel,
    r.service,
    r.environment,
    r.fingerprint,
    r.threshold,
    r.time_window,
    r.occurrences,
    r.repeat_every,
    r.action_interval,
    r.enabled,
    r.created_at,
    r.created_by
FROM monitoring.alert_rules AS r
LEFT JOIN monitoring.alert_channels AS c ON r.channel_id = c.id;

COMMENT ON VIEW monitoring.notification_rules IS
'Alert rules; channel NULL means every channel';

CREATE VIEW monitoring.notifications AS
SELECT
    o.id,
    o.status,
    o.condition,
    c.name AS channel,
    c.kind AS channel_kind,
    o.group_id AS issue_id,
    o.payload ->> 'summary' AS summary,
    o.attempts,
    o.next_attempt_at,
    o.last_error,
    o.created_at,
    o.sent_at,
    o.claimed_at,
    o.claimed_by,
    o.idempotency_key,
    o.rule_id,
    o.payload
FROM monitoring.alert_outbox AS o
INNER JOIN monitoring.alert_channels AS c ON o.channel_id = c.id;

COMMENT ON VIEW monitoring.notifications IS
'The alert outbox: every notification with its delivery state, attempts and last error';

GRANT SELECT ON monitoring.alert_channels TO monitoring_admin;
GRANT SELECT ON
monitoring.notification_channels, monitoring.notification_rules, monitoring.notifications
TO monitoring_reader;

GRANT EXECUTE ON FUNCTION
monitoring.add_channel(text, text, jsonb, jsonb, text[], text[], text, boolean, boolean, boolean),
monitoring.remove_channel(text),
monitoring.set_channel_enabled(text, boolean),
monitoring.test_channel(text),
monitoring.add_alert_rule(
    text, text, bigint, interval, bigint[], bigint, interval, text, text, text
),
monitoring.set_occurrence_alerts(text, bigint[], bigint, text, text, text),
monitoring.remove_alert_rule(bigint),
monitoring.claim_notifications(integer, double precision, text, bigint[], integer),
monitoring.complete_notification(bigint, uuid),
monitoring.fail_notification(
    bigint, uuid, text, boolean, double precision, integer, double precision, double precision
),
monitoring.retry_notification(bigint),
monitoring.next_notification_at(),
monitoring.fold_counts()
TO monitoring_admin;
