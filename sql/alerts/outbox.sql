-- The outbox, for delivery workers: the wake-up, claims under a lease, outcomes, retries, and
-- the retention of what was delivered or given up.

-- The wake-up: the row's id only (a payload must stay under 8000 bytes), sent at commit.
CREATE OR REPLACE FUNCTION monitoring._notify_alert()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('pg_monitoring_alerts', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER alert_outbox_notify
AFTER INSERT ON monitoring.alert_outbox
FOR EACH ROW
EXECUTE FUNCTION monitoring._notify_alert();

-- For the worker: claims up to p_limit due notifications (or the ones in p_ids) for
-- p_lease_seconds. A claim is a lease: if no outcome is recorded before it runs out (the
-- worker died), the row is due again, and after the last allowed attempt it is dead.
CREATE OR REPLACE FUNCTION monitoring.claim_notifications(
    p_limit integer DEFAULT 10,
    p_lease_seconds double precision DEFAULT 120,
    p_worker text DEFAULT NULL,
    p_ids bigint[] DEFAULT NULL,
    p_max_attempts integer DEFAULT NULL
)
RETURNS TABLE (
    id bigint,
    claim_token uuid,
    idempotency_key uuid,
    attempt integer,
    condition text,
    channel_name text,
    channel_kind text,
    config jsonb,
    secrets jsonb,
    payload jsonb,
    created_at timestamptz
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- the clock, not the transaction's start: leases are measured from the claim itself
    v_now timestamptz := clock_timestamp();
    v_max integer := coalesce(
        p_max_attempts, monitoring.get_setting('alerts.max_attempts')::integer
    );
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'p_limit must be 1 or more, not %', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- At most a week (NaN is more): the lease's end is stored, and must be a time that
    -- clients can read (Python's end with the year 9999) and PostgreSQL can add.
    IF NOT coalesce(p_lease_seconds > 0 AND p_lease_seconds <= 604800, FALSE) THEN
        RAISE EXCEPTION 'p_lease_seconds must be positive and at most 604800 (a week), not %',
            coalesce(p_lease_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(p_worker) > 200 THEN
        RAISE EXCEPTION 'p_worker must be at most 200 characters, not %', length(p_worker)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_max < 1 THEN
        RAISE EXCEPTION 'p_max_attempts must be 1 or more, not %', v_max
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    UPDATE monitoring.alert_outbox AS o
    SET status = 'dead',
        claim_token = NULL,
        last_error = format(
            'no outcome recorded for attempt %s of %s: the worker stopped or stalled while '
            'sending', o.attempts, v_max
        ) || coalesce(E'\nbefore that: ' || o.last_error, '')
    WHERE o.id IN (
        SELECT x.id
        FROM monitoring.alert_outbox AS x
        WHERE
            x.status = 'sending' AND x.next_attempt_at <= v_now AND x.attempts >= v_max
            AND (p_ids IS NULL OR x.id = ANY(p_ids))
        FOR UPDATE SKIP LOCKED
    );

    RETURN QUERY
    WITH picked AS (
        SELECT x.id
        FROM monitoring.alert_outbox AS x
        INNER JOIN monitoring.alert_channels AS c ON x.channel_id = c.id
        WHERE
            x.status IN ('pending', 'sending', 'failed') AND x.next_attempt_at <= v_now
            AND c.enabled AND (p_ids IS NULL OR x.id = ANY(p_ids))
        ORDER BY x.next_attempt_at, x.id
        LIMIT p_limit
        FOR UPDATE OF x SKIP LOCKED
    ),

    claimed AS (
        UPDATE monitoring.alert_outbox AS o
        SET status = 'sending',
            attempts = o.attempts + 1,
            next_attempt_at = v_now + make_interval(secs => p_lease_seconds),
            claim_token = gen_random_uuid(),
            claimed_at = v_now,
            claimed_by = coalesce(p_worker, session_user)
        FROM picked AS p
        WHERE o.id = p.id
        RETURNING o.*
    )

    SELECT
        o.id, o.claim_token, o.idempotency_key, o.attempts, o.condition, c.name, c.kind,
        c.config, c.secrets, o.payload, o.created_at
    FROM claimed AS o
    INNER JOIN monitoring.alert_channels AS c ON o.channel_id = c.id
    ORDER BY o.id;
END
$$;

COMMENT ON FUNCTION monitoring.claim_notifications(
    integer, double precision, text, bigint[], integer
) IS
'For delivery workers: claims up to p_limit due notifications (or those in p_ids) for '
'p_lease_seconds, with their channel''s config and secrets; FOR UPDATE SKIP LOCKED, so '
'workers never block each other';

CREATE OR REPLACE FUNCTION monitoring.complete_notification(p_id bigint, p_claim_token uuid)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE monitoring.alert_outbox AS o
    SET status = 'sent', sent_at = clock_timestamp(), claim_token = NULL
    WHERE o.id = p_id AND o.claim_token = p_claim_token AND o.status = 'sending';
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION monitoring.complete_notification(bigint, uuid) IS
'Records a delivery; false when the claim was lost (its lease ran out and another worker '
'claimed the notification, which it then delivers again with the same idempotency key)';

-- A failed attempt: retried after base * 2^(attempt - 1) seconds (at most max), of which a
-- random half is jitter so that retries of one outage spread out; dead after the last
-- attempt, or at once when p_permanent (the receiver refused the request itself).
CREATE OR REPLACE FUNCTION monitoring.fail_notification(
    p_id bigint,
    p_claim_token uuid,
    p_error text,
    p_permanent boolean DEFAULT FALSE,
    p_retry_after_seconds double precision DEFAULT NULL,
    p_max_attempts integer DEFAULT NULL,
    p_retry_base_seconds double precision DEFAULT NULL,
    p_retry_max_seconds double precision DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max integer := coalesce(
        p_max_attempts, monitoring.get_setting('alerts.max_attempts')::integer
    );
    v_base double precision := coalesce(
        p_retry_base_seconds, monitoring.get_setting('alerts.retry_base_seconds')::double precision
    );
    v_cap double precision := coalesce(
        p_retry_max_seconds, monitoring.get_setting('alerts.retry_max_seconds')::double precision
    );
    v_row monitoring.alert_outbox;
    v_delay double precision;
    v_status text;
BEGIN
    -- In the ranges of the settings they stand for (0 allowed, as the worker's options do):
    -- the delay becomes a time, which NaN, infinity or 1e308 seconds are not.
    IF NOT coalesce(p_retry_base_seconds BETWEEN 0 AND 86400, TRUE)
        OR NOT coalesce(p_retry_max_seconds BETWEEN 0 AND 604800, TRUE) THEN
        RAISE EXCEPTION 'p_retry_base_seconds must be from 0 to 86400 and p_retry_max_seconds '
            'from 0 to 604800, not % and %',
            coalesce(p_retry_base_seconds::text, 'NULL'), coalesce(p_retry_max_seconds::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_row FROM monitoring.alert_outbox AS o
    WHERE o.id = p_id AND o.claim_token = p_claim_token AND o.status = 'sending'
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_delay := least(v_cap, v_base * power(2, greatest(v_row.attempts - 1, 0)));
    v_delay := v_delay / 2 + random() * v_delay / 2;
    IF p_retry_after_seconds > v_delay THEN
        v_delay := least(p_retry_after_seconds, v_cap);
    END IF;
    v_status := CASE
        WHEN coalesce(p_permanent, FALSE) OR v_row.attempts >= v_max THEN 'dead'
        ELSE 'failed'
    END;
    UPDATE monitoring.alert_outbox AS o
    SET status = v_status,
        claim_token = NULL,
        last_error = left(coalesce(p_error, 'unknown error'), 2000),
        next_attempt_at = clock_timestamp() + make_interval(secs => v_delay)
    WHERE o.id = p_id;
    RETURN v_status;
END
$$;

COMMENT ON FUNCTION monitoring.fail_notification(
    bigint, uuid, text, boolean, double precision, integer, double precision, double precision
) IS
'Records a failed delivery attempt: failed (retried with exponential backoff and jitter) or '
'dead after the last attempt or a permanent error; returns the new status, NULL when the '
'claim was lost';

CREATE OR REPLACE FUNCTION monitoring.retry_notification(p_id bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text;
BEGIN
    SELECT o.status INTO v_status FROM monitoring.alert_outbox AS o WHERE o.id = p_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no notification with id %', coalesce(p_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF v_status NOT IN ('dead', 'failed') THEN
        RAISE EXCEPTION 'notification % is %; only failed and dead ones can be retried',
            p_id, v_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE monitoring.alert_outbox AS o
    SET status = 'pending', attempts = 0, next_attempt_at = now(), claim_token = NULL
    WHERE o.id = p_id;
    PERFORM pg_notify('pg_monitoring_alerts', p_id::text);
    RETURN 'pending';
END
$$;

COMMENT ON FUNCTION monitoring.retry_notification(bigint) IS
'Sends a failed or dead notification again now, with a fresh count of attempts and the same '
'idempotency key';

-- When the worker should look again without a wake-up: the next retry or lease expiry.
CREATE OR REPLACE FUNCTION monitoring.next_notification_at()
RETURNS timestamptz
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT min(o.next_attempt_at)
    FROM monitoring.alert_outbox AS o
    INNER JOIN monitoring.alert_channels AS c ON o.channel_id = c.id
    WHERE o.status IN ('pending', 'sending', 'failed') AND c.enabled;
$$;

COMMENT ON FUNCTION monitoring.next_notification_at() IS
'When the next notification falls due (a retry, or a claim running out); NULL when none waits';

CREATE OR REPLACE FUNCTION monitoring.apply_alert_retention()
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM monitoring.alert_outbox AS o
    WHERE
        o.status IN ('sent', 'dead')
        AND o.created_at < now() - make_interval(
            days => monitoring.get_setting('alerts.retention_days')::integer
        );
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring.apply_alert_retention() IS
'Deletes sent and dead notifications older than alerts.retention_days; returns how many';

GRANT EXECUTE ON FUNCTION
monitoring.claim_notifications(integer, double precision, text, bigint[], integer),
monitoring.complete_notification(bigint, uuid),
monitoring.fail_notification(
    bigint, uuid, text, boolean, double precision, integer, double precision, double precision
),
monitoring.retry_notification(bigint),
monitoring.next_notification_at()
TO monitoring_admin;
