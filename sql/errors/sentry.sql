-- Capturing Sentry's event JSON (sentry-python 2.x shape): capture_event, and capture_events
-- for a batch. The adapter reads the event's fields into _ingest's arguments, each error
-- naming the field by its path (p_event.exception.values...). SECURITY DEFINER, as capture.sql.

-- An SDK's timestamp string: RFC 3339 (what Sentry documents), or a date and time with no
-- offset, which SDKs send meaning UTC. PostgreSQL's other inputs ("now", "infinity",
-- "January 8") and impossible dates are refused naming p_name, not with a bare cast error.
CREATE OR REPLACE FUNCTION monitoring._sent_timestamp(p_text text, p_name text)
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_parts text[];
BEGIN
    -- What SDKs send, with every field in a range no calendar refuses (days up to 28), is
    -- cast without the EXCEPTION block below: each entry to one starts a subtransaction,
    -- which took 60 us, more than the rest of the Sentry adapter's checks.
    IF p_text ~ E'^[1-9]\\d{3}-(0[1-9]|1[0-2])-(0[1-9]|1\\d|2[0-8])[Tt ]([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d(\\.\\d{1,9})?)?(Z|z|[+-](0\\d|1[0-3])(:?[0-5]\\d)?)$' THEN
        RETURN p_text::timestamptz;
    ELSIF p_text ~ E'^[1-9]\\d{3}-(0[1-9]|1[0-2])-(0[1-9]|1\\d|2[0-8])[Tt ]([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d(\\.\\d{1,9})?)?$' THEN
        RETURN p_text::timestamp AT TIME ZONE 'UTC';
    END IF;
    -- the date and time, and the offset if any
    v_parts := regexp_match(
        p_text,
        E'^\\s*(\\d{4}-\\d\\d-\\d\\d(?:[Tt ]\\d\\d:\\d\\d(?::\\d\\d(?:\\.\\d+)?)?)?)\\s*(Z|z|[+-]\\d\\d(?::?\\d\\d)?)?\\s*$'
    );
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
CREATE OR REPLACE FUNCTION monitoring._capture_sentry_event(
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
CREATE OR REPLACE FUNCTION monitoring.capture_event(
    p_event jsonb, OUT event_id uuid, OUT issue_id bigint
)
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

CREATE OR REPLACE FUNCTION monitoring.capture_event(
    p_event text, OUT event_id uuid, OUT issue_id bigint
)
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
CREATE OR REPLACE FUNCTION monitoring.capture_events(p_events jsonb)
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

CREATE OR REPLACE FUNCTION monitoring.capture_events(p_events text)
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
monitoring.capture_event(jsonb),
monitoring.capture_event(text),
monitoring.capture_events(jsonb),
monitoring.capture_events(text)
TO monitoring_writer;
