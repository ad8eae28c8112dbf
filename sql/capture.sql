-- Capturing errors: capture_error, capture_message, capture_event (Sentry's event JSON) and
-- capture_events (a batch). They validate, cut oversize data, scrub, fingerprint, and store
-- the event in one statement's transaction: an event is stored whole or not at all.
--
-- They are SECURITY DEFINER because monitoring_writer may capture errors but not read them.

-- _expect's check (defined first: a SQL function's body is checked when it is created).
-- p_name is the caller's own name for the value, so errors name what the caller passed.
CREATE FUNCTION monitoring._expect_checked(p_value jsonb, p_type text, p_name text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> p_type THEN
        RAISE EXCEPTION '% must be a JSON %, not %', p_name, p_type, jsonb_typeof(p_value)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_value;
END
$$;

-- _level's check: Sentry's levels; "warn" and "critical" are what Python's logging calls
-- two of them.
CREATE FUNCTION monitoring._level_checked(p_level text, p_name text)
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

-- p_value when it is NULL or of JSON type p_type, else an error naming p_name (JSON null is
-- NULL). The plainly right value is answered in SQL inlined into the caller: the first call
-- of a PL/pgSQL function in a transaction sets up each of its expressions, some µs an event.
CREATE FUNCTION monitoring._expect(p_value jsonb, p_type text, p_name text)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE
        WHEN p_value IS NULL OR pg_catalog.jsonb_typeof(p_value) = p_type THEN p_value
        ELSE monitoring._expect_checked(p_value, p_type, p_name)
    END;
$$;

-- A JSON scalar as text (Sentry reads a release, environment or server name sent as a
-- number as its text); an object or array is an error naming p_name. Inlined as _expect.
CREATE FUNCTION monitoring._scalar_text(p_value jsonb, p_name text)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE
        WHEN pg_catalog.jsonb_typeof(p_value) IN ('object', 'array')
            THEN monitoring._expect_checked(p_value, 'string', p_name) #>> '{}'
        ELSE p_value #>> '{}'
    END;
$$;

-- p_level as one of Sentry's levels (NULL is error), else an error naming p_name; inlined
-- as _expect.
CREATE FUNCTION monitoring._level(p_level text, p_name text)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE
        WHEN p_level IN ('error', 'warning', 'info', 'fatal', 'debug') THEN p_level
        ELSE monitoring._level_checked(p_level, p_name)
    END;
$$;

-- JSON text from outside may hold what jsonb refuses: \u0000 and unpaired UTF-16 surrogates
-- (JavaScript and Python produce both). They become U+FFFD instead of failing the capture.
CREATE FUNCTION monitoring.parse_json(p_text text, p_name text DEFAULT 'p_text')
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_text text := p_text;
BEGIN
    -- LIKE first: over a 4 kB event it takes a third of the regex's time, and most JSON has
    -- no \u escape at all
    IF v_text LIKE E'%\\\\u%' AND v_text ~ E'\\\\u(0000|[dD][89a-fA-F])' THEN
        v_text := regexp_replace(v_text, E'\\\\u0000', E'\\\\ufffd', 'g');
        v_text := regexp_replace(
            v_text, E'\\\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\\\u[dD][c-fC-F][0-9a-fA-F]{2})',
            E'\\\\ufffd', 'g'
        );
        v_text := regexp_replace(
            v_text, E'(?<!\\\\u[dD][89abAB][0-9a-fA-F]{2})\\\\u[dD][c-fC-F][0-9a-fA-F]{2}',
            E'\\\\ufffd', 'g'
        );
    END IF;
    RETURN v_text::jsonb;
EXCEPTION
    WHEN statement_too_complex THEN
        -- PostgreSQL's JSON parser recurses, and stops at max_stack_depth: about 100,000
        -- levels here. That is a bad input, not a server to reconfigure; capture keeps 10.
        RAISE EXCEPTION '% is nested too deeply to read (% characters)', p_name, length(p_text)
            USING ERRCODE = 'invalid_parameter_value',
                HINT = 'pg_monitoring keeps JSON 10 levels deep; send data nested less deeply.';
    WHEN invalid_text_representation OR untranslatable_character THEN
        -- the cast's own error names no argument; its detail says where the text went wrong
        GET STACKED DIAGNOSTICS v_text = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION '% is not valid JSON', p_name
            USING ERRCODE = 'invalid_parameter_value',
                DETAIL = monitoring.truncate_text(v_text, 200);
END
$$;

COMMENT ON FUNCTION monitoring.parse_json(text, text) IS
E'p_text as jsonb, with \\u0000 and unpaired surrogates (which jsonb refuses) made U+FFFD; '
'errors name the text p_name';

-- Sentry exception values, or our own chain, as [{type, value, module, mechanism, frames}].
-- Of a chain over c_max exceptions (the most errors.max_exceptions may keep), only the first
-- and last halves are read, with a marker between, so that a chain of any length costs what
-- c_max exceptions cost; _limit_exceptions cuts it to the setting.
CREATE FUNCTION monitoring._exception_chain(p_values jsonb, p_name text)
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
CREATE FUNCTION monitoring._stack_trace_chain_parse(p_stack jsonb, p_type text, p_value text)
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
CREATE FUNCTION monitoring._stack_trace_chain(p_stack jsonb, p_type text, p_value text)
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

-- One frame as _limit_exceptions keeps it: strings cut to p_max_length characters, what is
-- nested more than 10 levels below the frame replaced by a marker, the 10 source lines
-- nearest the failing one on each side, and its variables capped at p_vars_bytes.
CREATE FUNCTION monitoring._limit_frame(p_frame jsonb, p_max_length integer, p_vars_bytes integer)
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
CREATE FUNCTION monitoring._limit_exceptions_cut(p_chain jsonb, p_cfg jsonb)
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
CREATE FUNCTION monitoring._limit_exceptions(p_chain jsonb, p_cfg jsonb)
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

-- Where it happened, as Sentry's culprit: "module in function" of the innermost in-app frame.
-- PL/pgSQL, as the lifecycle helpers: PostgreSQL 15 plans a SQL function it can not inline
-- on every call, and PL/pgSQL keeps its plans for the session.
CREATE FUNCTION monitoring._culprit(p_frames jsonb)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    RETURN (
        SELECT coalesce(
            nullif(f.frame ->> 'module', ''),
            pg_catalog.regexp_replace(coalesce(f.frame ->> 'filename', ''), E'^.*[/\\\\]', '')
        ) || ' in ' || coalesce(f.frame ->> 'function', '?')
        FROM pg_catalog.jsonb_array_elements(
            CASE WHEN pg_catalog.jsonb_typeof(p_frames) = 'array' THEN p_frames END
        ) WITH ORDINALITY AS f (frame, ord)
        WHERE pg_catalog.jsonb_typeof(f.frame) = 'object' AND NOT (f.frame ? 'frames_omitted')
        ORDER BY
            coalesce(
                -- only a JSON boolean is a flag: a cast of "in_app": "maybe" would fail the capture
                CASE WHEN pg_catalog.jsonb_typeof(f.frame -> 'in_app') = 'boolean'
                        THEN (f.frame ->> 'in_app')::boolean
                END,
                monitoring.frame_in_app(
                    coalesce(f.frame ->> 'abs_path', f.frame ->> 'filename'), f.frame ->> 'module'
                )
            ) DESC,
            f.ord DESC
        LIMIT 1
    );
END
$$;

-- Stores one validated event: the capture functions all end here.
CREATE FUNCTION monitoring._ingest(
    p_event_id uuid,
    p_occurred_at timestamptz,
    p_level text,
    p_exceptions jsonb,
    p_message text,
    p_fingerprint text[],
    p_context jsonb,
    p_tags jsonb,
    p_user jsonb,
    p_breadcrumbs jsonb,
    p_release text,
    p_environment text,
    p_service text,
    p_trace_id text,
    p_span_id text,
    p_platform text,
    p_server_name text,
    p_transaction text,
    p_data jsonb,
    OUT event_id uuid,
    OUT issue_id bigint
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_cfg jsonb;
    v_occurred timestamptz;
    v_service text;
    v_environment text;
    v_release text := nullif(p_release, '');
    -- the cut forms of these when one is long, else NULL (see below)
    v_trace_id text;
    v_span_id text;
    v_platform text;
    v_server_name text;
    v_transaction text;
    v_max_length integer;
    v_max_bytes integer;
    v_exceptions jsonb;
    v_message text;
    v_type text;
    v_context jsonb;
    v_tags jsonb;
    v_user jsonb;
    v_crumbs jsonb;
    v_data jsonb;
    v_adjusted jsonb;
    v_pattern text;
    v_likes text[];
    v_safe text[];
    v_fingerprint text;
    v_source text;
    v_memo text;
    v_memo_key text;
    v_text text;
    v_bags jsonb;
    v_user_key text;
    v_memo_hit integer;
    v_session_key text;
    v_group monitoring.error_groups;
    v_reason text;
BEGIN
    -- One read of every setting capture needs.
    SELECT s.value, s.session_key INTO v_cfg, v_session_key FROM monitoring.settings_snapshot AS s;

    v_service := coalesce(nullif(p_service, ''), v_cfg ->> 'errors.default_service');
    v_environment := coalesce(
        nullif(p_environment, ''), v_cfg ->> 'errors.default_environment'
    );
    -- Values that go into an index are cut to fit one, with the md5 of what was sent; the
    -- others to their size in Sentry's protocol, so that no text a writer sends is unbounded.
    -- One test for all, and the parameters used as they are unless one is long: PL/pgSQL
    -- sets up each expression it evaluates again in every transaction (some µs each), and a
    -- capture is often a transaction of its own.
    IF octet_length(v_service) > 64 OR octet_length(v_environment) > 64
        OR octet_length(v_release) > 64 OR octet_length(p_trace_id) > 64
        OR octet_length(p_span_id) > 64 OR octet_length(p_platform) > 64
        OR octet_length(p_server_name) > 64 OR octet_length(p_transaction) > 64 THEN
        v_service := monitoring._index_text(v_service, 200);
        v_environment := monitoring._index_text(v_environment, 200);
        v_release := monitoring._index_text(v_release, 200);
        v_trace_id := monitoring._index_text(nullif(p_trace_id, ''), 128);
        v_span_id := monitoring.truncate_text(nullif(p_span_id, ''), 128);
        v_platform := monitoring.truncate_text(p_platform, 64);
        v_server_name := monitoring.truncate_text(p_server_name, 256);
        v_transaction := monitoring.truncate_text(nullif(p_transaction, ''), 200);
    END IF;
    -- A client clock running ahead must not file events into the future, nor one running
    -- behind (or a bogus time) file them where retention deletes them at its next run: such
    -- a time becomes the time received, as Sentry does, and the event keeps what was sent.
    -- Up to a minute ahead is kept as sent: clocks differ by that much, and an event is
    -- often sent after the transaction that stores it began (now()); its time then finds a
    -- resend of it by one index probe, not by the id alone (below).
    v_occurred := coalesce(p_occurred_at, now());
    IF v_occurred < now() - make_interval(days => (v_cfg ->> 'errors.retention_days')::integer)
        OR p_occurred_at > now() + interval '1 minute' THEN
        v_occurred := now();
        v_adjusted := jsonb_build_object('timestamp_adjusted', jsonb_build_object(
            'sent', monitoring._json_time(p_occurred_at),
            'reason', CASE WHEN p_occurred_at > now() THEN 'in the future'
                ELSE 'older than errors.retention_days' END
        ));
    END IF;
    event_id := coalesce(p_event_id, gen_random_uuid());

    -- The same event sent again (an SDK retry) is stored and counted once already: answer
    -- with the issue it was filed in, even if it would group elsewhere now, and before an
    -- issue is created for it that would never hold an event.
    IF p_event_id IS NOT NULL THEN
        IF v_occurred = p_occurred_at THEN
            SELECT e.group_id INTO issue_id
            FROM monitoring.error_events AS e
            WHERE e.event_id = p_event_id AND e.occurred_at = v_occurred;
        ELSE
            -- Filed at the time received (no time sent, or a wrong clock's), which differs at
            -- each arrival: the event is found by its id alone, an index probe per partition
            -- on this rare path. Arrivals of one id take turns, so the second sees the first.
            PERFORM pg_advisory_xact_lock(7378802, hashtext(p_event_id::text));
            SELECT e.group_id INTO issue_id
            FROM monitoring.error_events AS e
            WHERE e.event_id = p_event_id
            LIMIT 1;
        END IF;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    v_max_length := (v_cfg ->> 'errors.max_message_length')::integer;
    v_max_bytes := (v_cfg ->> 'errors.max_context_bytes')::integer;

    v_exceptions := monitoring._limit_exceptions(p_exceptions, v_cfg);
    -- as capture_error: a helper only when there may be something to cut
    v_message := CASE WHEN p_message IS NULL OR length(p_message) <= v_max_length THEN p_message
        ELSE monitoring.truncate_text(p_message, v_max_length)
    END;
    v_context := coalesce(
        CASE WHEN p_context IS NULL OR pg_column_size(p_context) <= v_max_bytes THEN p_context
            ELSE monitoring.cap_object(p_context, v_max_bytes)
        END,
        '{}'
    );
    v_tags := coalesce(
        CASE WHEN p_tags IS NULL OR pg_column_size(p_tags) <= v_max_bytes THEN p_tags
            ELSE monitoring.cap_object(p_tags, v_max_bytes)
        END,
        '{}'
    );
    v_user := CASE WHEN p_user IS NULL OR pg_column_size(p_user) <= v_max_bytes THEN p_user
        ELSE monitoring.cap_object(p_user, v_max_bytes)
    END;
    v_data := CASE WHEN p_data IS NULL OR pg_column_size(p_data) <= v_max_bytes THEN p_data
        ELSE monitoring.cap_object(p_data, v_max_bytes)
    END;
    IF v_adjusted IS NOT NULL THEN
        v_data := coalesce(v_data, '{}') || v_adjusted;
    END IF;
    v_crumbs := CASE WHEN p_breadcrumbs IS NULL THEN NULL
        ELSE monitoring.cap_array_newest(
            p_breadcrumbs, (v_cfg ->> 'errors.max_breadcrumbs')::integer, v_max_bytes
        )
    END;
    -- No string longer than a message, nothing nested deeper than 10 levels (scrubbing walks
    -- them recursively, clients read them back). One cheap look at all five: a document no
    -- bigger than the longest string allowed holds no string too long, and the jsonpath finds
    -- an item 12 levels down, inside something nested 11 levels deep in one of them.
    v_bags := jsonb_build_array(v_context, v_tags, v_user, v_data, v_crumbs);
    IF pg_column_size(v_bags) > v_max_length OR jsonb_path_exists(v_bags, 'strict $.**{12}') THEN
        v_context := monitoring.bound_json(v_context, v_max_length);
        v_tags := monitoring.bound_json(v_tags, v_max_length);
        v_user := monitoring.bound_json(v_user, v_max_length);
        v_data := monitoring.bound_json(v_data, v_max_length);
        v_crumbs := monitoring.bound_json(v_crumbs, v_max_length);
        v_bags := jsonb_build_array(v_context, v_tags, v_user, v_data, v_crumbs);
    END IF;

    IF (v_cfg ->> 'scrub.enabled')::boolean THEN
        IF v_cfg -> 'scrub.extra_keys' = '[]' THEN
            v_pattern := monitoring._scrub_default_key_pattern();
            v_likes := monitoring._scrub_default_key_likes();
        ELSE
            v_pattern := monitoring.scrub_key_pattern(v_cfg -> 'scrub.extra_keys');
            v_likes := monitoring.scrub_key_likes(v_cfg -> 'scrub.extra_keys');
        END IF;
        IF v_cfg -> 'scrub.safe_keys' <> '[]' THEN
            v_safe := ARRAY(
                SELECT lower(k) FROM jsonb_array_elements_text(v_cfg -> 'scrub.safe_keys') AS k
            );
        END IF;
        v_exceptions := monitoring.scrub_exceptions(v_exceptions, v_pattern, v_safe);
        -- A raised exception's value, scrubbed above, becomes the message (below) and then
        -- decides the fingerprint: the message is scrubbed only when there is none.
        v_message := CASE WHEN v_exceptions -> -1 ->> 'value' <> '' THEN v_exceptions -> -1 ->> 'value'
            ELSE monitoring.scrub_text(v_message)
        END;
        -- one look at all the small documents together; each is walked only if it matters
        -- (the text in a variable: the inlined test reads it three times)
        v_text := v_bags::text;
        IF monitoring._may_hold_secrets(v_text, v_pattern, v_likes) THEN
            v_context := monitoring.scrub_with(v_context, v_pattern, v_safe);
            v_tags := monitoring.scrub_with(v_tags, v_pattern, v_safe);
            v_user := monitoring.scrub_with(v_user, v_pattern, v_safe);
            v_data := monitoring.scrub_with(v_data, v_pattern, v_safe);
            v_crumbs := monitoring.scrub_with(v_crumbs, v_pattern, v_safe);
        END IF;
    END IF;

    IF coalesce(cardinality(p_fingerprint), 0) = 0 THEN
        -- An error storm repeats one stack trace, and its fingerprint costs more than the rest
        -- of the capture: each session remembers the last 16 it computed from frames. Only for
        -- one exception with a stack, whose fingerprint depends on nothing but its type and
        -- frames: they are the key (not the value, which varies from event to event).
        -- A session setting: it lives as long as the connection and goes with a rollback.
        -- The caller can write it too, so each entry carries a MAC with the key only the
        -- owner reads (settings_snapshot.session_key): a forged entry is a miss, and so is
        -- a memo longer than 16 entries.
        IF jsonb_array_length(v_exceptions) = 1 THEN
            -- md5 of the frames as text, not jsonb_hash_extended: that one XORs its values'
            -- hashes, rotating each 32-bit half by one bit, so a trace whose frames come in
            -- another order (two frames 32 values apart swapped) hashes the same.
            v_memo_key := md5(
                coalesce(v_exceptions -> 0 ->> 'type', '') || E'\n'
                || coalesce((v_exceptions -> 0 -> 'frames')::text, '')
            ) || '=';
            v_memo := CASE
                WHEN octet_length(current_setting('pg_monitoring.fingerprints', TRUE)) <= 82 * 16
                    THEN current_setting('pg_monitoring.fingerprints', TRUE)
                ELSE ''
            END;
            v_memo_hit := strpos(v_memo, v_memo_key);
        END IF;
        IF v_memo_hit > 0 AND substr(v_memo, v_memo_hit + 65, 16) = left(md5(
            v_session_key || v_memo_key || substr(v_memo, v_memo_hit + 33, 32)
        ), 16) THEN
            v_fingerprint := substr(v_memo, v_memo_hit + 33, 32);
            v_source := 'stacktrace';
        ELSE
            SELECT f.fingerprint, f.source INTO v_fingerprint, v_source
            FROM monitoring.default_fingerprint(v_exceptions, v_message) AS f;
            IF v_memo_key IS NOT NULL AND v_source = 'stacktrace' THEN
                -- entries of 82 characters (key=fingerprint MAC;), newest first
                PERFORM set_config(
                    'pg_monitoring.fingerprints',
                    left(
                        v_memo_key || v_fingerprint
                        || left(md5(v_session_key || v_memo_key || v_fingerprint), 16) || ';'
                        || v_memo,
                        82 * 16
                    ),
                    FALSE
                );
            END IF;
        END IF;
    ELSE
        SELECT f.fingerprint, f.source INTO v_fingerprint, v_source
        FROM monitoring.compute_fingerprint(v_exceptions, v_message, p_fingerprint) AS f;
    END IF;
    v_type := nullif(v_exceptions -> -1 ->> 'type', '');
    -- the raised exception's value is the event's message when there is one
    v_message := coalesce(v_exceptions -> -1 ->> 'value', v_message);

    SELECT * INTO v_group FROM monitoring.error_groups AS g
    WHERE g.service = v_service AND g.environment = v_environment
        AND g.fingerprint = v_fingerprint;
    -- An issue old enough for retention to delete may be deleted by a run that can not see
    -- this event yet (not committed): lock it, and the run skips it (apply_error_retention),
    -- or, if the run locked it first, wait for it and file the event in a new issue. A day
    -- early, for a transaction that began before the run. Rare, so a storm on a live issue
    -- takes no lock on its row.
    IF FOUND AND v_group.last_seen
        < now() - make_interval(days => (v_cfg ->> 'errors.retention_days')::integer - 1) THEN
        SELECT * INTO v_group FROM monitoring.error_groups AS g
        WHERE g.id = v_group.id
        FOR KEY SHARE;
    END IF;
    IF NOT FOUND THEN
        INSERT INTO monitoring.error_groups AS g (
            service, environment, fingerprint, fingerprint_source, title, culprit,
            exception_type, level, platform, first_seen, last_seen, first_release
        )
        VALUES (
            v_service, v_environment, v_fingerprint, v_source,
            left(coalesce(
                v_type || coalesce(': ' || nullif(split_part(btrim(v_message), E'\n', 1), ''), ''),
                nullif(split_part(btrim(v_message), E'\n', 1), ''),
                '<unlabeled event>'
            ), 200),
            coalesce(
                coalesce(v_transaction, nullif(p_transaction, '')),
                monitoring.truncate_text(monitoring._culprit(v_exceptions -> -1 -> 'frames'), 200)
            ),
            v_type, p_level, coalesce(v_platform, p_platform), v_occurred, v_occurred, v_release
        )
        ON CONFLICT ON CONSTRAINT error_groups_identity DO NOTHING
        RETURNING * INTO v_group;
        IF v_group.id IS NOT NULL THEN
            PERFORM monitoring._record_activity(
                v_group.id, 'first_seen', NULL,
                jsonb_build_object('event_id', event_id, 'level', p_level)
            );
        ELSE
            -- another session created it since our look: use theirs
            SELECT * INTO STRICT v_group FROM monitoring.error_groups AS g
            WHERE g.service = v_service AND g.environment = v_environment
                AND g.fingerprint = v_fingerprint;
        END IF;
    END IF;

    issue_id := v_group.id;
    -- The user, for "users affected": its key is prefixed with its kind (as Sentry's
    -- sentry:user tag), so user id 1 and username "1" are two users. The design document's
    -- snippets send the user as context.user_id: an event without a user of its own takes
    -- that (a string or number) as its user's id, and stores it as its user (below), so that
    -- what `pg-monitoring show` prints and what is counted agree. Computed before the event
    -- is stored, in the one expression: each expression PL/pgSQL evaluates costs again in
    -- every transaction.
    v_user_key := coalesce(
        'id:' || nullif(v_user ->> 'id', ''),
        'username:' || nullif(v_user ->> 'username', ''),
        'email:' || nullif(v_user ->> 'email', ''),
        'ip:' || nullif(v_user ->> 'ip_address', ''),
        'id:' || CASE WHEN jsonb_typeof(v_context -> 'user_id') IN ('string', 'number')
                THEN nullif(v_context ->> 'user_id', '')
        END
    );
    INSERT INTO monitoring.error_events (
        event_id, occurred_at, group_id, level, exception_type, message, exceptions,
        context, tags, user_info, breadcrumbs, release, trace_id, span_id, platform,
        server_name, transaction_name, data
    )
    VALUES (
        event_id, v_occurred, v_group.id, p_level, v_type, v_message, v_exceptions,
        v_context, v_tags,
        -- an id key and no id of its own: the id is the context's user_id
        CASE WHEN v_user_key LIKE 'id:%' AND nullif(v_user ->> 'id', '') IS NULL
            THEN coalesce(v_user, '{}') || jsonb_build_object('id', v_context -> 'user_id')
            ELSE v_user
        END,
        v_crumbs, v_release, coalesce(v_trace_id, nullif(p_trace_id, '')),
        coalesce(v_span_id, nullif(p_span_id, '')), coalesce(v_platform, p_platform),
        coalesce(v_server_name, p_server_name), coalesce(v_transaction, nullif(p_transaction, '')),
        v_data
    )
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN;  -- the same event sent again: stored and counted once
    END IF;

    -- the fold indexes the user's key, so it is cut to fit
    IF octet_length(v_user_key) > 200 THEN
        v_user_key := monitoring._index_text(v_user_key, 200);
    END IF;
    INSERT INTO monitoring.error_group_counts (group_id, occurred_at, user_key)
    VALUES (v_group.id, v_occurred, v_user_key);
    IF v_release IS NOT NULL THEN
        INSERT INTO monitoring.releases (service, version, first_seen)
        VALUES (v_service, v_release, v_occurred)
        ON CONFLICT DO NOTHING;
    END IF;

    -- Lifecycle. The status test is repeated in each UPDATE: concurrent events of one issue
    -- queue on its row, and only the first finds it resolved or ignored.
    IF v_group.status = 'resolved' AND monitoring._regresses(v_group, v_release) THEN
        PERFORM monitoring._transition(
            v_group.id, '{resolved}', 'unresolved', 'regression', NULL,
            jsonb_strip_nulls(jsonb_build_object('event_id', event_id, 'release', v_release)),
            p_substatus => 'regressed'
        );
    ELSIF v_group.status = 'ignored' THEN
        v_reason := monitoring._ignore_over(v_group);
        IF v_reason IS NOT NULL THEN
            PERFORM monitoring._transition(
                v_group.id, '{ignored}', 'unresolved', 'escalating', NULL,
                jsonb_build_object('event_id', event_id, 'reason', v_reason),
                p_substatus => 'escalating'
            );
        END IF;
    END IF;
END
$$;

CREATE FUNCTION monitoring.capture_error(
    p_exception_type text,
    p_message text,
    p_stack_trace jsonb DEFAULT NULL,
    p_context jsonb DEFAULT NULL,
    p_environment text DEFAULT NULL,
    p_service text DEFAULT NULL,
    p_release text DEFAULT NULL,
    p_level text DEFAULT 'error',
    p_tags jsonb DEFAULT NULL,
    p_user jsonb DEFAULT NULL,
    p_fingerprint text[] DEFAULT NULL,
    p_trace_id text DEFAULT NULL,
    p_span_id text DEFAULT NULL,
    p_breadcrumbs jsonb DEFAULT NULL,
    p_occurred_at timestamptz DEFAULT NULL,
    p_event_id uuid DEFAULT NULL,
    OUT event_id uuid,
    OUT issue_id bigint
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stored record;
BEGIN
    -- a blank type or message says nothing, as capture_message holds for its message
    IF coalesce(p_exception_type, '') !~ E'\\S' AND coalesce(p_message, '') !~ E'\\S'
        AND p_stack_trace IS NULL THEN
        RAISE EXCEPTION 'capture_error needs p_exception_type, p_message or p_stack_trace'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- an assignment, not SELECT ... FROM: PL/pgSQL evaluates it without an executor start
    v_stored := monitoring._ingest(
        p_event_id, p_occurred_at, monitoring._level(p_level, 'p_level'),
        monitoring._stack_trace_chain(p_stack_trace, p_exception_type, p_message),
        p_message, p_fingerprint,
        monitoring._expect(p_context, 'object', 'p_context'),
        monitoring._expect(p_tags, 'object', 'p_tags'),
        monitoring._expect(p_user, 'object', 'p_user'),
        monitoring._expect(p_breadcrumbs, 'array', 'p_breadcrumbs'),
        p_release, p_environment, p_service, p_trace_id, p_span_id,
        'other', NULL, NULL, NULL
    );
    event_id := v_stored.event_id;
    issue_id := v_stored.issue_id;
END
$$;

COMMENT ON FUNCTION monitoring.capture_error(
    text, text, jsonb, jsonb, text, text, text, text, jsonb, jsonb, text[], text, text, jsonb,
    timestamptz, uuid
) IS
'Captures an error; p_stack_trace is frames (oldest call first), {"frames": [...]}, '
'{"values": [exceptions]} or a JSON string of Python traceback text. Returns the event id '
'and the issue id';

-- The same with p_stack_trace as text: JSON (as above) or a Python traceback as printed.
CREATE FUNCTION monitoring.capture_error(
    p_exception_type text,
    p_message text,
    p_stack_trace text,
    p_context jsonb DEFAULT NULL,
    p_environment text DEFAULT NULL,
    p_service text DEFAULT NULL,
    p_release text DEFAULT NULL,
    p_level text DEFAULT 'error',
    p_tags jsonb DEFAULT NULL,
    p_user jsonb DEFAULT NULL,
    p_fingerprint text[] DEFAULT NULL,
    p_trace_id text DEFAULT NULL,
    p_span_id text DEFAULT NULL,
    p_breadcrumbs jsonb DEFAULT NULL,
    p_occurred_at timestamptz DEFAULT NULL,
    p_event_id uuid DEFAULT NULL,
    OUT event_id uuid,
    OUT issue_id bigint
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stored record;
BEGIN
    v_stored := monitoring.capture_error(
        p_exception_type, p_message,
        -- \s, not btrim: JSON from a file or a heredoc may start with a newline
        CASE WHEN p_stack_trace ~ E'^\\s*[\\[{]'
            THEN monitoring.parse_json(p_stack_trace, 'p_stack_trace')
            ELSE to_jsonb(p_stack_trace)
        END,
        p_context, p_environment, p_service, p_release, p_level, p_tags, p_user, p_fingerprint,
        p_trace_id, p_span_id, p_breadcrumbs, p_occurred_at, p_event_id
    );
    event_id := v_stored.event_id;
    issue_id := v_stored.issue_id;
END
$$;

COMMENT ON FUNCTION monitoring.capture_error(
    text, text, text, jsonb, text, text, text, text, jsonb, jsonb, text[], text, text, jsonb,
    timestamptz, uuid
) IS
'Captures an error whose p_stack_trace is text: Python traceback text as printed, or JSON';

CREATE FUNCTION monitoring.capture_message(
    p_message text,
    p_level text DEFAULT 'info',
    p_context jsonb DEFAULT NULL,
    p_environment text DEFAULT NULL,
    p_service text DEFAULT NULL,
    p_release text DEFAULT NULL,
    p_tags jsonb DEFAULT NULL,
    p_user jsonb DEFAULT NULL,
    p_fingerprint text[] DEFAULT NULL,
    p_trace_id text DEFAULT NULL,
    p_span_id text DEFAULT NULL,
    p_breadcrumbs jsonb DEFAULT NULL,
    p_occurred_at timestamptz DEFAULT NULL,
    p_event_id uuid DEFAULT NULL,
    OUT event_id uuid,
    OUT issue_id bigint
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stored record;
BEGIN
    IF coalesce(p_message, '') !~ E'\\S' THEN
        RAISE EXCEPTION 'p_message must not be empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- an assignment, as in capture_error
    v_stored := monitoring._ingest(
        p_event_id, p_occurred_at, monitoring._level(p_level, 'p_level'), NULL,
        p_message, p_fingerprint,
        monitoring._expect(p_context, 'object', 'p_context'),
        monitoring._expect(p_tags, 'object', 'p_tags'),
        monitoring._expect(p_user, 'object', 'p_user'),
        monitoring._expect(p_breadcrumbs, 'array', 'p_breadcrumbs'),
        p_release, p_environment, p_service, p_trace_id, p_span_id,
        'other', NULL, NULL, NULL
    );
    event_id := v_stored.event_id;
    issue_id := v_stored.issue_id;
END
$$;

COMMENT ON FUNCTION monitoring.capture_message(
    text, text, jsonb, text, text, text, jsonb, jsonb, text[], text, text, jsonb, timestamptz,
    uuid
) IS
'Captures a message (grouped by its normalised text); returns the event id and the issue id';

-- An SDK's timestamp string: RFC 3339 (what Sentry documents), or a date and time with no
-- offset, which SDKs send meaning UTC. PostgreSQL's other inputs ("now", "infinity",
-- "January 8") and impossible dates are refused naming p_name, not with a bare cast error.
CREATE FUNCTION monitoring._sent_timestamp(p_text text, p_name text)
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    -- the date and time, and the offset if any
    v_parts text[] := regexp_match(
        p_text,
        E'^\\s*(\\d{4}-\\d\\d-\\d\\d(?:[Tt ]\\d\\d:\\d\\d(?::\\d\\d(?:\\.\\d+)?)?)?)\\s*(Z|z|[+-]\\d\\d(?::?\\d\\d)?)?\\s*$'
    );
BEGIN
    IF v_parts IS NULL THEN
        RAISE EXCEPTION '% must be an RFC 3339 date and time, like 2024-01-15T10:30:00Z, not %',
            p_name, quote_literal(monitoring.truncate_text(p_text, 100))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        RETURN CASE WHEN v_parts[2] IS NULL THEN v_parts[1]::timestamp AT TIME ZONE 'UTC'
            ELSE p_text::timestamptz
        END;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format
        OR invalid_time_zone_displacement_value THEN
        RAISE EXCEPTION '% is no valid date and time: %',
            p_name, quote_literal(monitoring.truncate_text(p_text, 100))
            USING ERRCODE = 'invalid_parameter_value';
    END;
END
$$;

-- Captures a Sentry event (sentry-python 2.x shape). p_name names it in errors.
CREATE FUNCTION monitoring._capture_sentry_event(
    p_event jsonb, p_name text, OUT event_id uuid, OUT issue_id bigint
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_exc jsonb := p_event -> 'exception';
    v_tags jsonb := p_event -> 'tags';
    v_crumbs jsonb := p_event -> 'breadcrumbs';
    v_message jsonb := p_event -> 'message';
    v_timestamp jsonb := p_event -> 'timestamp';
    v_event_id text := nullif(p_event ->> 'event_id', '');
    v_occurred timestamptz;
    v_fingerprint text[];
    v_stored record;
BEGIN
    PERFORM monitoring._expect(p_event, 'object', p_name);
    IF p_event IS NULL OR jsonb_typeof(p_event) = 'null' THEN
        RAISE EXCEPTION '% must not be null', p_name USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Checked here, where the field can be named: the cast to uuid in _ingest would fail
    -- with a bare invalid_text_representation.
    IF jsonb_typeof(p_event -> 'event_id') NOT IN ('string', 'null')
        OR v_event_id !~* E'^\\{?[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}\\}?$'
        -- braces come in pairs, or the cast fails
        OR (left(v_event_id, 1) = '{') <> (right(v_event_id, 1) = '}') THEN
        RAISE EXCEPTION '%.event_id must be a UUID string (32 hex digits), not %',
            p_name, monitoring.truncate_text((p_event -> 'event_id')::text, 100)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF jsonb_typeof(v_exc) = 'object' THEN
        v_exc := v_exc -> 'values';
    END IF;
    -- tags may come as [[key, value], ...]
    IF jsonb_typeof(v_tags) = 'array' THEN
        SELECT jsonb_object_agg(t.pair ->> 0, t.pair -> 1) INTO v_tags
        FROM jsonb_array_elements(v_tags) AS t (pair)
        WHERE jsonb_typeof(t.pair) = 'array' AND t.pair ->> 0 IS NOT NULL;
    END IF;
    IF jsonb_typeof(v_crumbs) = 'object' THEN
        v_crumbs := v_crumbs -> 'values';
    END IF;
    IF jsonb_typeof(v_message) = 'object' THEN
        v_message := coalesce(v_message -> 'formatted', v_message -> 'message');
    END IF;
    IF jsonb_typeof(v_timestamp) = 'number' THEN
        -- seconds since 1970; beyond 1e11 (the year 5138) it is no time a clock sent
        IF abs((v_timestamp #>> '{}')::numeric) >= 1e11 THEN
            RAISE EXCEPTION '%.timestamp must be seconds since 1970-01-01 UTC, not %',
                p_name, monitoring.truncate_text(v_timestamp::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_occurred := to_timestamp((v_timestamp #>> '{}')::double precision);
    ELSIF jsonb_typeof(v_timestamp) = 'string' THEN
        v_occurred := monitoring._sent_timestamp(v_timestamp #>> '{}', p_name || '.timestamp');
    ELSIF jsonb_typeof(v_timestamp) <> 'null' THEN
        RAISE EXCEPTION '%.timestamp must be a JSON string or number, not %',
            p_name, jsonb_typeof(v_timestamp)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- a query only for an event that has a fingerprint
    IF p_event ? 'fingerprint' THEN
        v_fingerprint := ARRAY(
            SELECT jsonb_array_elements_text(
                monitoring._expect(p_event -> 'fingerprint', 'array', p_name || '.fingerprint')
            )
        );
    END IF;
    -- an assignment, not SELECT ... FROM: no executor start, as in capture_error
    v_stored := monitoring._ingest(
        v_event_id::uuid,
        v_occurred,
        monitoring._level(p_event ->> 'level', p_name || '.level'),
        CASE WHEN v_exc IS NOT NULL AND jsonb_typeof(v_exc) <> 'null'
            THEN monitoring._exception_chain(v_exc, p_name || '.exception.values')
        END,
        coalesce(
            p_event -> 'logentry' ->> 'formatted',
            p_event -> 'logentry' ->> 'message',
            v_message #>> '{}'
        ),
        v_fingerprint,
        monitoring._expect(
            coalesce(p_event -> 'context', p_event -> 'extra'), 'object',
            p_name || CASE WHEN p_event ? 'context' THEN '.context' ELSE '.extra' END
        ),
        monitoring._expect(v_tags, 'object', p_name || '.tags'),
        monitoring._expect(p_event -> 'user', 'object', p_name || '.user'),
        monitoring._expect(v_crumbs, 'array', p_name || '.breadcrumbs'),
        monitoring._scalar_text(p_event -> 'release', p_name || '.release'),
        monitoring._scalar_text(p_event -> 'environment', p_name || '.environment'),
        coalesce(
            monitoring._scalar_text(p_event -> 'service', p_name || '.service'),
            v_tags ->> 'service'
        ),
        monitoring._scalar_text(
            p_event -> 'contexts' -> 'trace' -> 'trace_id', p_name || '.contexts.trace.trace_id'
        ),
        monitoring._scalar_text(
            p_event -> 'contexts' -> 'trace' -> 'span_id', p_name || '.contexts.trace.span_id'
        ),
        monitoring._scalar_text(p_event -> 'platform', p_name || '.platform'),
        monitoring._scalar_text(p_event -> 'server_name', p_name || '.server_name'),
        monitoring._scalar_text(p_event -> 'transaction', p_name || '.transaction'),
        nullif(p_event - ARRAY[
            'event_id', 'timestamp', 'level', 'exception', 'logentry', 'message', 'fingerprint',
            'context', 'extra', 'tags', 'user', 'breadcrumbs', 'release', 'environment',
            'service', 'platform', 'server_name', 'transaction'
        ], '{}')
    );
    event_id := v_stored.event_id;
    issue_id := v_stored.issue_id;
END
$$;

-- The public capture functions that only adapt their arguments are PL/pgSQL too: PostgreSQL 15
-- plans the body of a SQL function it can not inline (a SECURITY DEFINER one) again on every
-- call, about 200 µs here; PL/pgSQL keeps its plans for the session.
CREATE FUNCTION monitoring.capture_event(p_event jsonb, OUT event_id uuid, OUT issue_id bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stored record;
BEGIN
    v_stored := monitoring._capture_sentry_event(p_event, 'p_event');
    event_id := v_stored.event_id;
    issue_id := v_stored.issue_id;
END
$$;

COMMENT ON FUNCTION monitoring.capture_event(jsonb) IS
'Captures an event in the JSON shape Sentry SDKs send (exception.values with stack traces, '
'logentry, tags, user, breadcrumbs, contexts.trace...); returns the event id and issue id';

CREATE FUNCTION monitoring.capture_event(p_event text, OUT event_id uuid, OUT issue_id bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stored record;
BEGIN
    v_stored := monitoring._capture_sentry_event(
        monitoring.parse_json(p_event, 'p_event'), 'p_event'
    );
    event_id := v_stored.event_id;
    issue_id := v_stored.issue_id;
END
$$;

COMMENT ON FUNCTION monitoring.capture_event(text) IS
E'capture_event for JSON text, with \\u0000 and unpaired surrogates made U+FFFD instead of '
'failing';

-- A batch in one round trip and one transaction: all stored, or none and an error naming
-- the event that failed.
CREATE FUNCTION monitoring.capture_events(p_events jsonb)
RETURNS TABLE (event_id uuid, issue_id bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_index integer := 0;
    v_event jsonb;
    v_stored record;
    v_message text;
    v_state text;
BEGIN
    IF monitoring._expect(p_events, 'array', 'p_events') IS NULL THEN
        RAISE EXCEPTION 'p_events must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- A call is one transaction: bounded, so that one call can not hold its locks for long.
    IF jsonb_array_length(p_events) > 250 THEN
        RAISE EXCEPTION 'p_events holds % events; send at most 250 per call',
            jsonb_array_length(p_events)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        FOR v_event IN SELECT e FROM jsonb_array_elements(p_events) AS e LOOP
            v_stored := monitoring._capture_sentry_event(v_event, format('p_events[%s]', v_index));
            event_id := v_stored.event_id;
            issue_id := v_stored.issue_id;
            RETURN NEXT;
            v_index := v_index + 1;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
        RAISE EXCEPTION 'event % of the batch: %', v_index, v_message USING ERRCODE = v_state;
    END;
END
$$;

COMMENT ON FUNCTION monitoring.capture_events(jsonb) IS
'Captures a JSON array of Sentry-shaped events in one transaction; returns one row per event';

CREATE FUNCTION monitoring.capture_events(p_events text)
RETURNS TABLE (event_id uuid, issue_id bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT c.event_id, c.issue_id
    FROM monitoring.capture_events(monitoring.parse_json(p_events, 'p_events')) AS c;
END
$$;

COMMENT ON FUNCTION monitoring.capture_events(text) IS
'capture_events for JSON text, sanitised like capture_event(text)';

GRANT EXECUTE ON FUNCTION
monitoring.capture_error(
    text, text, jsonb, jsonb, text, text, text, text, jsonb, jsonb, text[], text, text, jsonb,
    timestamptz, uuid
),
monitoring.capture_error(
    text, text, text, jsonb, text, text, text, text, jsonb, jsonb, text[], text, text, jsonb,
    timestamptz, uuid
),
monitoring.capture_message(
    text, text, jsonb, text, text, text, jsonb, jsonb, text[], text, text, jsonb, timestamptz,
    uuid
),
monitoring.capture_event(jsonb),
monitoring.capture_event(text),
monitoring.capture_events(jsonb),
monitoring.capture_events(text)
TO monitoring_writer;

GRANT EXECUTE ON FUNCTION monitoring.parse_json(text, text)
TO monitoring_reader, monitoring_writer, monitoring_admin;
