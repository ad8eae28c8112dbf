-- Text forms of values that do not depend on the session that writes them. Functions run in
-- the caller's session, with its DateStyle, TimeZone and extra_float_digits; what we store
-- or send must read the same whoever captured it.

-- A time as JSON text in UTC with microseconds (RFC 3339): to_jsonb(timestamptz) would use
-- the session's TimeZone offset.
CREATE OR REPLACE FUNCTION monitoring._json_time(p_at timestamptz)
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.isfinite(p_at)
            THEN pg_catalog.to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        -- infinity and -infinity print the same in every session
        ELSE p_at::text
    END;
$$;

COMMENT ON FUNCTION monitoring._json_time(timestamptz) IS
'p_at as RFC 3339 text in UTC, whatever the session''s TimeZone and DateStyle';

GRANT EXECUTE ON FUNCTION monitoring._json_time(timestamptz)
TO monitoring_reader, monitoring_writer, monitoring_admin;

-- A Prometheus label value as the text format (0.0.4) writes it: backslash, double quote
-- and newline escaped.
CREATE OR REPLACE FUNCTION monitoring._prometheus_label(p_value text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
        p_value, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n');
$$;
