-- Channels: values checked and converted as channel_fields (vocabulary.sql) says, secrets kept
-- apart from config; adding, removing, pausing and testing them.

-- p_value as the JSON a field of type p_type takes. Text from a command line ("587",
-- "false", "a@example.com, b@example.com") is converted. p_name names the value in errors.
CREATE OR REPLACE FUNCTION monitoring._channel_value(p_value jsonb, p_type text, p_name text)
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

-- For clients: p_value as a p_kind channel's p_field takes it, converted as add_channel
-- converts it (text from an environment variable: "587", "false"), or an error naming
-- p_name (p_field when NULL). The worker reads FIELD_env values with it, so a typo there is
-- refused as it is in add_channel, not read as something else.
CREATE OR REPLACE FUNCTION monitoring.channel_value(
    p_kind text, p_field text, p_value jsonb, p_name text DEFAULT NULL
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_type text;
BEGIN
    SELECT f.value_type INTO v_type
    FROM monitoring.channel_fields() AS f
    WHERE f.kind = p_kind AND f.field = p_field;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a field of a % channel',
            coalesce(quote_literal(monitoring.truncate_text(p_field, 100)), 'NULL'),
            coalesce(quote_literal(monitoring.truncate_text(p_kind, 100)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                HINT = 'SELECT * FROM monitoring.channel_fields() lists them.';
    END IF;
    RETURN monitoring._channel_value(p_value, v_type, coalesce(p_name, p_field));
END
$$;

COMMENT ON FUNCTION monitoring.channel_value(text, text, jsonb, text) IS
'p_value as field p_field of a p_kind channel takes it (text converted as add_channel '
'converts it), or an error naming p_name';

-- For clients holding a channel's fields in one object (the Python notifiers): which are
-- secrets is the channel rule's to say, not the client's. Fields the kind does not take go
-- to config, where add_channel refuses them by name.
CREATE OR REPLACE FUNCTION monitoring.channel_split(
    p_kind text, p_fields jsonb, OUT config jsonb, OUT secrets jsonb
)
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT
        coalesce(jsonb_object_agg(e.key, e.value) FILTER (WHERE f.secret IS NOT TRUE), '{}'),
        coalesce(jsonb_object_agg(e.key, e.value) FILTER (WHERE f.secret), '{}')
    FROM jsonb_each(coalesce(p_fields, '{}')) AS e
    LEFT JOIN monitoring.channel_fields() AS f ON f.kind = p_kind AND f.field = e.key;
$$;

COMMENT ON FUNCTION monitoring.channel_split(text, jsonb) IS
'p_fields of a p_kind channel split as add_channel takes them: config, and the secrets';

-- For the worker: a claimed channel's settings as it sends with them. Each FIELD_env is
-- read from p_environment (the worker's variables of those names) and checked and
-- converted as add_channel checks a value, so a typo there ("ture") is refused, not read
-- as something else; an unset variable is an error for a required field, else skipped.
-- Errors name the variable; a secret's value is not quoted.
CREATE OR REPLACE FUNCTION monitoring.channel_environment(
    p_kind text, p_config jsonb, p_secrets jsonb, p_environment jsonb
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_settings jsonb := '{}';
    v_key text;
    v_value jsonb;
    v_field record;
    v_text text;
BEGIN
    FOR v_key, v_value IN
        SELECT e.key, e.value FROM jsonb_each(coalesce(p_config, '{}') || coalesce(p_secrets, '{}')) AS e
    LOOP
        IF v_key !~ '_env$' THEN
            v_settings := v_settings || jsonb_build_object(v_key, v_value);
            CONTINUE;
        END IF;
        SELECT * INTO v_field FROM monitoring.channel_fields() AS f
        WHERE f.kind = p_kind AND f.field = left(v_key, -4);
        IF NOT FOUND THEN
            RAISE EXCEPTION '% is not a setting of a % channel', v_key, p_kind
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_text := p_environment ->> (v_value #>> '{}');
        IF coalesce(v_text, '') = '' THEN
            IF v_field.required THEN
                RAISE EXCEPTION 'environment variable % (the channel''s %) is not set in the '
                    'worker''s environment', v_value #>> '{}', v_key
                    USING ERRCODE = 'null_value_not_allowed';
            END IF;
            CONTINUE;
        END IF;
        BEGIN
            v_settings := v_settings || jsonb_build_object(
                v_field.field,
                monitoring._channel_value(
                    to_jsonb(v_text), v_field.value_type,
                    format('environment variable %s (the channel''s %s)', v_value #>> '{}', v_key)
                )
            );
        EXCEPTION WHEN invalid_parameter_value THEN
            -- the message quotes the value: not a secret's, which would land in the outbox
            RAISE EXCEPTION '%', CASE WHEN v_field.secret
                THEN regexp_replace(SQLERRM, ', not .*$', ' (a secret: its value is not shown)')
                ELSE SQLERRM END
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END LOOP;
    RETURN v_settings;
END
$$;

COMMENT ON FUNCTION monitoring.channel_environment(text, jsonb, jsonb, jsonb) IS
'A channel''s settings as the worker sends with them: config and secrets, each FIELD_env '
'read from p_environment and checked and converted as add_channel checks a value';

-- Checks a channel's settings against channel_fields; returns them as stored: config
-- without secrets, and secrets.
CREATE OR REPLACE FUNCTION monitoring._channel_settings(
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
    IF p_kind IS NULL OR NOT p_kind = ANY(monitoring.channel_kinds()) THEN
        RAISE EXCEPTION 'p_kind must be one of %; not %',
            array_to_string(monitoring.channel_kinds(), ', '),
            coalesce(quote_literal(monitoring.truncate_text(p_kind, 100)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(f.field, ', ' ORDER BY f.field) INTO v_takes
    FROM monitoring.channel_fields() AS f
    WHERE f.kind = p_kind;
    config := '{}';
    secrets := '{}';

    FOR v_key, v_value IN
        SELECT e.key, e.value
        FROM jsonb_each(coalesce(monitoring._expect(p_config, 'object', 'p_config'), '{}')) AS e
    LOOP
        SELECT * INTO v_field FROM monitoring.channel_fields() AS f
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
        SELECT * INTO v_field FROM monitoring.channel_fields() AS f
        WHERE f.kind = p_kind AND f.field = v_key AND f.secret;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'p_secrets.% is not a secret of a % channel (its secrets: %)',
                monitoring.truncate_text(v_key, 100), p_kind, (
                    SELECT coalesce(string_agg(f.field, ', ' ORDER BY f.field), 'none')
                    FROM monitoring.channel_fields() AS f
                    WHERE f.kind = p_kind AND f.secret
                )
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        secrets := secrets || jsonb_build_object(
            v_key, monitoring._channel_value(v_value, v_field.value_type, 'p_secrets.' || v_key)
        );
    END LOOP;

    FOR v_field IN SELECT * FROM monitoring.channel_fields() AS f WHERE f.kind = p_kind LOOP
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
CREATE OR REPLACE FUNCTION monitoring.add_channel(
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

CREATE OR REPLACE FUNCTION monitoring._channel_id(p_name text)
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

CREATE OR REPLACE FUNCTION monitoring.remove_channel(p_name text)
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

CREATE OR REPLACE FUNCTION monitoring.set_channel_enabled(p_name text, p_enabled boolean)
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

CREATE OR REPLACE FUNCTION monitoring.test_channel(p_name text)
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

GRANT EXECUTE ON FUNCTION
monitoring._channel_value(jsonb, text, text),
monitoring.channel_value(text, text, jsonb, text)
TO monitoring_reader, monitoring_admin;
GRANT EXECUTE ON FUNCTION
monitoring.add_channel(text, text, jsonb, jsonb, text[], text[], text, boolean, boolean, boolean),
monitoring.remove_channel(text),
monitoring.set_channel_enabled(text, boolean),
monitoring.test_channel(text),
monitoring.channel_split(text, jsonb),
monitoring.channel_environment(text, jsonb, jsonb, jsonb)
TO monitoring_admin;
