-- pg_monitoring 0.1.0 -> 0.2.0 (in development).
--
-- Components new in this version are included whole; changes to 0.1.0 objects are written
-- out here. tests/test_upgrade.py requires the result to equal a fresh 0.2.0 install.

-- Settings have ranges (settings.sql, settings_check.sql).
ALTER TABLE monitoring.setting_definitions
ADD COLUMN min_value numeric,
ADD COLUMN max_value numeric,
ADD COLUMN fractional boolean NOT NULL DEFAULT FALSE;

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

-- @include ../settings_check.sql

-- Refusals quote at most 100 characters of what they refuse (settings.sql).
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

-- @include ../settings_snapshot.sql
-- @include ../formats.sql
-- @include ../normalize.sql
-- @include ../stack_traces.sql
-- @include ../scrubbing.sql
-- @include ../limits.sql
-- @include ../fingerprint.sql
-- @include ../errors.sql
-- @include ../issues.sql
-- @include ../capture.sql
-- @include ../alerts.sql
-- @include ../maintenance.sql
-- @include ../cache.sql
-- @include ../privileges.sql
