-- The settings functions; their tables are in settings.sql. CREATE OR REPLACE: the upgrade
-- from 0.1.0, which created them, includes this file as it is.

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
