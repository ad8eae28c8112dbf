-- An exception chain cut to the errors.max_* settings (core/limits.sql cuts the rest of an
-- event). The common case, nothing to cut, costs one inlined test.

-- One frame as _limit_exceptions keeps it: strings cut to p_max_length characters, what is
-- nested more than 10 levels below the frame replaced by a marker, the 10 source lines
-- nearest the failing one on each side, and its variables capped at p_vars_bytes.
CREATE OR REPLACE FUNCTION monitoring._limit_frame(
    p_frame jsonb, p_max_length integer, p_vars_bytes integer
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_pre jsonb := p_frame -> 'pre_context';
    v_post jsonb := p_frame -> 'post_context';
BEGIN
    IF jsonb_typeof(p_frame) <> 'object' THEN
        RETURN monitoring.bound_json(p_frame, p_max_length);
    END IF;
    IF jsonb_typeof(v_pre) = 'array' AND jsonb_array_length(v_pre) > 10 THEN
        v_pre := jsonb_path_query_array(
            v_pre, '$[$from to last]', jsonb_build_object('from', jsonb_array_length(v_pre) - 10)
        );
    END IF;
    IF jsonb_typeof(v_post) = 'array' AND jsonb_array_length(v_post) > 10 THEN
        v_post := jsonb_path_query_array(v_post, '$[0 to 9]');
    END IF;
    RETURN monitoring.bound_json(p_frame - ARRAY['pre_context', 'post_context', 'vars'], p_max_length, 11)
        || jsonb_strip_nulls(jsonb_build_object(
            'pre_context', monitoring.bound_json(v_pre, p_max_length),
            'post_context', monitoring.bound_json(v_post, p_max_length),
            'vars', monitoring.bound_json(
                CASE WHEN p_vars_bytes IS NULL THEN p_frame -> 'vars'
                    ELSE monitoring.cap_object(p_frame -> 'vars', p_vars_bytes)
                END,
                p_max_length
            )
        ));
END
$$;

-- _limit_exceptions when there may be something to cut: at most errors.max_exceptions
-- exceptions and errors.max_frames frames each (the outer and inner halves), every string cut
-- to errors.max_message_length (a stack kept as text to errors.max_context_bytes), nothing
-- nested deeper than 10 levels, and the local variables of each frame capped when the chain
-- is over errors.max_context_bytes. A chain still over errors.max_stack_bytes loses, in
-- turn: its frames' variables and source context, half of its middle frames until it fits
-- (or one frame is left), and what is over 256 characters in any string.
CREATE OR REPLACE FUNCTION monitoring._limit_exceptions_cut(p_chain jsonb, p_cfg jsonb)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_max_frames integer := (p_cfg ->> 'errors.max_frames')::integer;
    v_max_length integer := (p_cfg ->> 'errors.max_message_length')::integer;
    v_max_bytes integer := (p_cfg ->> 'errors.max_context_bytes')::integer;
    v_budget integer := (p_cfg ->> 'errors.max_stack_bytes')::integer;
    v_vars_bytes integer;
    v_chain jsonb;
    v_size integer;
BEGIN
    IF jsonb_typeof(p_chain) <> 'array' THEN
        RETURN monitoring.bound_json(p_chain, v_max_length);
    END IF;
    v_chain := monitoring._trim_middle(
        p_chain, (p_cfg ->> 'errors.max_exceptions')::integer,
        'exceptions_omitted', 'type', 'exceptions'
    );
    v_vars_bytes := CASE WHEN pg_column_size(v_chain) > v_max_bytes THEN v_max_bytes / 64 END;
    v_chain := (
        SELECT jsonb_agg(
            CASE WHEN jsonb_typeof(e.exc) <> 'object' OR e.exc ? 'exceptions_omitted'
                THEN monitoring.bound_json(e.exc, v_max_length)
                ELSE monitoring.bound_json(e.exc - ARRAY['frames', 'raw_stacktrace'], v_max_length)
                    || jsonb_strip_nulls(jsonb_build_object(
                        -- characters of up to 4 bytes each
                        'raw_stacktrace', monitoring.truncate_text(
                            e.exc ->> 'raw_stacktrace', v_max_bytes / 4
                        ),
                        'frames', CASE
                            WHEN jsonb_typeof(e.exc -> 'frames') = 'array' THEN (
                                SELECT coalesce(jsonb_agg(
                                    monitoring._limit_frame(f.frame, v_max_length, v_vars_bytes)
                                    ORDER BY f.ord
                                ), '[]')
                                FROM jsonb_array_elements(
                                    monitoring.trim_frames(e.exc -> 'frames', v_max_frames)
                                ) WITH ORDINALITY AS f (frame, ord)
                            )
                            ELSE monitoring.bound_json(e.exc -> 'frames', v_max_length)
                        END
                    ))
            END
            ORDER BY e.ord
        )
        FROM jsonb_array_elements(v_chain) WITH ORDINALITY AS e (exc, ord)
    );

    v_size := pg_column_size(v_chain);
    IF v_size <= v_budget THEN
        RETURN v_chain;
    END IF;
    v_chain := (
        SELECT jsonb_agg(
            CASE WHEN jsonb_typeof(e.exc -> 'frames') = 'array' THEN
                jsonb_set(e.exc, '{frames}', (
                    SELECT coalesce(jsonb_agg(
                        CASE WHEN jsonb_typeof(f.frame) = 'object'
                            THEN f.frame - ARRAY['vars', 'pre_context', 'post_context']
                            ELSE f.frame
                        END
                        ORDER BY f.ord
                    ), '[]')
                    FROM jsonb_array_elements(e.exc -> 'frames') WITH ORDINALITY AS f (frame, ord)
                ))
                || jsonb_build_object('_truncated', format(
                    'frame variables and source context dropped: the chain had %s bytes, over '
                    'errors.max_stack_bytes (%s)', v_size, v_budget
                ))
                ELSE e.exc
            END
            ORDER BY e.ord
        )
        FROM jsonb_array_elements(v_chain) WITH ORDINALITY AS e (exc, ord)
    );
    WHILE pg_column_size(v_chain) > v_budget AND v_max_frames > 1 LOOP
        v_max_frames := v_max_frames / 2;
        v_chain := (
            SELECT jsonb_agg(
                CASE WHEN jsonb_typeof(e.exc -> 'frames') = 'array'
                    THEN jsonb_set(
                        e.exc, '{frames}', monitoring.trim_frames(e.exc -> 'frames', v_max_frames)
                    )
                    ELSE e.exc
                END
                ORDER BY e.ord
            )
            FROM jsonb_array_elements(v_chain) WITH ORDINALITY AS e (exc, ord)
        );
    END LOOP;
    IF pg_column_size(v_chain) > v_budget THEN
        v_chain := monitoring.bound_json(v_chain, 256, 20);
    END IF;
    RETURN v_chain;
END
$$;

-- Cuts an exception chain to the limits (_limit_exceptions_cut). p_cfg is the settings in
-- force (settings_snapshot). The common case, nothing to cut, is decided here, in SQL
-- inlined as _stack_trace_chain's: one exception, smaller than the longest string allowed
-- (so no string in it is too long), few enough frames, nothing nested deeper than the
-- limit allows below a frame (the jsonpath finds an item 15 levels down).
CREATE OR REPLACE FUNCTION monitoring._limit_exceptions(p_chain jsonb, p_cfg jsonb)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN p_chain IS NULL THEN NULL
        WHEN pg_catalog.pg_column_size(p_chain) <= least(
            (p_cfg ->> 'errors.max_context_bytes')::integer,
            (p_cfg ->> 'errors.max_message_length')::integer
        )
            AND pg_catalog.jsonb_array_length(p_chain) = 1
            AND coalesce(pg_catalog.jsonb_array_length(
                CASE WHEN pg_catalog.jsonb_typeof(p_chain -> 0 -> 'frames') = 'array'
                        THEN p_chain -> 0 -> 'frames'
                END
            ), 0) <= (p_cfg ->> 'errors.max_frames')::integer
            AND NOT pg_catalog.jsonb_path_exists(p_chain, 'strict $.**{15}')
            THEN p_chain
        ELSE monitoring._limit_exceptions_cut(p_chain, p_cfg)
    END;
$$;
