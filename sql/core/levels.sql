-- Levels: Sentry's (debug, info, warning, error, fatal), for events and the channels'
-- min_level.

-- _level's check: Sentry's levels; "warn" and "critical" are what Python's logging calls
-- two of them.
CREATE OR REPLACE FUNCTION monitoring._level_checked(p_level text, p_name text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_level text := lower(btrim(coalesce(p_level, 'error')));
BEGIN
    v_level := CASE v_level WHEN 'warn' THEN 'warning' WHEN 'critical' THEN 'fatal'
        ELSE v_level END;
    IF v_level NOT IN ('fatal', 'error', 'warning', 'info', 'debug') THEN
        RAISE EXCEPTION '% must be one of fatal, error, warning, info, debug; not %',
            p_name, quote_literal(monitoring.truncate_text(p_level, 100))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_level;
END
$$;

-- p_level as one of Sentry's levels (NULL is error), else an error naming p_name; inlined
-- as _expect.
CREATE OR REPLACE FUNCTION monitoring._level(p_level text, p_name text)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE
        WHEN p_level IN ('error', 'warning', 'info', 'fatal', 'debug') THEN p_level
        ELSE monitoring._level_checked(p_level, p_name)
    END;
$$;

CREATE OR REPLACE FUNCTION monitoring._level_rank(p_level text)
RETURNS integer
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT pg_catalog.array_position(ARRAY['debug', 'info', 'warning', 'error', 'fatal'], p_level);
$$;
