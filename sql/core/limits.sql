-- Size limits: text and JSON cut down with a visible marker, never refused (an event's error
-- matters more than its full payload). The limits themselves are settings (errors/tables.sql).

-- PL/pgSQL: a SQL function that PostgreSQL can not inline is parsed again by every query
-- that calls it, and capture calls this one on every event. Error messages quote a value
-- sent cut by it to 100 characters: a message goes to the server's log too, and a writer may
-- send megabytes.
CREATE OR REPLACE FUNCTION monitoring.truncate_text(p_text text, p_max integer)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_length integer;
BEGIN
    -- octet_length first: it is read from the header, length counts every character
    IF p_text IS NULL OR octet_length(p_text) <= p_max THEN
        RETURN p_text;
    END IF;
    v_length := length(p_text);
    IF v_length <= p_max THEN
        RETURN p_text;
    END IF;
    RETURN left(p_text, p_max) || format('... [truncated: %s more characters]', v_length - p_max);
END
$$;

COMMENT ON FUNCTION monitoring.truncate_text(text, integer) IS
'p_text cut to p_max characters with a marker saying how many were dropped';

-- A value a writer sends that goes into an index (service, environment, release, a user's
-- key): a btree entry holds at most ~2.7 kB, and one too long would fail the capture, or worse
-- a later maintenance step. Over p_max characters it is cut and marked with its md5, so two
-- long values that share their start stay two values. Inlined: octet_length is read from
-- the value's header, so the common short value costs one comparison.
CREATE OR REPLACE FUNCTION monitoring._index_text(p_text text, p_max integer)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.octet_length(p_text) <= p_max OR pg_catalog.length(p_text) <= p_max
            THEN p_text
        ELSE pg_catalog.left(p_text, p_max - 47) || '... [cut; md5 ' || pg_catalog.md5(p_text) || ']'
    END;
$$;

COMMENT ON FUNCTION monitoring._index_text(text, integer) IS
'p_text, or over p_max characters its start marked with the md5 of the whole';

-- JSON as deep and as long as we keep it: strings (keys too) over p_max_length characters are
-- cut as truncate_text cuts them, and an object or array below p_depth levels becomes a
-- string saying what it was. Callers run it only when a cheap test says it may change
-- something (errors/ingest.sql), and on documents already capped in bytes.
-- Scrubbing runs on what this keeps, and the part of a key cut off may be what named a
-- secret (a 9000-character key ending in _password): the value of a cut key, or of a
-- [name, value] pair whose name is cut, is not kept.
CREATE OR REPLACE FUNCTION monitoring.bound_json(
    p_value jsonb, p_max_length integer, p_depth integer DEFAULT 10
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    c_dropped CONSTANT jsonb := '"[dropped: its name was cut]"';
    v_text text;
BEGIN
    CASE jsonb_typeof(p_value)
        WHEN 'string' THEN
            v_text := p_value #>> '{}';
            IF octet_length(v_text) > p_max_length THEN
                RETURN to_jsonb(monitoring.truncate_text(v_text, p_max_length));
            END IF;
            RETURN p_value;
        WHEN 'object' THEN
            IF p_depth < 1 THEN
                RETURN to_jsonb(format(
                    '[nested too deep: an object of %s keys]',
                    (SELECT count(*) FROM jsonb_object_keys(p_value))
                ));
            END IF;
            RETURN (
                SELECT coalesce(jsonb_object_agg(
                    monitoring.truncate_text(e.key, p_max_length),
                    CASE
                        WHEN octet_length(e.key) > p_max_length
                            AND length(e.key) > p_max_length
                            THEN c_dropped
                        WHEN jsonb_typeof(e.value) IN ('object', 'array', 'string')
                            THEN monitoring.bound_json(e.value, p_max_length, p_depth - 1)
                        ELSE e.value
                    END
                ), '{}')
                FROM jsonb_each(p_value) AS e
            );
        WHEN 'array' THEN
            IF p_depth < 1 THEN
                RETURN to_jsonb(format(
                    '[nested too deep: an array of %s items]', jsonb_array_length(p_value)
                ));
            END IF;
            v_text := CASE WHEN jsonb_array_length(p_value) = 2 THEN p_value ->> 0 END;
            RETURN (
                SELECT coalesce(jsonb_agg(
                    CASE
                        WHEN e.ord = 2 AND jsonb_typeof(p_value -> 0) = 'string'
                            AND octet_length(v_text) > p_max_length
                            AND length(v_text) > p_max_length
                            THEN c_dropped
                        WHEN jsonb_typeof(e.value) IN ('object', 'array', 'string')
                            THEN monitoring.bound_json(e.value, p_max_length, p_depth - 1)
                        ELSE e.value
                    END
                    ORDER BY e.ord
                ), '[]')
                FROM jsonb_array_elements(p_value) WITH ORDINALITY AS e (value, ord)
            );
        ELSE
            RETURN p_value;
    END CASE;
END
$$;

COMMENT ON FUNCTION monitoring.bound_json(jsonb, integer, integer) IS
'p_value with strings over p_max_length characters cut, and what is nested below p_depth '
'levels replaced by a string saying what it was';

-- Keeps the first keys of an oversize object while they fit and says what was dropped.
-- PL/pgSQL so the common case (it fits) is one cheap test, not a query planned per call.
CREATE OR REPLACE FUNCTION monitoring.cap_object(p_value jsonb, p_max_bytes integer)
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
CREATE OR REPLACE FUNCTION monitoring.cap_array_newest(
    p_value jsonb, p_max_items integer, p_max_bytes integer
)
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
monitoring._index_text(text, integer),
monitoring.bound_json(jsonb, integer, integer),
monitoring.cap_object(jsonb, integer),
monitoring.cap_array_newest(jsonb, integer, integer)
TO monitoring_reader, monitoring_writer, monitoring_admin;
