-- Storing one validated event, where every capture function ends: its settings read once,
-- times checked, data cut and scrubbed, the fingerprint found (or remembered), the issue
-- found or created, the event stored and counted, and the issue's lifecycle moved on.
-- The hot path: see the cost notes in _ingest before adding an expression to it.

-- Where it happened, as Sentry's culprit: "module in function" of the innermost in-app frame.
-- PL/pgSQL, as the lifecycle helpers: PostgreSQL 15 plans a SQL function it can not inline
-- on every call, and PL/pgSQL keeps its plans for the session.
CREATE OR REPLACE FUNCTION monitoring._culprit(p_frames jsonb)
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
CREATE OR REPLACE FUNCTION monitoring._ingest(
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
    v_issue monitoring.error_issues;
    v_reason text;
    -- storm protection (storm.sql): counted only, not stored
    v_sampled boolean := FALSE;
    -- whether the payload was cut and scrubbed (not for a sampled-out event)
    v_processed boolean := FALSE;
BEGIN
    -- One read of every setting capture needs.
    SELECT s.value, s.session_key, s.scrub_pattern, s.scrub_likes, s.scrub_safe_keys
    INTO v_cfg, v_session_key, v_pattern, v_likes, v_safe
    FROM monitoring.settings_snapshot AS s;

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
            SELECT e.issue_id INTO issue_id
            FROM monitoring.error_events AS e
            WHERE e.event_id = p_event_id AND e.occurred_at = v_occurred;
        ELSE
            -- Filed at the time received (no time sent, or a wrong clock's), which differs at
            -- each arrival: the event is found by its id alone, an index probe per partition
            -- on this rare path. Arrivals of one id take turns, so the second sees the first.
            PERFORM pg_advisory_xact_lock(7378802, hashtext(p_event_id::text));
            SELECT e.issue_id INTO issue_id
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

    -- The grouping first, when the session remembers it, and the issue: in a storm the event
    -- may be counted only (storm.sql), and then its payload is neither cut nor scrubbed.
    IF coalesce(cardinality(p_fingerprint), 0) = 0 AND jsonb_array_length(v_exceptions) = 1 THEN
        -- An error storm repeats one stack trace, and its fingerprint costs more than the
        -- rest of the capture: each session remembers the last 16 it computed from frames.
        -- Only for one exception with a stack, whose fingerprint depends on nothing but its
        -- type and frames (cut to the limits, above): they are the key (not the value, which
        -- varies from event to event, nor the frames' variables, which scrubbing changes).
        -- A session setting: it lives as long as the connection and goes with a rollback.
        -- The caller can write it too, so each entry carries a MAC with the key only the
        -- owner reads (settings_snapshot.session_key): a forged entry is a miss, and so is
        -- a memo longer than 16 entries.
        -- md5 of the frames as text, not jsonb_hash_extended: that one XORs its values'
        -- hashes, rotating each 32-bit half by one bit, so a trace whose frames come in
        -- another order (two frames 32 values apart swapped) hashes the same. The frames
        -- without their variables, which the fingerprint does not read and an SDK's locals
        -- vary from event to event (a storm's events would never meet their memo); taken
        -- out only when the failing frame has some (SDKs that send variables send them for
        -- every frame): the query costs a capture 10%.
        v_memo_key := md5(
            coalesce(v_exceptions -> 0 ->> 'type', '') || E'\n' || coalesce(
                CASE WHEN v_exceptions -> 0 -> 'frames' -> -1 ? 'vars' THEN (
                    SELECT jsonb_agg(
                        CASE WHEN jsonb_typeof(f.frame) = 'object' THEN f.frame - 'vars'
                            ELSE f.frame
                        END
                        ORDER BY f.ord
                    )
                    FROM jsonb_array_elements(v_exceptions -> 0 -> 'frames')
                        WITH ORDINALITY AS f (frame, ord)
                ) ELSE v_exceptions -> 0 -> 'frames' END::text,
                ''
            )
        ) || '=';
        v_memo := CASE
            WHEN octet_length(current_setting('pg_monitoring.fingerprints', TRUE)) <= 82 * 16
                THEN current_setting('pg_monitoring.fingerprints', TRUE)
            ELSE ''
        END;
        v_memo_hit := strpos(v_memo, v_memo_key);
        IF v_memo_hit > 0 AND substr(v_memo, v_memo_hit + 65, 16) = left(md5(
            v_session_key || v_memo_key || substr(v_memo, v_memo_hit + 33, 32)
        ), 16) THEN
            v_fingerprint := substr(v_memo, v_memo_hit + 33, 32);
            v_source := 'stacktrace';
            SELECT * INTO v_issue FROM monitoring.error_issues AS g
            WHERE g.service = v_service AND g.environment = v_environment
                AND g.fingerprint = v_fingerprint;
            -- an issue near retention is looked up again below, and locked
            IF FOUND AND v_issue.last_seen >= now() - make_interval(
                days => (v_cfg ->> 'errors.retention_days')::integer - 1
            ) THEN
                v_sampled := monitoring._storm_due(v_issue.sampling_until, v_occurred, v_cfg)
                    AND monitoring._storm_sampled(v_issue, v_occurred, event_id, v_cfg);
                IF v_sampled THEN
                    v_user_key := monitoring._storm_user_key(
                        p_user, p_context, v_cfg, v_pattern, v_likes, v_safe
                    );
                    -- a user too big to tell without cutting it: stored whole
                    v_sampled := v_user_key IS NOT NULL;
                    v_user_key := nullif(v_user_key, '');
                END IF;
            ELSE
                v_issue := NULL;
            END IF;
        END IF;
    END IF;

    IF NOT v_sampled THEN
        v_processed := TRUE;
        -- as capture_error: a helper only when there may be something to cut
        v_message := CASE
            WHEN p_message IS NULL OR length(p_message) <= v_max_length THEN p_message
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
        -- No string longer than a message, nothing nested deeper than 10 levels (scrubbing
        -- walks them recursively, clients read them back). One cheap look at all five: a
        -- document no bigger than the longest string allowed holds no string too long, and the
        -- jsonpath finds an item 12 levels down, inside something nested 11 levels deep in one
        -- of them.
        v_bags := jsonb_build_array(v_context, v_tags, v_user, v_data, v_crumbs);
        IF pg_column_size(v_bags) > v_max_length
            OR jsonb_path_exists(v_bags, 'strict $.**{12}') THEN
            v_context := monitoring.bound_json(v_context, v_max_length);
            v_tags := monitoring.bound_json(v_tags, v_max_length);
            v_user := monitoring.bound_json(v_user, v_max_length);
            v_data := monitoring.bound_json(v_data, v_max_length);
            v_crumbs := monitoring.bound_json(v_crumbs, v_max_length);
            v_bags := jsonb_build_array(v_context, v_tags, v_user, v_data, v_crumbs);
        END IF;

        IF v_pattern IS NOT NULL THEN
            v_exceptions := monitoring.scrub_exceptions(v_exceptions, v_pattern, v_safe);
            -- A raised exception's value, scrubbed above, becomes the message (below) and
            -- then decides the fingerprint: the message is scrubbed only when there is none.
            v_message := CASE
                WHEN v_exceptions -> -1 ->> 'value' <> '' THEN v_exceptions -> -1 ->> 'value'
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

        IF v_fingerprint IS NOT NULL THEN
            NULL;  -- remembered (above)
        ELSIF coalesce(cardinality(p_fingerprint), 0) = 0 THEN
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
        ELSE
            SELECT f.fingerprint, f.source INTO v_fingerprint, v_source
            FROM monitoring.compute_fingerprint(v_exceptions, v_message, p_fingerprint) AS f;
        END IF;
        v_type := nullif(v_exceptions -> -1 ->> 'type', '');
        -- the raised exception's value is the event's message when there is one
        v_message := coalesce(v_exceptions -> -1 ->> 'value', v_message);

        IF v_issue.id IS NULL THEN
            SELECT * INTO v_issue FROM monitoring.error_issues AS g
            WHERE g.service = v_service AND g.environment = v_environment
                AND g.fingerprint = v_fingerprint;
            -- An issue old enough for retention to delete may be deleted by a run that can not
            -- see this event yet (not committed): lock it, and the run skips it
            -- (apply_error_retention), or, if the run locked it first, wait for it and file the
            -- event in a new issue. A day early, for a transaction that began before the run.
            -- Rare, so a storm on a live issue takes no lock on its row.
            IF FOUND AND v_issue.last_seen < now() - make_interval(
                days => (v_cfg ->> 'errors.retention_days')::integer - 1
            ) THEN
                SELECT * INTO v_issue FROM monitoring.error_issues AS g
                WHERE g.id = v_issue.id
                FOR KEY SHARE;
            END IF;
            IF NOT FOUND THEN
                INSERT INTO monitoring.error_issues AS g (
                    service, environment, fingerprint, fingerprint_source, title, culprit,
                    exception_type, level, platform, first_seen, last_seen, first_release
                )
                VALUES (
                    v_service, v_environment, v_fingerprint, v_source,
                    left(coalesce(
                        v_type || coalesce(
                            ': ' || nullif(split_part(btrim(v_message), E'\n', 1), ''), ''
                        ),
                        nullif(split_part(btrim(v_message), E'\n', 1), ''),
                        '<unlabeled event>'
                    ), 200),
                    coalesce(
                        coalesce(v_transaction, nullif(p_transaction, '')),
                        monitoring.truncate_text(
                            monitoring._culprit(v_exceptions -> -1 -> 'frames'), 200
                        )
                    ),
                    v_type, p_level, coalesce(v_platform, p_platform), v_occurred, v_occurred,
                    v_release
                )
                ON CONFLICT ON CONSTRAINT error_issues_identity DO NOTHING
                RETURNING * INTO v_issue;
                IF v_issue.id IS NOT NULL THEN
                    PERFORM monitoring._record_activity(
                        v_issue.id, 'first_seen', NULL,
                        jsonb_build_object('event_id', event_id, 'level', p_level)
                    );
                ELSE
                    -- another session created it since our look: use theirs
                    SELECT * INTO STRICT v_issue FROM monitoring.error_issues AS g
                    WHERE g.service = v_service AND g.environment = v_environment
                        AND g.fingerprint = v_fingerprint;
                    v_sampled := monitoring._storm_due(v_issue.sampling_until, v_occurred, v_cfg)
                        AND monitoring._storm_sampled(v_issue, v_occurred, event_id, v_cfg);
                END IF;
            ELSE
                -- an issue seen before: its storm decides (its payload is cut already; not stored)
                v_sampled := monitoring._storm_due(v_issue.sampling_until, v_occurred, v_cfg)
                    AND monitoring._storm_sampled(v_issue, v_occurred, event_id, v_cfg);
            END IF;
        END IF;
    END IF;

    issue_id := v_issue.id;
    -- The user, for "users affected": its key is prefixed with its kind (as Sentry's
    -- sentry:user tag), so user id 1 and username "1" are two users. The design document's
    -- snippets send the user as context.user_id: an event without a user of its own takes
    -- that (a string or number) as its user's id, and stores it as its user (below), so that
    -- what `pg-monitoring show` prints and what is counted agree. Computed before the event
    -- is stored, in the one expression: each expression PL/pgSQL evaluates costs again in
    -- every transaction. A sampled-out event's key was found from its user and context
    -- without cutting them (_storm_user_key, above), when they were not cut already.
    IF v_processed THEN
        v_user_key := monitoring._user_key(v_user, v_context);
    END IF;
    IF NOT v_sampled THEN
        INSERT INTO monitoring.error_events (
            event_id, occurred_at, issue_id, level, exception_type, message, exceptions,
            context, tags, user_info, breadcrumbs, release, trace_id, span_id, platform,
            server_name, transaction_name, data
        )
        VALUES (
            event_id, v_occurred, v_issue.id, p_level, v_type, v_message, v_exceptions,
            v_context, v_tags,
            -- an id key and no id of its own: the id is the context's user_id
            CASE WHEN v_user_key LIKE 'id:%' AND nullif(v_user ->> 'id', '') IS NULL
                THEN coalesce(v_user, '{}') || jsonb_build_object('id', v_context -> 'user_id')
                ELSE v_user
            END,
            v_crumbs, v_release, coalesce(v_trace_id, nullif(p_trace_id, '')),
            coalesce(v_span_id, nullif(p_span_id, '')), coalesce(v_platform, p_platform),
            coalesce(v_server_name, p_server_name),
            coalesce(v_transaction, nullif(p_transaction, '')),
            v_data
        )
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN;  -- the same event sent again: stored and counted once
        END IF;
    END IF;

    -- the fold indexes the user's key, so it is cut to fit
    IF octet_length(v_user_key) > 200 THEN
        v_user_key := monitoring._index_text(v_user_key, 200);
    END IF;
    INSERT INTO monitoring.error_issue_counts (issue_id, occurred_at, user_key, level, sampled)
    VALUES (v_issue.id, v_occurred, v_user_key, p_level, v_sampled);
    IF v_release IS NOT NULL THEN
        INSERT INTO monitoring.releases (service, version, first_seen)
        VALUES (v_service, v_release, v_occurred)
        ON CONFLICT DO NOTHING;
    END IF;

    -- Lifecycle. The status test is repeated in each UPDATE: concurrent events of one issue
    -- queue on its row, and only the first finds it resolved or ignored.
    IF v_issue.status = 'resolved' AND monitoring._regresses(v_issue, v_release) THEN
        -- counted for Prometheus at the next fold (error_issue_regressions)
        IF monitoring._transition(
            v_issue.id, '{resolved}', 'unresolved', 'regression', NULL,
            jsonb_strip_nulls(jsonb_build_object('event_id', event_id, 'release', v_release)),
            p_substatus => 'regressed'
        ) THEN
            INSERT INTO monitoring.error_issue_regressions (issue_id) VALUES (v_issue.id);
        END IF;
    ELSIF v_issue.status = 'ignored' THEN
        v_reason := monitoring._ignore_over(v_issue);
        IF v_reason IS NOT NULL THEN
            PERFORM monitoring._transition(
                v_issue.id, '{ignored}', 'unresolved', 'escalating', NULL,
                jsonb_build_object('event_id', event_id, 'reason', v_reason),
                p_substatus => 'escalating'
            );
        END IF;
    END IF;
END
$$;
