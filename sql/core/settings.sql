-- Reading and changing settings (their tables are in settings_tables.sql and
-- settings_snapshot_table.sql): the settings in force, get/set/reset, the range check, and the
-- triggers that keep the snapshot current.

CREATE OR REPLACE VIEW monitoring.effective_settings AS
SELECT
    d.name,
    coalesce(s.value, d.default_value) AS value,
    d.default_value,
    s.name IS NULL AS is_default,
    s.updated_at,
    s.updated_by,
    d.description,
    d.min_value,
    d.max_value
FROM monitoring.setting_definitions AS d
LEFT JOIN monitoring.settings AS s ON d.name = s.name;

COMMENT ON VIEW monitoring.effective_settings IS
'Every setting with the value in force, its default, who last changed it and its range';

GRANT SELECT ON monitoring.effective_settings TO monitoring_reader;

CREATE OR REPLACE FUNCTION monitoring.get_setting(p_name text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value jsonb;
BEGIN
    SELECT coalesce(s.value, d.default_value)
    INTO v_value
    FROM monitoring.setting_definitions AS d
    LEFT JOIN monitoring.settings AS s ON d.name = s.name
    WHERE d.name = p_name;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting: %',
            coalesce(quote_literal(monitoring.truncate_text(p_name, 100)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                HINT = 'SELECT name FROM monitoring.effective_settings lists them.';
    END IF;
    RETURN v_value;
END
$$;

COMMENT ON FUNCTION monitoring.get_setting(text) IS
'The value in force for setting p_name; raises invalid_parameter_value for unknown names';

CREATE OR REPLACE FUNCTION monitoring.set_setting(p_name text, p_value jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_default jsonb;
    v_problem text;
BEGIN
    SELECT d.default_value INTO v_default
    FROM monitoring.setting_definitions AS d
    WHERE d.name = p_name;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting: %',
            coalesce(quote_literal(monitoring.truncate_text(p_name, 100)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                HINT = 'SELECT name FROM monitoring.effective_settings lists them.';
    END IF;
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RAISE EXCEPTION 'p_value must not be null; use monitoring.reset_setting(%) for the default',
            quote_literal(p_name)
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(p_value) <> jsonb_typeof(v_default) THEN
        RAISE EXCEPTION 'setting % takes a % value, not %',
            p_name, jsonb_typeof(v_default), jsonb_typeof(p_value)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_problem := monitoring._setting_problem(p_name, p_value);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'setting % %, not %',
            p_name, v_problem, monitoring.truncate_text(p_value::text, 100)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- session_user: inside SECURITY DEFINER, current_user is the owner
    INSERT INTO monitoring.settings AS s (name, value, updated_by)
    VALUES (p_name, p_value, session_user)
    ON CONFLICT (name) DO UPDATE
        SET value = excluded.value, updated_at = now(), updated_by = session_user;
    RETURN p_value;
END
$$;

COMMENT ON FUNCTION monitoring.set_setting(text, jsonb) IS
'Overrides setting p_name; the value must have the JSON type of the default and be in the '
'setting''s range';

CREATE OR REPLACE FUNCTION monitoring.reset_setting(p_name text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM monitoring.settings AS s WHERE s.name = p_name;
    RETURN monitoring.get_setting(p_name);
END
$$;

COMMENT ON FUNCTION monitoring.reset_setting(text) IS
'Puts setting p_name back to its default and returns that default';

GRANT EXECUTE ON FUNCTION monitoring.get_setting(text) TO monitoring_reader, monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.set_setting(text, jsonb) TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.reset_setting(text) TO monitoring_admin;

-- Why p_value can not be setting p_name ("must be ..."), or NULL when it can. Defined after
-- set_setting, which calls it: PL/pgSQL looks functions up when it runs.
CREATE OR REPLACE FUNCTION monitoring._setting_problem(p_name text, p_value jsonb)
RETURNS text
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_definition monitoring.setting_definitions;
    v_number numeric;
BEGIN
    SELECT * INTO v_definition FROM monitoring.setting_definitions AS d WHERE d.name = p_name;
    CASE jsonb_typeof(v_definition.default_value)
        WHEN 'number' THEN
            v_number := p_value::numeric;
            IF (v_number <> trunc(v_number) AND NOT v_definition.fractional)
                OR v_number < v_definition.min_value OR v_number > v_definition.max_value THEN
                RETURN format(
                    'must be a %s from %s to %s',
                    CASE WHEN v_definition.fractional THEN 'number' ELSE 'whole number' END,
                    v_definition.min_value, v_definition.max_value
                );
            END IF;
        WHEN 'string' THEN
            IF length(p_value #>> '{}') NOT BETWEEN v_definition.min_value AND v_definition.max_value
                OR p_value #>> '{}' ~ '[[:cntrl:]]' THEN
                RETURN format(
                    'must be text of %s to %s characters on one line',
                    v_definition.min_value, v_definition.max_value
                );
            END IF;
        WHEN 'array' THEN
            IF jsonb_array_length(p_value) > v_definition.max_value
                OR jsonb_path_exists(
                    p_value, 'strict $[*] ? (@.type() != "string" || @ == "")'
                )
                OR EXISTS (
                    SELECT FROM jsonb_array_elements_text(p_value) AS e (name)
                    WHERE length(e.name) > 200 OR e.name ~ '[[:cntrl:]]'
                ) THEN
                RETURN format(
                    'must be a list of at most %s names (non-empty strings of up to 200 '
                    'characters on one line)',
                    v_definition.max_value
                );
            END IF;
        ELSE
            NULL;
    END CASE;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION monitoring._setting_problem(text, jsonb) IS
'Why p_value is out of setting p_name''s range ("must be ..."), or NULL when it is in it';

CREATE OR REPLACE FUNCTION monitoring._refresh_settings_snapshot()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- The scrubbing functions come later in the install script than this one, and before
    -- the first setting that fires it (errors/tables.sql and every domain's after it).
    INSERT INTO monitoring.settings_snapshot AS t (
        only_row, value, scrub_pattern, scrub_likes, scrub_safe_keys
    )
    SELECT
        TRUE,
        v.value,
        monitoring._scrub_pattern(v.value),
        monitoring._scrub_likes(v.value),
        monitoring._scrub_safe_keys(v.value)
    FROM (
        SELECT coalesce(jsonb_object_agg(d.name, coalesce(s.value, d.default_value)), '{}') AS value
        FROM monitoring.setting_definitions AS d
        LEFT JOIN monitoring.settings AS s ON d.name = s.name
    ) AS v
    ON CONFLICT (only_row) DO UPDATE SET
        value = excluded.value,
        scrub_pattern = excluded.scrub_pattern,
        scrub_likes = excluded.scrub_likes,
        scrub_safe_keys = excluded.scrub_safe_keys;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER settings_snapshot_refresh
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON monitoring.settings
FOR EACH STATEMENT EXECUTE FUNCTION monitoring._refresh_settings_snapshot();

CREATE OR REPLACE TRIGGER settings_snapshot_refresh
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON monitoring.setting_definitions
FOR EACH STATEMENT EXECUTE FUNCTION monitoring._refresh_settings_snapshot();
