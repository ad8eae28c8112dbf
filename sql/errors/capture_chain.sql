-- A stack trace in any form capture takes (frames, {"frames"}, {"values"}, Sentry exception
-- values, Python traceback text, other stack text) as one chain of exceptions, root cause
-- first: [{type, value, module, mechanism, frames}].

-- Sentry exception values, or our own chain, as [{type, value, module, mechanism, frames}].
-- Of a chain over c_max exceptions (the most errors.max_exceptions may keep), only the first
-- and last halves are read, with a marker between, so that a chain of any length costs what
-- c_max exceptions cost; _limit_exceptions cuts it to the setting.
CREATE OR REPLACE FUNCTION monitoring._exception_chain(p_values jsonb, p_name text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    c_max CONSTANT integer := 100;
    v_length integer;
    v_chain jsonb := '[]';
    v_exc jsonb;
    v_frames jsonb;
    v_i integer := 0;
BEGIN
    -- JSON null is no exception listed, as SQL NULL is (and not an error about a scalar)
    IF monitoring._expect(p_values, 'array', p_name) IS NULL THEN
        RETURN '[]';
    END IF;
    v_length := jsonb_array_length(p_values);
    -- An index loop, not queries over jsonb_array_elements (each would start an executor);
    -- the frames go in last, by jsonb_set, not copied again by the build.
    WHILE v_i < v_length LOOP
        IF v_length > c_max AND v_i = c_max / 2 THEN
            v_chain := v_chain || jsonb_build_array(jsonb_build_object(
                'type', format('[%s exceptions omitted]', v_length - c_max),
                'exceptions_omitted', v_length - c_max
            ));
            v_i := v_length - c_max / 2;
        END IF;
        v_exc := p_values -> v_i;
        v_frames := coalesce(v_exc -> 'stacktrace' -> 'frames', v_exc -> 'frames');
        IF jsonb_typeof(v_exc) <> 'object' OR jsonb_typeof(v_frames) NOT IN ('array', 'null') THEN
            RAISE EXCEPTION '% must hold objects, each with frames as an array', p_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_chain := v_chain || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
            'type', v_exc ->> 'type',
            'value', v_exc ->> 'value',
            'module', v_exc ->> 'module',
            'mechanism', v_exc -> 'mechanism'
        )));
        IF jsonb_typeof(v_frames) = 'array' THEN
            -- stripped of nulls, as the rest of the exception is
            v_chain := jsonb_set(
                v_chain, ARRAY[(jsonb_array_length(v_chain) - 1)::text, 'frames'],
                jsonb_strip_nulls(v_frames)
            );
        END IF;
        v_i := v_i + 1;
    END LOOP;
    RETURN v_chain;
END
$$;

-- _stack_trace_chain for all other forms: traceback text, {"frames"}, {"values"}, chains.
-- Defined first: a SQL function's body is checked when it is created.
CREATE OR REPLACE FUNCTION monitoring._stack_trace_chain_parse(
    p_stack jsonb, p_type text, p_value text
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_kind text := jsonb_typeof(p_stack);
    v_chain jsonb;
BEGIN
    CASE
        WHEN v_kind IS NULL OR v_kind = 'null' THEN
            v_chain := '[]';
        WHEN v_kind = 'string' THEN
            v_chain := monitoring.parse_python_traceback(p_stack #>> '{}');
            -- Text that is no Python traceback (Java, Go, a log excerpt) is kept as sent, for
            -- people to read; it does not group (the type and message do).
            IF v_chain = '[]' AND p_stack #>> '{}' ~ E'\\S' THEN
                v_chain := jsonb_build_array(jsonb_build_object('raw_stacktrace', p_stack));
            END IF;
        WHEN v_kind = 'object' AND p_stack ? 'values' THEN
            v_chain := monitoring._exception_chain(p_stack -> 'values', 'p_stack_trace.values');
        WHEN v_kind = 'object' AND p_stack ? 'frames' THEN
            v_chain := monitoring._exception_chain(
                jsonb_build_array(p_stack), 'p_stack_trace'
            );
        WHEN v_kind = 'array' THEN
            v_chain := monitoring._exception_chain(p_stack, 'p_stack_trace');
        ELSE
            RAISE EXCEPTION 'p_stack_trace must be frames, {"frames": [...]}, {"values": [...]} or traceback text, not a JSON %',
                v_kind
                USING ERRCODE = 'invalid_parameter_value';
    END CASE;

    IF jsonb_array_length(v_chain) = 0 THEN
        v_chain := '[{}]';
    END IF;
    RETURN jsonb_set(
        v_chain, '{-1}',
        (v_chain -> -1) || jsonb_strip_nulls(jsonb_build_object('type', p_type, 'value', p_value))
    );
END
$$;

-- capture_error's p_stack_trace, in any of its forms, as a chain whose last (raised)
-- exception carries p_exception_type and p_message when they are given.
--
-- Frames only, the common case, in this SQL function, which PostgreSQL inlines into the
-- caller's expression: the first call of a PL/pgSQL function in a transaction sets up each
-- of its expressions, some µs every event. Frames that are no object are kept and do not
-- count for grouping. An array is a chain of exceptions instead when any element is an
-- object with an exception's keys (a jsonpath, not a subquery, which would make the
-- caller's expression a query with an executor start-up).
-- The trace goes in last, by jsonb_set: each jsonb function or operator applied to a value
-- holding the trace copies the whole of it again (two || cost 60 µs more, and
-- jsonb_build_array around jsonb_build_object 10 µs more, for a 2.4 kB trace).
-- STABLE as jsonb_build_object is: a SQL function declared IMMUTABLE over a STABLE one is
-- not inlined, and is then planned on every call.
CREATE OR REPLACE FUNCTION monitoring._stack_trace_chain(p_stack jsonb, p_type text, p_value text)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN pg_catalog.jsonb_typeof(p_stack) = 'array' AND NOT pg_catalog.jsonb_path_exists(
            p_stack,
            'strict $[*] ? (@.type() == "object" '
            '&& (exists(@."type") || exists(@.stacktrace) || exists(@.value)))'
        )
            THEN pg_catalog.jsonb_set(
                pg_catalog.jsonb_build_array(pg_catalog.jsonb_strip_nulls(
                    pg_catalog.jsonb_build_object('type', p_type, 'value', p_value)
                )),
                '{0,frames}',
                p_stack
            )
        ELSE monitoring._stack_trace_chain_parse(p_stack, p_type, p_value)
    END;
$$;
