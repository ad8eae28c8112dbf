-- The Sentry ingest: what `pg-monitoring serve` calls once per request to
-- POST /api/<project id>/envelope/ (or /store/), after it has decompressed and parsed the
-- envelope and converted transactions, spans and logs to OTLP JSON
-- (python/pg_monitoring/sentry/items.py, shared with PostgresTransport).

-- The helpers of sentry_ingest are PL/pgSQL, not SQL: PostgreSQL 15 plans the body of a SQL
-- function it can not inline again on every call (a few hundred microseconds each, a
-- millisecond and more under load); PL/pgSQL keeps its plans for the session.

-- A request's OTLP resources given the project's service and environment where they name
-- none. p_outer: resourceSpans or resourceLogs.
CREATE OR REPLACE FUNCTION monitoring._sentry_resource_defaults(
    p_request jsonb, p_outer text, p_service text, p_environment text
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    RETURN (
        SELECT jsonb_build_object(p_outer, coalesce(jsonb_agg(
            jsonb_set(
                x.r, '{resource}',
                coalesce(x.r -> 'resource', '{}') || jsonb_build_object(
                    'attributes', coalesce(x.r #> '{resource,attributes}', '[]') || (
                        SELECT coalesce(jsonb_agg(jsonb_build_object(
                            'key', d.key, 'value', jsonb_build_object('stringValue', d.value)
                        )), '[]')
                        FROM (VALUES
                            ('service.name', p_service),
                            ('deployment.environment.name', p_environment)
                        ) AS d (key, value)
                        WHERE
                            d.value IS NOT NULL
                            AND NOT coalesce(x.r #> '{resource,attributes}', '[]')
                            @> jsonb_build_array(jsonb_build_object('key', d.key))
                    )
                )
            ) ORDER BY x.n
        ), '[]'))
        FROM jsonb_array_elements(p_request -> p_outer) WITH ORDINALITY AS x (r, n)
    );
END
$$;

-- p_items, built by serve from one request (every member optional):
--   events: [Sentry event JSON, ...]; transactions: how many transaction items
--   spans: an OTLP ExportTraceServiceRequest (JSON mapping) of their spans and span items'
--   logs: an OTLP ExportLogsServiceRequest of log items' records
--   client_reports: [{"category", "reason", "quantity"}, ...] (the SDK's discarded_events)
--   skipped: {"<item type>": count} of items not stored
--   invalid: {"<category>": count} of items that were no JSON object (dropped)
--   too_large: {"<category>": count}: a request refused whole over a size limit
-- Returns {"status": accepted | unauthorized (no key: 401) | forbidden (a wrong key: 403) |
-- too_large (413) | rate_limited (429), "retry_after": seconds, "rate_limits": the
-- X-Sentry-Rate-Limits header, "stored": {...}}. Everything dropped is counted in
-- sentry_outcomes.
CREATE OR REPLACE FUNCTION monitoring.sentry_ingest(
    p_project_id bigint, p_key text, p_items jsonb
)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_project record;
    v_now timestamptz := now();
    v_minute timestamptz := date_trunc('minute', now());
    v_hour timestamptz := date_trunc('hour', now());
    v_slot smallint := pg_backend_pid() % 8;
    v_events jsonb := coalesce(p_items -> 'events', '[]');
    v_event_count integer;
    v_transactions integer := coalesce((p_items ->> 'transactions')::integer, 0);
    v_counts jsonb := '[]';  -- [[outcome, category, reason, quantity], ...]
    v_used record;
    v_limited text;
    v_retry_after integer;
    v_result jsonb;
    v_stored jsonb := '{}';
    v_start integer := 0;
    v_message text;
BEGIN
    IF p_key IS NULL OR p_key = '' THEN
        RETURN jsonb_build_object('status', 'unauthorized');
    END IF;
    IF octet_length(p_key) > 128 OR jsonb_typeof(v_events) <> 'array' THEN
        RETURN jsonb_build_object('status', 'forbidden');
    END IF;
    SELECT
        p.id, p.service, p.environment, k.id AS key_id, k.last_used_at,
        q.per_minute, q.per_hour
    INTO v_project
    FROM monitoring.sentry_projects AS p
    INNER JOIN monitoring.ingest_keys AS k ON p.key_id = k.id
    CROSS JOIN LATERAL monitoring._sentry_quota(p.events_per_minute, p.events_per_hour) AS q
    WHERE
        p.id = p_project_id
        AND k.key_hash = sha256(convert_to(p_key, 'UTF8'))
        AND p.revoked_at IS NULL
        AND k.revoked_at IS NULL
        AND 'events' = ANY(k.scopes);
    IF NOT FOUND THEN
        RETURN jsonb_build_object('status', 'forbidden');
    END IF;
    IF v_project.last_used_at IS NULL OR v_project.last_used_at < v_now - interval '1 minute' THEN
        UPDATE monitoring.ingest_keys AS k SET last_used_at = v_now WHERE k.id = v_project.key_id;
    END IF;

    IF p_items ? 'too_large' THEN
        PERFORM monitoring._sentry_count(
            p_project_id, v_hour, v_slot,
            monitoring._sentry_map_counts(p_items -> 'too_large', 'dropped', 'too_large')
        );
        RETURN jsonb_build_object('status', 'too_large');
    END IF;

    -- The quota: errors and transactions, counted in the current minute and hour over every
    -- slot. Concurrent requests may overshoot it by what they hold together.
    v_event_count := jsonb_array_length(v_events);
    IF v_event_count + v_transactions > 0 THEN
        SELECT
            coalesce(sum(u.minute_events) FILTER (WHERE u.minute = v_minute), 0) AS minute,
            coalesce(sum(u.hour_events) FILTER (WHERE u.hour = v_hour), 0) AS hour
        INTO v_used
        FROM monitoring.sentry_quota_usage AS u
        WHERE u.project_id = p_project_id;
        IF v_used.minute + v_event_count + v_transactions > v_project.per_minute THEN
            v_limited := 'minute';
            v_retry_after := ceil(extract(EPOCH FROM v_minute + interval '1 minute' - v_now));
        ELSIF v_used.hour + v_event_count + v_transactions > v_project.per_hour THEN
            v_limited := 'hour';
            v_retry_after := ceil(extract(EPOCH FROM v_hour + interval '1 hour' - v_now));
        END IF;
    END IF;

    IF v_limited IS NOT NULL THEN
        v_counts := jsonb_build_array(
            jsonb_build_array('dropped', 'error', 'ratelimited', v_event_count),
            jsonb_build_array('dropped', 'transaction', 'ratelimited', v_transactions)
        );
    ELSE
        -- capture_events takes 250 at most per call; an invalid event is dropped alone
        WHILE v_start < v_event_count LOOP
            BEGIN
                PERFORM FROM monitoring.capture_events(
                    monitoring._sentry_event_defaults(
                        CASE WHEN v_event_count <= 250 THEN v_events ELSE
                            jsonb_path_query_array(
                                v_events, '$[$start to $end]',
                                jsonb_build_object('start', v_start, 'end', v_start + 249)
                            )
                        END,
                        v_project.service, v_project.environment
                    )
                );
                v_counts := v_counts || jsonb_build_array(jsonb_build_array(
                    'accepted', 'error', '', least(250, v_event_count - v_start)
                ));
            EXCEPTION WHEN invalid_parameter_value OR null_value_not_allowed
                OR program_limit_exceeded OR invalid_text_representation THEN
                GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
                v_counts := v_counts || jsonb_build_array(jsonb_build_array(
                    'dropped', 'error', 'invalid', least(250, v_event_count - v_start)
                ));
                v_stored := v_stored || jsonb_build_object('error_message', v_message);
            END;
            v_start := v_start + 250;
        END LOOP;
        v_counts := v_counts || jsonb_build_array(
            jsonb_build_array('accepted', 'transaction', '', v_transactions)
        );
        IF jsonb_typeof(p_items -> 'spans') = 'object' THEN
            v_result := monitoring.record_spans(monitoring._sentry_resource_defaults(
                p_items -> 'spans', 'resourceSpans', v_project.service, v_project.environment
            ));
            v_counts := v_counts || monitoring._sentry_otlp_counts(v_result, 'span');
            v_stored := v_stored || jsonb_build_object('spans', v_result);
        END IF;
    END IF;

    -- logs are not under the events quota
    IF jsonb_typeof(p_items -> 'logs') = 'object' THEN
        v_result := monitoring.record_logs(monitoring._sentry_resource_defaults(
            p_items -> 'logs', 'resourceLogs', v_project.service, v_project.environment
        ));
        v_counts := v_counts || monitoring._sentry_otlp_counts(v_result, 'log_item');
        v_stored := v_stored || jsonb_build_object('logs', v_result);
    END IF;

    IF jsonb_typeof(p_items -> 'client_reports') = 'array' THEN
        SELECT v_counts || coalesce(jsonb_agg(jsonb_build_array(
            'client_dropped',
            left(coalesce(c ->> 'category', 'default'), 100),
            left(coalesce(c ->> 'reason', ''), 100),
            c -> 'quantity'
        )), '[]')
        INTO v_counts
        FROM jsonb_array_elements(p_items -> 'client_reports') AS c
        WHERE jsonb_typeof(c -> 'quantity') = 'number' AND (c ->> 'quantity')::numeric > 0;
    END IF;
    v_counts := v_counts
        || monitoring._sentry_map_counts(p_items -> 'invalid', 'dropped', 'invalid')
        || monitoring._sentry_map_counts(p_items -> 'skipped', 'skipped', '');

    -- Last, so that the counters' row locks are held only until the commit that follows.
    PERFORM monitoring._sentry_count(p_project_id, v_hour, v_slot, v_counts);
    IF v_limited IS NULL AND v_event_count + v_transactions > 0 THEN
        INSERT INTO monitoring.sentry_quota_usage AS u (
            project_id, slot, minute, minute_events, hour, hour_events
        ) VALUES (
            p_project_id, v_slot, v_minute, v_event_count + v_transactions,
            v_hour, v_event_count + v_transactions
        )
        ON CONFLICT (project_id, slot) DO UPDATE SET
            minute_events = CASE WHEN u.minute = excluded.minute
                    THEN u.minute_events + excluded.minute_events
                ELSE excluded.minute_events
            END,
            minute = excluded.minute,
            hour_events = CASE WHEN u.hour = excluded.hour
                    THEN u.hour_events + excluded.hour_events
                ELSE excluded.hour_events
            END,
            hour = excluded.hour;
    END IF;

    IF v_limited IS NOT NULL THEN
        RETURN jsonb_build_object(
            'status', 'rate_limited',
            'retry_after', v_retry_after,
            -- Sentry's header: <seconds>:<categories>:<scope>:<reason code>
            'rate_limits', format(
                '%s:error;default;security;transaction;span:project:%s', v_retry_after,
                CASE v_limited WHEN 'minute' THEN 'project_quota_minute'
                    ELSE 'project_quota_hour' END
            ),
            'stored', v_stored
        );
    END IF;
    RETURN jsonb_build_object('status', 'accepted', 'stored', v_stored);
END
$$;

COMMENT ON FUNCTION monitoring.sentry_ingest(bigint, text, jsonb) IS
'The Sentry ingest of pg-monitoring serve: checks p_key against project p_project_id and '
'its quota, stores the items of one request (events, spans, logs), counts what it accepts '
'and drops; returns the status to answer';

-- Events given the project's service and environment where they name none (a service tag
-- counts: capture reads it).
CREATE OR REPLACE FUNCTION monitoring._sentry_event_defaults(
    p_events jsonb, p_service text, p_environment text
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_agg(
            CASE WHEN jsonb_typeof(e.v) <> 'object' THEN e.v ELSE
                e.v
                || CASE WHEN e.v ? 'service' OR coalesce(e.v -> 'tags' ? 'service', FALSE)
                    THEN '{}'::jsonb ELSE jsonb_build_object('service', p_service) END
                || CASE WHEN coalesce(e.v ->> 'environment', '') <> '' OR p_environment IS NULL
                    THEN '{}'::jsonb ELSE jsonb_build_object('environment', p_environment) END
            END
            ORDER BY e.n
        ), '[]')
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e (v, n)
    );
END
$$;

-- Adds p_counts ([[outcome, category, reason, quantity], ...]; zeros left out) to the
-- project's hour in its slot.
CREATE OR REPLACE FUNCTION monitoring._sentry_count(
    p_project_id bigint, p_hour timestamptz, p_slot smallint, p_counts jsonb
)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO monitoring.sentry_outcomes AS o (
        project_id, hour, outcome, category, reason, slot, quantity
    )
    SELECT
        p_project_id, p_hour, c ->> 0, c ->> 1, c ->> 2, p_slot,
        sum((c ->> 3)::numeric::bigint)
    FROM jsonb_array_elements(p_counts) AS c
    WHERE (c ->> 3)::numeric::bigint > 0
    GROUP BY c ->> 0, c ->> 1, c ->> 2
    ORDER BY c ->> 0, c ->> 1, c ->> 2
    ON CONFLICT (project_id, hour, outcome, category, reason, slot)
    DO UPDATE SET quantity = o.quantity + excluded.quantity;
END
$$;

-- Requests that serve received together: [[project id, key, items], ...], each as
-- sentry_ingest takes it, in one transaction (under load serve sends those that arrived while
-- its previous call ran: one commit, and each statement's set-up, for all). Returns
-- sentry_ingest's answers, in order. An error fails the whole call; serve then sends each
-- request alone, so that one request's error is its own.
CREATE OR REPLACE FUNCTION monitoring.sentry_ingest_many(p_requests jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_request jsonb;
    v_results jsonb := '[]';
BEGIN
    IF jsonb_typeof(p_requests) IS DISTINCT FROM 'array' OR jsonb_array_length(p_requests) > 100
        THEN
        RAISE EXCEPTION 'p_requests must be a JSON array of at most 100 [project id, key, items]'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_request IN SELECT r.value FROM jsonb_array_elements(p_requests) AS r LOOP
        IF jsonb_typeof(v_request) IS DISTINCT FROM 'array'
            OR jsonb_typeof(v_request -> 0) IS DISTINCT FROM 'number'
            OR jsonb_typeof(v_request -> 2) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'each request must be [project id, key, items], not %',
                monitoring.truncate_text(v_request::text, 100)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_results := v_results || jsonb_build_array(monitoring.sentry_ingest(
            (v_request ->> 0)::bigint, v_request ->> 1, v_request -> 2
        ));
    END LOOP;
    RETURN v_results;
END
$$;

COMMENT ON FUNCTION monitoring.sentry_ingest_many(jsonb) IS
'sentry_ingest for many requests ([[project id, key, items], ...]) in one transaction; '
'returns their answers in order';

GRANT EXECUTE ON FUNCTION monitoring.sentry_ingest(bigint, text, jsonb) TO monitoring_writer;
GRANT EXECUTE ON FUNCTION monitoring.sentry_ingest_many(jsonb) TO monitoring_writer;

-- The counts of {"<category>": count} as _sentry_count takes them.
CREATE OR REPLACE FUNCTION monitoring._sentry_map_counts(
    p_map jsonb, p_outcome text, p_reason text
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_array(p_outcome, left(t.key, 100), p_reason, t.value)), '[]')
        FROM jsonb_each(CASE WHEN jsonb_typeof(p_map) = 'object' THEN p_map ELSE '{}' END) AS t
        WHERE jsonb_typeof(t.value) = 'number'
    );
END
$$;

-- The counts of what record_spans or record_logs answered (p_result), as _sentry_count
-- takes them.
CREATE OR REPLACE FUNCTION monitoring._sentry_otlp_counts(p_result jsonb, p_category text)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT jsonb_build_array(
        jsonb_build_array(
            'accepted', p_category, '',
            coalesce((p_result ->> 'stored')::bigint, 0)
            + coalesce((p_result ->> 'duplicates')::bigint, 0)
        ),
        jsonb_build_array('dropped', p_category, 'invalid', (p_result ->> 'rejected')::bigint)
    );
$$;
