-- Stack traces: which frames are the application's own, and Python traceback text turned into
-- the structured frames SDKs send (oldest call first, like Sentry).

-- A frame is in-app unless it comes from installed packages, the standard library or the
-- interpreter itself. Callers that know better send "in_app" explicitly.
CREATE FUNCTION monitoring.frame_in_app(p_filename text, p_module text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT NOT (
        coalesce(p_filename, '') ~ E'(^|[/\\\\])(site|dist)-packages[/\\\\]'
        -- the standard library: lib/python3.11/... (lib64/ on Fedora and RHEL),
        -- Python311\Lib\... on Windows, and frozen modules
        OR coalesce(p_filename, '') ~ E'(^|[/\\\\])[Ll]ib(64)?[/\\\\]python\\d+(\\.\\d+)?[/\\\\]'
        OR coalesce(p_filename, '') ~ E'(^|[/\\\\])[Pp]ython\\d*[/\\\\][Ll]ib[/\\\\]'
        OR coalesce(p_filename, '') ~ '^<(frozen|string|stdin)'
        OR coalesce(p_module, '') ~ E'^(importlib|runpy|asyncio|concurrent|threading)(\\.|$)'
    );
$$;

COMMENT ON FUNCTION monitoring.frame_in_app(text, text) IS
'Whether a frame belongs to the application: false for site-packages, dist-packages, the '
'standard library and frozen interpreter modules';

-- Parses the text Python prints for an uncaught exception, chained exceptions included, into
-- [{type, value, module, frames: [{filename, abs_path, lineno, function, context_line,
-- in_app}]}], root cause first. Lines it does not recognise are skipped, never an error.
CREATE FUNCTION monitoring.parse_python_traceback(p_text text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_lines text[] := pg_catalog.regexp_split_to_array(coalesce(p_text, ''), E'\\r?\\n');
    v_line text;
    v_match text[];
    v_chain jsonb := '[]';
    v_frames jsonb := '[]';
    v_frame jsonb;
    v_in_trace boolean := false;
    i integer := 1;
    n integer := pg_catalog.array_length(v_lines, 1);
BEGIN
    WHILE i <= coalesce(n, 0) LOOP
        v_line := v_lines[i];
        IF v_line ~ E'^\\s*Traceback \\(most recent call last\\):' THEN
            v_in_trace := true;
            v_frames := '[]';
        ELSIF v_in_trace AND v_line ~ E'^\\s+File "' THEN
            v_match := pg_catalog.regexp_match(
                v_line, E'^\\s+File "(.*)", line (\\d+)(?:, in (.*))?$'
            );
            IF v_match IS NOT NULL THEN
                v_frame := pg_catalog.jsonb_build_object(
                    'filename', pg_catalog.regexp_replace(v_match[1], E'^.*[/\\\\]', ''),
                    'abs_path', v_match[1],
                    'lineno', v_match[2]::bigint,
                    'function', coalesce(v_match[3], '<module>'),
                    'in_app', monitoring.frame_in_app(v_match[1])
                );
                -- The source line follows, indented deeper; carets (^^^^) are not source.
                IF i < n AND v_lines[i + 1] ~ E'^\\s{4,}\\S'
                    AND v_lines[i + 1] !~ E'^\\s+File "'
                    AND v_lines[i + 1] !~ E'^\\s*[\\^~]+\\s*$' THEN
                    i := i + 1;
                    v_frame := v_frame || pg_catalog.jsonb_build_object(
                        'context_line', pg_catalog.btrim(v_lines[i])
                    );
                END IF;
                v_frames := v_frames || pg_catalog.jsonb_build_array(v_frame);
            END IF;
        ELSIF v_in_trace AND v_line ~ E'^[A-Za-z_][\\w.]*(:|$)' THEN
            -- The exception line ends this traceback: "module.Type: value" or "Type".
            v_match := pg_catalog.regexp_match(v_line, E'^([A-Za-z_][\\w.]*)(?::\\s?(.*))?$');
            v_chain := v_chain || pg_catalog.jsonb_build_array(
                pg_catalog.jsonb_build_object(
                    'type', pg_catalog.regexp_replace(v_match[1], E'^.*\\.', ''),
                    'module', substring(v_match[1] FROM E'^(.*)\\.[^.]*$'),
                    'value', coalesce(v_match[2], ''),
                    'frames', v_frames
                )
            );
            v_in_trace := false;
            v_frames := '[]';
        END IF;
        i := i + 1;
    END LOOP;

    -- Text cut off before its exception line still has frames worth keeping.
    IF v_in_trace AND pg_catalog.jsonb_array_length(v_frames) > 0 THEN
        v_chain := v_chain || pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_build_object('type', NULL, 'value', NULL, 'frames', v_frames)
        );
    END IF;
    RETURN v_chain;
END
$$;

COMMENT ON FUNCTION monitoring.parse_python_traceback(text) IS
'Python traceback text as [{type, value, module, frames}], root cause first, frames oldest '
'call first; unrecognised lines are skipped';

-- Keeps the outermost and the innermost frames of an over-long stack, where the entry point
-- and the failure are, and puts a marker frame where frames were dropped.
CREATE FUNCTION monitoring.trim_frames(p_frames jsonb, p_max integer)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_frames IS NULL OR pg_catalog.jsonb_typeof(p_frames) <> 'array'
            OR pg_catalog.jsonb_array_length(p_frames) <= p_max
            THEN p_frames
        ELSE (
            SELECT
                coalesce(
                    pg_catalog.jsonb_agg(f.frame ORDER BY f.ord) FILTER (WHERE f.ord <= p_max / 2),
                    '[]'
                )
                || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                    'function', pg_catalog.format(
                        '[%s frames omitted]',
                        pg_catalog.jsonb_array_length(p_frames) - p_max
                    ),
                    'frames_omitted', pg_catalog.jsonb_array_length(p_frames) - p_max,
                    'in_app', false
                ))
                || coalesce(
                    pg_catalog.jsonb_agg(f.frame ORDER BY f.ord) FILTER (
                        WHERE f.ord > pg_catalog.jsonb_array_length(p_frames) - (p_max + 1) / 2
                    ),
                    '[]'
                )
            FROM pg_catalog.jsonb_array_elements(p_frames) WITH ORDINALITY AS f (frame, ord)
        )
    END;
$$;

COMMENT ON FUNCTION monitoring.trim_frames(jsonb, integer) IS
'At most p_max frames: the outermost and innermost halves, with a marker frame counting '
'the ones dropped between them';

GRANT EXECUTE ON FUNCTION
monitoring.frame_in_app(text, text),
monitoring.parse_python_traceback(text),
monitoring.trim_frames(jsonb, integer)
TO monitoring_reader, monitoring_writer, monitoring_admin;
