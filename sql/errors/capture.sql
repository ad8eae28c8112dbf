-- Capturing errors from SQL: capture_error and capture_message (capture_event and
-- capture_events, Sentry's event JSON, are in sentry.sql). They check their arguments and
-- hand the event to _ingest (ingest.sql), in one statement's transaction: an event is
-- stored whole or not at all.
--
-- They are SECURITY DEFINER because monitoring_writer may capture errors but not read them.

CREATE OR REPLACE FUNCTION monitoring.capture_error(
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
CREATE OR REPLACE FUNCTION monitoring.capture_error(
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

CREATE OR REPLACE FUNCTION monitoring.capture_message(
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
)
TO monitoring_writer;
