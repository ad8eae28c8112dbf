-- Levels: Sentry's (debug, info, warning, error, fatal), for events and the channels'
-- min_level.

-- The levels, least severe first: the one list of them. Events take one (_level), a
-- channel's min_level is one (a CHECK on alert_channels), channels compare them by their
-- place (_level_rank), and clients read them here. A SQL function with a constant body:
-- PostgreSQL inlines it, so where it is used it costs what the array written out would.
CREATE OR REPLACE FUNCTION monitoring.levels()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT ARRAY['debug', 'info', 'warning', 'error', 'fatal'];
$$;

COMMENT ON FUNCTION monitoring.levels() IS
'The levels an event or a channel''s min_level may have, least severe first (Sentry''s)';

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
    IF NOT v_level = ANY(monitoring.levels()) THEN
        -- most severe first, as people list them
        RAISE EXCEPTION '% must be one of %; not %',
            p_name,
            array_to_string(ARRAY(
                SELECT l.level
                FROM unnest(monitoring.levels()) WITH ORDINALITY AS l (level, rank)
                ORDER BY l.rank DESC
            ), ', '),
            quote_literal(monitoring.truncate_text(p_level, 100))
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
        WHEN p_level = ANY(monitoring.levels()) THEN p_level
        ELSE monitoring._level_checked(p_level, p_name)
    END;
$$;

CREATE OR REPLACE FUNCTION monitoring._level_rank(p_level text)
RETURNS integer
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT pg_catalog.array_position(monitoring.levels(), p_level);
$$;

GRANT EXECUTE ON FUNCTION monitoring.levels()
TO monitoring_reader, monitoring_writer, monitoring_admin;
