-- Arguments as every component checks them: of the JSON type expected, a scalar read as
-- text, JSON text parsed; each error names the argument as the caller knows it
-- (invalid_parameter_value).

-- _expect's check (defined first: a SQL function's body is checked when it is created).
-- p_name is the caller's own name for the value, so errors name what the caller passed.
CREATE OR REPLACE FUNCTION monitoring._expect_checked(p_value jsonb, p_type text, p_name text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> p_type THEN
        RAISE EXCEPTION '% must be a JSON %, not %', p_name, p_type, jsonb_typeof(p_value)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_value;
END
$$;

-- p_value when it is NULL or of JSON type p_type, else an error naming p_name (JSON null is
-- NULL). The plainly right value is answered in SQL inlined into the caller: the first call
-- of a PL/pgSQL function in a transaction sets up each of its expressions, some µs an event.
CREATE OR REPLACE FUNCTION monitoring._expect(p_value jsonb, p_type text, p_name text)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE
        WHEN p_value IS NULL OR pg_catalog.jsonb_typeof(p_value) = p_type THEN p_value
        ELSE monitoring._expect_checked(p_value, p_type, p_name)
    END;
$$;

-- A JSON scalar as text (Sentry reads a release, environment or server name sent as a
-- number as its text); an object or array is an error naming p_name. Inlined as _expect.
CREATE OR REPLACE FUNCTION monitoring._scalar_text(p_value jsonb, p_name text)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE
        WHEN pg_catalog.jsonb_typeof(p_value) IN ('object', 'array')
            THEN monitoring._expect_checked(p_value, 'string', p_name) #>> '{}'
        ELSE p_value #>> '{}'
    END;
$$;

-- JSON text from outside may hold what jsonb refuses: \u0000 and unpaired UTF-16 surrogates
-- (JavaScript and Python produce both). They become U+FFFD instead of failing the capture.
CREATE OR REPLACE FUNCTION monitoring.parse_json(p_text text, p_name text DEFAULT 'p_text')
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_text text := p_text;
BEGIN
    -- LIKE first: over a 4 kB event it takes a third of the regex's time, and most JSON has
    -- no \u escape at all
    IF v_text LIKE E'%\\\\u%' AND v_text ~ E'\\\\u(0000|[dD][89a-fA-F])' THEN
        v_text := regexp_replace(v_text, E'\\\\u0000', E'\\\\ufffd', 'g');
        v_text := regexp_replace(
            v_text, E'\\\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\\\u[dD][c-fC-F][0-9a-fA-F]{2})',
            E'\\\\ufffd', 'g'
        );
        v_text := regexp_replace(
            v_text, E'(?<!\\\\u[dD][89abAB][0-9a-fA-F]{2})\\\\u[dD][c-fC-F][0-9a-fA-F]{2}',
            E'\\\\ufffd', 'g'
        );
    END IF;
    RETURN v_text::jsonb;
EXCEPTION
    WHEN statement_too_complex THEN
        -- PostgreSQL's JSON parser recurses, and stops at max_stack_depth: about 100,000
        -- levels here. That is a bad input, not a server to reconfigure; capture keeps 10.
        RAISE EXCEPTION '% is nested too deeply to read (% characters)', p_name, length(p_text)
            USING ERRCODE = 'invalid_parameter_value',
                HINT = 'pg_monitoring keeps JSON 10 levels deep; send data nested less deeply.';
    WHEN invalid_text_representation OR untranslatable_character THEN
        -- the cast's own error names no argument; its detail says where the text went wrong
        GET STACKED DIAGNOSTICS v_text = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION '% is not valid JSON', p_name
            USING ERRCODE = 'invalid_parameter_value',
                DETAIL = monitoring.truncate_text(v_text, 200);
END
$$;

COMMENT ON FUNCTION monitoring.parse_json(text, text) IS
E'p_text as jsonb, with \\u0000 and unpaired surrogates (which jsonb refuses) made U+FFFD; '
'errors name the text p_name';

GRANT EXECUTE ON FUNCTION monitoring.parse_json(text, text)
TO monitoring_reader, monitoring_writer, monitoring_admin;
