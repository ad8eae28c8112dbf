-- Stack traces: which frames are the application's own, and Python traceback text turned into
-- the structured frames SDKs send (oldest call first, like Sentry).

-- A frame is in-app unless it comes from installed packages, the standard library or the
-- interpreter itself. Callers that know better send "in_app" explicitly.
CREATE OR REPLACE FUNCTION monitoring.frame_in_app(p_filename text, p_module text DEFAULT NULL)
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

-- Keeps the first p_max / 2 and the last (p_max + 1) / 2 elements of an over-long array, where
-- the entry point and the failure are, and puts a marker where the others were: p_marker with
-- p_count_key set to how many were dropped and p_label_key to "[N <p_noun> omitted]". A marker
-- already in the array (an earlier cut) is not kept as an element: what it counted adds to
-- the new count. Time grows with what is kept, not with the array: elements are taken by
-- index, and the markers are found by a jsonpath, in C.
CREATE OR REPLACE FUNCTION monitoring._trim_middle(
    p_items jsonb, p_max integer, p_count_key text, p_label_key text, p_noun text,
    p_marker jsonb DEFAULT '{}'
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_length integer;
    v_head integer := greatest(p_max, 0) / 2;
    v_tail integer := (greatest(p_max, 0) + 1) / 2;
    v_markers jsonb;
    v_omitted numeric;
    v_item jsonb;
    v_before jsonb[] := '{}';
    v_after jsonb[] := '{}';
BEGIN
    IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' OR jsonb_array_length(p_items) <= p_max
        THEN
        RETURN p_items;
    END IF;
    v_length := jsonb_array_length(p_items);
    -- What every marker counted (a count that is no whole number of at least 1 counts one).
    v_markers := jsonb_path_query_array(
        p_items, format('strict $[*] ? (exists(@.%s)).%s', p_count_key, p_count_key)::jsonpath
    );
    v_omitted := v_length - v_head - v_tail - jsonb_array_length(v_markers) + coalesce((
        SELECT sum(CASE
            WHEN jsonb_typeof(m.n) = 'number' AND m.n::numeric >= 1 THEN trunc(m.n::numeric)
            ELSE 1
        END)
        FROM jsonb_array_elements(v_markers) AS m (n)
    ), 0);
    -- A kept marker is no element: what it counted is in v_omitted already, and the element
    -- that was counted as dropped in its place was not.
    FOR v_i IN 0..v_head + v_tail - 1 LOOP
        v_item := p_items -> CASE WHEN v_i < v_head THEN v_i ELSE v_length - v_head - v_tail + v_i END;
        IF jsonb_typeof(v_item) = 'object' AND v_item ? p_count_key THEN
            v_omitted := v_omitted + 1;
        ELSIF v_i < v_head THEN
            v_before := v_before || v_item;
        ELSE
            v_after := v_after || v_item;
        END IF;
    END LOOP;
    RETURN to_jsonb(v_before)
        || jsonb_build_array(p_marker || jsonb_build_object(
            p_label_key, format('[%s %s omitted]', v_omitted, p_noun),
            p_count_key, v_omitted
        ))
        || to_jsonb(v_after);
END
$$;

-- Parses the text Python prints for an uncaught exception, chained exceptions included, into
-- [{type, value, module, frames: [{filename, abs_path, lineno, function, context_line,
-- in_app}]}], root cause first. Lines it does not recognise are skipped, never an error.
-- Any text parses in time bounded by c_max_chars and c_max_lines: of a longer text, only the
-- first and last halves are read, and a marker frame stands for the frames in between (a
-- stack that deep keeps errors.max_frames frames anyway).
CREATE OR REPLACE FUNCTION monitoring.parse_python_traceback(p_text text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    c_max_chars CONSTANT integer := 1000000;
    c_max_lines CONSTANT integer := 2000;
    v_lines text[];
    v_joined integer;  -- with a text cut by characters: the last line of its first half
    v_cut_frames integer;
    n integer;
    v_read_to integer;  -- lines v_read_to + 1 .. v_read_from - 1 are not read
    v_read_from integer;
    v_skipped integer;
    v_middle text;
    v_line text;
    v_match text[];
    v_chain jsonb[] := '{}';
    v_frames jsonb[] := '{}';
    v_frame jsonb;
    v_in_trace boolean := false;
    i integer := 1;
BEGIN
    IF octet_length(p_text) > c_max_chars AND length(p_text) > c_max_chars THEN
        -- the frames of the middle, counted without a regex: as Python prints them
        v_middle := substr(p_text, c_max_chars / 2 + 1, length(p_text) - c_max_chars);
        v_cut_frames := (octet_length(v_middle) - octet_length(replace(v_middle, E'\n  File "', '')))
            / 9;
        v_lines := string_to_array(left(p_text, c_max_chars / 2), E'\n');
        v_joined := cardinality(v_lines);
        v_lines := v_lines || string_to_array(right(p_text, c_max_chars / 2), E'\n');
    ELSE
        -- string_to_array, not a regex split: several times faster on a long text
        v_lines := string_to_array(coalesce(p_text, ''), E'\n');
    END IF;
    n := coalesce(cardinality(v_lines), 0);
    IF v_joined IS NOT NULL THEN
        v_read_to := least(c_max_lines / 2, v_joined);
        v_read_from := greatest(n - c_max_lines / 2 + 1, v_joined + 1);
    ELSIF n > c_max_lines THEN
        v_read_to := c_max_lines / 2;
        v_read_from := n - c_max_lines / 2 + 1;
    ELSE
        v_read_to := n;
    END IF;

    WHILE i <= n LOOP
        IF i = v_read_to + 1 THEN
            -- The middle, not read: one marker frame for its frames, in a traceback begun
            -- before or in it.
            v_middle := array_to_string(v_lines[i:v_read_from - 1], E'\n');
            v_skipped := regexp_count(v_middle, E'^[ \\t]+File "', 1, 'n')
                + coalesce(v_cut_frames, 0);
            v_in_trace := v_in_trace
                OR v_middle ~ E'(^|\\n)[ \\t]*Traceback \\(most recent call last\\):';
            IF v_in_trace AND v_skipped > 0 THEN
                v_frames := v_frames || jsonb_build_object(
                    'function', format('[%s frames omitted]', v_skipped),
                    'frames_omitted', v_skipped,
                    'in_app', false
                );
            END IF;
            i := v_read_from;
            CONTINUE WHEN i > n;
        END IF;
        v_line := rtrim(v_lines[i], E'\r');
        IF v_line ~ E'^\\s*Traceback \\(most recent call last\\):' THEN
            v_in_trace := true;
            v_frames := '{}';
        ELSIF v_in_trace AND v_line ~ E'^\\s+File "' THEN
            v_match := regexp_match(v_line, E'^\\s+File "(.*)", line (\\d+)(?:, in (.*))?$');
            IF v_match IS NOT NULL THEN
                v_frame := jsonb_build_object(
                    'filename', regexp_replace(v_match[1], E'^.*[/\\\\]', ''),
                    'abs_path', v_match[1],
                    -- a number too long for bigint is no line number
                    'lineno', CASE WHEN length(v_match[2]) <= 18 THEN v_match[2]::bigint END,
                    'function', coalesce(v_match[3], '<module>'),
                    'in_app', monitoring.frame_in_app(v_match[1])
                );
                -- The source line follows, indented deeper; carets (^^^^) are not source.
                IF i < n AND i <> v_read_to AND v_lines[i + 1] ~ E'^\\s{4,}\\S'
                    AND v_lines[i + 1] !~ E'^\\s+File "'
                    AND v_lines[i + 1] !~ E'^\\s*[\\^~]+\\s*$' THEN
                    i := i + 1;
                    v_frame := v_frame || jsonb_build_object(
                        'context_line', btrim(rtrim(v_lines[i], E'\r'))
                    );
                END IF;
                v_frames := v_frames || v_frame;
            END IF;
        ELSIF v_in_trace AND v_line ~ E'^[A-Za-z_][\\w.]*(:|$)' THEN
            -- The exception line ends this traceback: "module.Type: value" or "Type".
            v_match := regexp_match(v_line, E'^([A-Za-z_][\\w.]*)(?::\\s?(.*))?$');
            v_chain := v_chain || jsonb_build_object(
                'type', regexp_replace(v_match[1], E'^.*\\.', ''),
                'module', substring(v_match[1] FROM E'^(.*)\\.[^.]*$'),
                'value', coalesce(v_match[2], ''),
                'frames', to_jsonb(v_frames)
            );
            v_in_trace := false;
            v_frames := '{}';
        END IF;
        i := i + 1;
    END LOOP;

    -- Text cut off before its exception line still has frames worth keeping.
    IF v_in_trace AND cardinality(v_frames) > 0 THEN
        v_chain := v_chain || jsonb_build_object(
            'type', NULL, 'value', NULL, 'frames', to_jsonb(v_frames)
        );
    END IF;
    RETURN to_jsonb(v_chain);
END
$$;

COMMENT ON FUNCTION monitoring.parse_python_traceback(text) IS
'Python traceback text as [{type, value, module, frames}], root cause first, frames oldest '
'call first; unrecognised lines are skipped; of a very long text, the first and last parts';

-- Keeps the outermost and the innermost frames of an over-long stack, where the entry point
-- and the failure are, and puts a marker frame where frames were dropped.
CREATE OR REPLACE FUNCTION monitoring.trim_frames(p_frames jsonb, p_max integer)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT monitoring._trim_middle(
        p_frames, p_max, 'frames_omitted', 'function', 'frames', '{"in_app": false}'
    );
$$;

COMMENT ON FUNCTION monitoring.trim_frames(jsonb, integer) IS
'At most p_max frames: the outermost and innermost halves, with a marker frame counting '
'the ones dropped between them';

GRANT EXECUTE ON FUNCTION
monitoring.frame_in_app(text, text),
monitoring.parse_python_traceback(text),
monitoring.trim_frames(jsonb, integer)
TO monitoring_reader, monitoring_writer, monitoring_admin;
