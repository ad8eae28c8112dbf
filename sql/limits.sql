-- Size limits for captured data. An oversize event is stored cut down with a visible marker,
-- never refused: the error it reports matters more than its full payload.

INSERT INTO monitoring.setting_definitions (name, default_value, description) VALUES
(
    'errors.max_message_length', '8192',
    'Characters kept of a message or exception value; the rest is cut with a marker'
),
(
    'errors.max_frames', '100',
    'Frames kept per exception: the outermost and innermost halves, with a marker between'
),
(
    'errors.max_context_bytes', '65536',
    'Bytes kept of the context, tags, user and other event data, each'
),
(
    'errors.max_breadcrumbs', '100',
    'Breadcrumbs kept per event, the newest'
);

-- PL/pgSQL: a SQL function that PostgreSQL can not inline is parsed again by every query
-- that calls it, and capture calls this one on every event.
CREATE FUNCTION monitoring.truncate_text(p_text text, p_max integer)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    IF length(p_text) <= p_max OR p_text IS NULL THEN
        RETURN p_text;
    END IF;
    RETURN left(p_text, p_max)
        || format('... [truncated: %s more characters]', length(p_text) - p_max);
END
$$;

COMMENT ON FUNCTION monitoring.truncate_text(text, integer) IS
'p_text cut to p_max characters with a marker saying how many were dropped';

-- Keeps the first keys of an oversize object while they fit and says what was dropped.
-- PL/pgSQL so the common case (it fits) is one cheap test, not a query planned per call.
CREATE FUNCTION monitoring.cap_object(p_value jsonb, p_max_bytes integer)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    -- the stored (binary) size: no text rendering on the common path
    IF p_value IS NULL OR pg_column_size(p_value) <= p_max_bytes THEN
        RETURN p_value;
    END IF;
    IF jsonb_typeof(p_value) <> 'object' THEN
        RETURN jsonb_build_object(
            '_truncated', format(
                'a %s of %s bytes, over the limit of %s',
                jsonb_typeof(p_value), pg_column_size(p_value), p_max_bytes
            )
        );
    END IF;
    RETURN (
        SELECT coalesce(jsonb_object_agg(k.key, k.value) FILTER (
            -- room is left for the marker itself
            WHERE k.running <= p_max_bytes - 200
        ), '{}')
        || jsonb_build_object(
            '_truncated', format(
                'kept %s of %s keys: the object had %s bytes, over the limit of %s',
                count(*) FILTER (WHERE k.running <= p_max_bytes - 200),
                count(*), pg_column_size(p_value), p_max_bytes
            )
        )
        FROM (
            SELECT
                e.key,
                e.value,
                sum(pg_column_size(e.value) + octet_length(e.key) + 8)
                    OVER (ORDER BY e.ord) AS running
            FROM jsonb_each(p_value) WITH ORDINALITY AS e (key, value, ord)
        ) AS k
    );
END
$$;

COMMENT ON FUNCTION monitoring.cap_object(jsonb, integer) IS
'p_value if it fits in p_max_bytes; else its first keys that fit plus a _truncated marker';

-- Breadcrumbs lead up to the error: the newest matter most. What is dropped is said by a
-- breadcrumb of its own, first (in the place of the oldest), as the frames' marker does.
CREATE FUNCTION monitoring.cap_array_newest(p_value jsonb, p_max_items integer, p_max_bytes integer)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_kept jsonb;
    v_dropped integer;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) <> 'array'
        OR (jsonb_array_length(p_value) <= p_max_items AND pg_column_size(p_value) <= p_max_bytes)
        THEN
        RETURN p_value;
    END IF;
    SELECT coalesce(
        jsonb_agg(k.value ORDER BY k.ord) FILTER (
            -- room is left for the marker itself
            WHERE k.rank <= p_max_items
                AND k.running <= p_max_bytes - least(200, p_max_bytes / 2)
        ),
        '[]'
    )
    INTO v_kept
    FROM (
        SELECT
            e.value,
            e.ord,
            row_number() OVER (ORDER BY e.ord DESC) AS rank,
            sum(octet_length(e.value::text) + 2) OVER (ORDER BY e.ord DESC) AS running
        FROM jsonb_array_elements(p_value) WITH ORDINALITY AS e (value, ord)
    ) AS k;
    v_dropped := jsonb_array_length(p_value) - jsonb_array_length(v_kept);
    IF v_dropped = 0 THEN
        RETURN p_value;
    END IF;
    RETURN jsonb_build_array(jsonb_build_object(
        'type', 'default',
        'category', 'pg_monitoring.truncated',
        'level', 'warning',
        'message', format(
            '[%s older entries omitted (%s sent; the limit is %s entries or %s bytes)]',
            v_dropped, jsonb_array_length(p_value), p_max_items, p_max_bytes
        )
    )) || v_kept;
END
$$;

COMMENT ON FUNCTION monitoring.cap_array_newest(jsonb, integer, integer) IS
'The last p_max_items elements of p_value that fit in p_max_bytes, in their order, after a '
'first element saying how many older ones were dropped';

GRANT EXECUTE ON FUNCTION
monitoring.truncate_text(text, integer),
monitoring.cap_object(jsonb, integer),
monitoring.cap_array_newest(jsonb, integer, integer)
TO monitoring_reader, monitoring_writer, monitoring_admin;
