-- The range a setting's value must be in, checked by set_setting (see setting_definitions).

-- Why p_value can not be setting p_name ("must be ..."), or NULL when it can. Defined after
-- set_setting, which calls it: PL/pgSQL looks functions up when it runs.
CREATE FUNCTION monitoring._setting_problem(p_name text, p_value jsonb)
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
