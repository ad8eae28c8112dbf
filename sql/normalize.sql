-- STUB: replaced by the normalize branch (Sentry-style parameterisation) before landing.
CREATE FUNCTION monitoring.normalize_message(p_message text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.regexp_replace(p_message, '\d+', '<int>', 'g');
$$;
