-- Ingest keys (their table is in ingest_keys_tables.sql): monitoring_admin adds, lists and
-- revokes them; monitoring_writer, the role `pg-monitoring serve` connects with, only asks
-- whether a key may send a signal. A key is "pgm_" and 64 hex digits from two
-- gen_random_uuid() (244 random bits; built in since PostgreSQL 13, no pgcrypto needed).

CREATE OR REPLACE FUNCTION monitoring.add_ingest_key(
    p_name text,
    p_scopes text[] DEFAULT monitoring.ingest_scopes()
)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_unknown text[];
    v_key text;
BEGIN
    IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 200 OR p_name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'p_name must be 1 to 200 characters on one line'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_scopes IS NULL OR cardinality(p_scopes) = 0 THEN
        RAISE EXCEPTION 'p_scopes must name at least one of %',
            array_to_string(monitoring.ingest_scopes(), ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(coalesce(s.scope, 'NULL') ORDER BY s.n)
    INTO v_unknown
    FROM unnest(p_scopes) WITH ORDINALITY AS s (scope, n)
    WHERE s.scope IS NULL OR s.scope <> ALL(monitoring.ingest_scopes());
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'p_scopes: unknown scope %; the scopes are %',
            monitoring.truncate_text(array_to_string(v_unknown, ', '), 100),
            array_to_string(monitoring.ingest_scopes(), ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    v_key := 'pgm_' || replace(gen_random_uuid()::text, '-', '')
        || replace(gen_random_uuid()::text, '-', '');
    BEGIN
        INSERT INTO monitoring.ingest_keys (name, key_hash, scopes, created_by)
        SELECT
            p_name,
            sha256(convert_to(v_key, 'UTF8')),
            array_agg(DISTINCT s.scope ORDER BY s.scope),
            session_user
        FROM unnest(p_scopes) AS s (scope);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'an ingest key named % exists already',
            quote_literal(p_name)
            USING ERRCODE = 'unique_violation',
                HINT = 'Revoke it first, or choose another name.';
    END;
    RETURN v_key;
END
$$;

COMMENT ON FUNCTION monitoring.add_ingest_key(text, text[]) IS
'Makes an ingest key named p_name that may send p_scopes (default: all) and returns it; it is '
'stored only as its SHA-256 and can not be shown again';

CREATE OR REPLACE FUNCTION monitoring.revoke_ingest_key(p_name text)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_revoked_at timestamptz;
BEGIN
    UPDATE monitoring.ingest_keys AS k
    SET revoked_at = now(), revoked_by = session_user
    WHERE k.name = p_name AND k.revoked_at IS NULL
    RETURNING k.revoked_at INTO v_revoked_at;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'no ingest key named % (or it is revoked already)',
            coalesce(quote_literal(monitoring.truncate_text(p_name, 100)), 'NULL')
            USING ERRCODE = 'no_data_found',
                HINT = 'SELECT name FROM monitoring.list_ingest_keys() lists them.';
    END IF;
    RETURN v_revoked_at;
END
$$;

COMMENT ON FUNCTION monitoring.revoke_ingest_key(text) IS
'Revokes the live ingest key named p_name; a server that checked it keeps it at most its '
'cache time (10 s for pg-monitoring serve)';

CREATE OR REPLACE FUNCTION monitoring.list_ingest_keys()
RETURNS TABLE (
    name text,
    scopes text[],
    created_at timestamptz,
    created_by name,
    last_used_at timestamptz,
    revoked_at timestamptz,
    revoked_by name
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        k.name, k.scopes, k.created_at, k.created_by, k.last_used_at, k.revoked_at,
        k.revoked_by
    FROM monitoring.ingest_keys AS k
    ORDER BY k.revoked_at IS NOT NULL, k.name, k.id;
$$;

COMMENT ON FUNCTION monitoring.list_ingest_keys() IS
'Every ingest key, live ones first: name, scopes, who made it and when, last use (to the '
'minute), revocation; never the key or its hash';

-- Constant work whatever the caller sends: a key longer than any we make is refused before
-- it is hashed, and the rest is one hash and one probe of a unique index. last_used_at is
-- written at most once a minute per key.
CREATE OR REPLACE FUNCTION monitoring.check_ingest_key(p_key text, p_scope text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_last_used_at timestamptz;
BEGIN
    IF p_key IS NULL OR p_scope IS NULL OR octet_length(p_key) > 128 THEN
        RETURN FALSE;
    END IF;
    SELECT k.id, k.last_used_at
    INTO v_id, v_last_used_at
    FROM monitoring.ingest_keys AS k
    WHERE
        k.key_hash = sha256(convert_to(p_key, 'UTF8'))
        AND k.revoked_at IS NULL
        AND p_scope = ANY(k.scopes);
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    IF v_last_used_at IS NULL OR v_last_used_at < now() - interval '1 minute' THEN
        UPDATE monitoring.ingest_keys AS k SET last_used_at = now() WHERE k.id = v_id;
    END IF;
    RETURN TRUE;
END
$$;

COMMENT ON FUNCTION monitoring.check_ingest_key(text, text) IS
'Whether p_key is a live ingest key allowed p_scope (traces, logs, metrics, events, scrape)';

GRANT EXECUTE ON FUNCTION monitoring.add_ingest_key(text, text[]) TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.revoke_ingest_key(text) TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.list_ingest_keys() TO monitoring_admin;
GRANT EXECUTE ON FUNCTION monitoring.check_ingest_key(text, text) TO monitoring_writer;
