-- Scrubbing: secrets never reach the tables. It runs inside the capture and ingest functions
-- (errors, spans, logs), so what is sent from psql is scrubbed like what the Python client
-- or an OpenTelemetry exporter sends. Defaults follow
-- Sentry's: values under keys containing a sensitive word (in objects, [name, value] pairs and
-- name=value strings), and values that look like card numbers, bearer tokens, PEM private
-- keys or a URL's password, become "[Filtered]".
-- Its settings (scrub.*) are in errors/tables.sql; the settings snapshot keeps them in the
-- form the functions take (_scrub_pattern and its neighbours, last in this file).

-- Card numbers (Sentry's pattern; \y is a word boundary in PostgreSQL), bearer tokens, PEM
-- private keys and the password of a URL (postgres://user:secret@db, which connection errors
-- print), replaced inside any string. A key whose END line is missing (the size limits cut
-- text before it is scrubbed) is replaced up to the end of the text.
CREATE OR REPLACE FUNCTION monitoring.scrub_text(p_text text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        -- one cheap test first: most strings contain none of these
        WHEN p_text IS NULL OR p_text !~* E'(bearer|private key|://[^\\s/@]*@|\\d([-\\s]?\\d){12})'
            THEN p_text
        ELSE pg_catalog.regexp_replace(
            pg_catalog.regexp_replace(
                pg_catalog.regexp_replace(
                    pg_catalog.regexp_replace(
                        pg_catalog.regexp_replace(
                            p_text,
                            '-----BEGIN[A-Z ]*PRIVATE KEY-----.*-----END[A-Z ]*PRIVATE KEY-----',
                            '[Filtered]', 'g'
                        ),
                        '-----BEGIN[A-Z ]*PRIVATE KEY-----.*$', '[Filtered]'
                    ),
                    E'(bearer\\s+)[A-Za-z0-9._~+/-]+=*', E'\\1[Filtered]', 'gi'
                ),
                E'\\y((3[47]\\d|4\\d{3}|5[1-5]\\d\\d|65\\d\\d|6011)([-\\s]?\\d){12})\\y',
                '[Filtered]', 'g'
            ),
            E'([a-z][a-z0-9+.-]*://[^:/@\\s]*:)[^@/\\s]+@', E'\\1[Filtered]@', 'gi'
        )
    END;
$$;

COMMENT ON FUNCTION monitoring.scrub_text(text) IS
'p_text with card numbers, bearer tokens, PEM private keys and URL passwords replaced by '
'[Filtered]';

-- Sentry's default sensitive key fragments, as a regex alternation and as LIKE patterns.
-- Constant SQL functions: inlined and folded, so capture, which uses them when no extra key
-- is set, pays nothing for them. pgTAP checks that the two lists agree.
CREATE OR REPLACE FUNCTION monitoring._scrub_default_key_pattern()
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT 'password|passwd|secret|api_key|apikey|auth|credentials|mysql_pwd|private_key|'
    'privatekey|token|session|csrf|cookie|authorization|set-cookie|x-api-key'::text;
$$;

CREATE OR REPLACE FUNCTION monitoring._scrub_default_key_likes()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT ARRAY[
        '%password%', '%passwd%', '%secret%', E'%api\\_key%', '%apikey%', '%auth%',
        '%credentials%', E'%mysql\\_pwd%', E'%private\\_key%', '%privatekey%', '%token%',
        '%session%', '%csrf%', '%cookie%', '%authorization%', '%set-cookie%', '%x-api-key%'
    ];
$$;

-- The regular expression of sensitive key fragments: the defaults plus p_extra_keys (a JSON
-- array of strings, escaped: they are literal text, not patterns).
-- PL/pgSQL: capture calls it on every event, and a SQL function with a subquery can not be
-- inlined, so it would be parsed again each time.
CREATE OR REPLACE FUNCTION monitoring.scrub_key_pattern(p_extra_keys jsonb DEFAULT '[]')
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_pattern text := monitoring._scrub_default_key_pattern();
BEGIN
    IF jsonb_typeof(p_extra_keys) = 'array' AND jsonb_array_length(p_extra_keys) > 0 THEN
        v_pattern := v_pattern || coalesce((
            SELECT string_agg(
                '|' || regexp_replace(lower(k.key), E'([.^$*+?()\\[\\]{}|\\\\-])', E'\\\\\\1', 'g'), ''
            )
            FROM jsonb_array_elements_text(p_extra_keys) AS k (key)
            WHERE k.key <> ''
        ), '');
    END IF;
    RETURN v_pattern;
END
$$;

COMMENT ON FUNCTION monitoring.scrub_key_pattern(jsonb) IS
'The regular expression of sensitive key fragments: the defaults plus p_extra_keys, escaped';

-- The same fragments as LIKE patterns for lower()ed text. Capture tests these before the
-- regex: 17 LIKEs over a small document take 5 µs, the 17-way case-insensitive regex 15-20 µs.
-- NULL (no quick test) when an extra key is not ASCII, where lower() and the regex's
-- case-insensitive match may disagree (the text is lowered in the C collation: ASCII only).
CREATE OR REPLACE FUNCTION monitoring.scrub_key_likes(p_extra_keys jsonb DEFAULT '[]')
RETURNS text[]
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_likes text[] := monitoring._scrub_default_key_likes();
BEGIN
    IF jsonb_typeof(p_extra_keys) = 'array' AND jsonb_array_length(p_extra_keys) > 0 THEN
        IF EXISTS (
            SELECT FROM jsonb_array_elements_text(p_extra_keys) AS k (key)
            WHERE k.key ~ E'[^\\x01-\\x7f]'
        ) THEN
            RETURN NULL;
        END IF;
        v_likes := v_likes || ARRAY(
            SELECT '%' || regexp_replace(lower(k.key), E'([\\\\%_])', E'\\\\\\1', 'g') || '%'
            FROM jsonb_array_elements_text(p_extra_keys) AS k (key)
            WHERE k.key <> ''
        );
    END IF;
    RETURN v_likes;
END
$$;

COMMENT ON FUNCTION monitoring.scrub_key_likes(jsonb) IS
'scrub_key_pattern''s fragments as LIKE patterns for lower()ed text; NULL for non-ASCII keys';

-- Walks p_value and filters it. p_key_pattern and p_safe_keys come from the settings
-- (monitoring.scrub reads them); the capture functions read them once per event.
-- Most documents hold no secret: a look at the JSON text decides whether to walk one. It
-- finds every name the walk would filter (a key is the last string before ": , a pair's
-- name the first string of an array, and in a string name=value has the =) and a superset
-- of the strings scrub_text changes. Three tests, not one alternation: PostgreSQL's regex
-- engine runs them in half the time. SQL, inlined into its callers.
CREATE OR REPLACE FUNCTION monitoring._may_hold_secrets(
    p_json_text text, p_key_pattern text, p_key_likes text[] DEFAULT NULL
)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT (p_key_likes IS NULL OR pg_catalog.lower(p_json_text COLLATE "C") LIKE ANY (p_key_likes))
        AND p_json_text ~* (
            '(' || p_key_pattern || E')([^"]*": |[^"=&;]*=)|\\["[^"]*(' || p_key_pattern || ')[^"]*", '
        )
        OR p_json_text ~* E'bearer|private key|://[^\\s/@]*@'
        OR p_json_text ~ E'\\d([-\\s]?\\d){12}';
$$;

COMMENT ON FUNCTION monitoring._may_hold_secrets(text, text, text[]) IS
'Whether a JSON text may hold a key matching p_key_pattern, a bearer token, a private key or '
'a card number: false means scrubbing would change nothing. p_key_likes, from '
'scrub_key_likes, is a quicker first test of the keys';

-- A string scrubbed as scrub_text does, and name=value pairs in it (a query string, form
-- data, a Cookie header: password=x&token=y, sessionid=z; csrftoken=w) with a sensitive name
-- have their value filtered, as a key's would be.
CREATE OR REPLACE FUNCTION monitoring._scrub_string(
    p_text text, p_key_pattern text, p_safe_keys text[]
)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_text text := monitoring.scrub_text(p_text);
BEGIN
    IF strpos(v_text, '=') = 0 OR v_text !~* ('(' || p_key_pattern || ')[^=&;]*=') THEN
        RETURN v_text;
    END IF;
    RETURN (
        SELECT string_agg(
            CASE
                WHEN strpos(m.part[1], '=') > 0
                    AND lower(split_part(m.part[1], '=', 1)) ~ p_key_pattern
                    AND NOT lower(btrim(split_part(m.part[1], '=', 1)))
                    = ANY(coalesce(p_safe_keys, '{}'))
                    THEN split_part(m.part[1], '=', 1) || '=[Filtered]'
                ELSE m.part[1]
            END || m.part[2],
            '' ORDER BY m.ord
        )
        FROM regexp_matches(v_text, E'([^&;]*)([&;]\\s*|$)', 'g') WITH ORDINALITY AS m (part, ord)
    );
END
$$;

CREATE OR REPLACE FUNCTION monitoring.scrub_with(
    p_value jsonb, p_key_pattern text, p_safe_keys text[]
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_result jsonb;
    v_text text;
BEGIN
    IF p_value IS NULL OR p_key_pattern IS NULL THEN
        RETURN p_value;
    END IF;
    v_text := p_value::text;
    IF NOT monitoring._may_hold_secrets(v_text, p_key_pattern) THEN
        RETURN p_value;
    END IF;

    CASE jsonb_typeof(p_value)
        WHEN 'object' THEN
            SELECT coalesce(jsonb_object_agg(
                e.key,
                CASE
                    WHEN lower(e.key) ~ p_key_pattern
                        AND NOT lower(e.key) = ANY(coalesce(p_safe_keys, '{}'))
                        THEN '"[Filtered]"'::jsonb
                    ELSE monitoring.scrub_with(e.value, p_key_pattern, p_safe_keys)
                END
            ), '{}')
            INTO v_result
            FROM jsonb_each(p_value) AS e;
        WHEN 'array' THEN
            -- [name, value]: a pair, as Sentry's event format lists request headers, cookies
            -- and query strings; a sensitive name filters its value, as a key does
            IF jsonb_array_length(p_value) = 2 AND jsonb_typeof(p_value -> 0) = 'string'
                AND lower(p_value ->> 0) ~ p_key_pattern
                AND NOT lower(p_value ->> 0) = ANY(coalesce(p_safe_keys, '{}')) THEN
                RETURN jsonb_build_array(p_value -> 0, '[Filtered]');
            END IF;
            SELECT coalesce(
                jsonb_agg(
                    monitoring.scrub_with(e.value, p_key_pattern, p_safe_keys)
                    ORDER BY e.ord
                ),
                '[]'
            )
            INTO v_result
            FROM jsonb_array_elements(p_value) WITH ORDINALITY AS e (value, ord);
        WHEN 'string' THEN
            v_result := to_jsonb(monitoring._scrub_string(
                p_value #>> '{}', p_key_pattern, p_safe_keys
            ));
        WHEN 'number' THEN
            -- a card number sent as a JSON number
            v_result := CASE
                WHEN p_value::text ~ E'^(3[47]\\d|4\\d{3}|5[1-5]\\d\\d|65\\d\\d|6011)\\d{12}$'
                    THEN '"[Filtered]"'::jsonb
                ELSE p_value
            END;
        ELSE
            v_result := p_value;
    END CASE;
    RETURN v_result;
END
$$;

COMMENT ON FUNCTION monitoring.scrub_with(jsonb, text, text[]) IS
'p_value with the values under keys matching p_key_pattern (except p_safe_keys) and '
'secret-looking strings replaced by [Filtered], at every depth';

-- scrub_exceptions for all other chains (defined first: a SQL function's body is checked
-- when it is created).
CREATE OR REPLACE FUNCTION monitoring._scrub_exceptions_walk(
    p_chain jsonb, p_key_pattern text, p_safe_keys text[]
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    -- The frames' variables all together, as scrub_with looks at each: SDKs send variables
    -- with every frame (sentry-python's include_local_variables), and few hold a secret.
    -- What may hold one in a frame's variables may in the text of them all (a superset).
    IF NOT coalesce(monitoring._may_hold_secrets(
            jsonb_path_query_array(p_chain, '$[*].frames[*].vars')::text, p_key_pattern
        ), FALSE)
        AND NOT EXISTS (
            SELECT FROM jsonb_array_elements(p_chain) AS e (exc)
            -- scrub_text returns what holds no secret unchanged
            WHERE monitoring.scrub_text(e.exc ->> 'value') IS DISTINCT FROM e.exc ->> 'value'
                OR monitoring.scrub_text(e.exc ->> 'raw_stacktrace')
                IS DISTINCT FROM e.exc ->> 'raw_stacktrace'
        ) THEN
        RETURN p_chain;
    END IF;
    RETURN (
        SELECT jsonb_agg(
            CASE WHEN jsonb_typeof(e.exc) <> 'object' THEN e.exc ELSE
                e.exc || jsonb_strip_nulls(jsonb_build_object(
                    'value', monitoring.scrub_text(e.exc ->> 'value'),
                    'raw_stacktrace', monitoring.scrub_text(e.exc ->> 'raw_stacktrace'),
                    'frames', (
                        SELECT jsonb_agg(
                            CASE WHEN jsonb_typeof(f.frame) = 'object' AND f.frame ? 'vars'
                                THEN jsonb_set(f.frame, '{vars}', monitoring.scrub_with(
                                    f.frame -> 'vars', p_key_pattern, p_safe_keys
                                ))
                                ELSE f.frame
                            END
                            ORDER BY f.ord
                        )
                        FROM jsonb_array_elements(
                            CASE WHEN jsonb_typeof(e.exc -> 'frames') = 'array'
                                THEN e.exc -> 'frames' END
                        ) WITH ORDINALITY AS f (frame, ord)
                    )
                ))
            END
            ORDER BY e.ord
        )
        FROM jsonb_array_elements(p_chain) WITH ORDINALITY AS e (exc, ord)
    );
END
$$;

-- An exception chain holds user data in two places: exception values and frame variables
-- (and a stack trace kept as text, which capture_error keeps when it is no Python traceback).
-- The rest is SDK structure and source code, so only those two are scrubbed, and the chain
-- is left untouched (not rebuilt) when neither can hold a secret.
-- One exception with no variables and no secret in its value, the common case, is decided
-- here, in SQL inlined into the caller (see _stack_trace_chain in capture_chain.sql for
-- why).
CREATE OR REPLACE FUNCTION monitoring.scrub_exceptions(
    p_chain jsonb, p_key_pattern text, p_safe_keys text[]
)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_chain IS NULL OR p_key_pattern IS NULL OR pg_catalog.jsonb_typeof(p_chain) <> 'array'
            THEN p_chain
        WHEN pg_catalog.jsonb_array_length(p_chain) = 1
            AND NOT pg_catalog.jsonb_path_exists(p_chain, '$[*].frames[*].vars')
            -- scrub_text's quick test, written out: its inlined body would extract the value
            -- (copying the first exception, frames and all) four times
            AND NOT coalesce(
                p_chain -> 0 ->> 'value' ~* E'(bearer|private key|://[^\\s/@]*@|\\d([-\\s]?\\d){12})',
                FALSE
            )
            AND NOT p_chain -> 0 ? 'raw_stacktrace'
            THEN p_chain
        ELSE monitoring._scrub_exceptions_walk(p_chain, p_key_pattern, p_safe_keys)
    END;
$$;

COMMENT ON FUNCTION monitoring.scrub_exceptions(jsonb, text, text[]) IS
'An exception chain with secret-looking exception values and frame variables scrubbed';

CREATE OR REPLACE FUNCTION monitoring.scrub(p_value jsonb)
RETURNS jsonb
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN monitoring.get_setting('scrub.enabled') = 'true'::jsonb THEN
            monitoring.scrub_with(
                -- kept 10 levels deep, as capture keeps it: the walk recurses
                CASE WHEN pg_catalog.jsonb_path_exists(p_value, 'strict $.**{11}')
                    THEN monitoring.bound_json(p_value, 2147483647)
                    ELSE p_value
                END,
                monitoring.scrub_key_pattern(monitoring.get_setting('scrub.extra_keys')),
                ARRAY(
                    SELECT lower(k.key)
                    FROM jsonb_array_elements_text(
                        monitoring.get_setting('scrub.safe_keys')
                    ) AS k (key)
                )
            )
        ELSE p_value
    END;
$$;

COMMENT ON FUNCTION monitoring.scrub(jsonb) IS
'p_value scrubbed as the capture functions scrub events, with the scrub.* settings in force '
'(and, as they do, kept 10 levels deep)';

GRANT EXECUTE ON FUNCTION
monitoring.scrub_text(text),
monitoring._scrub_string(text, text, text[]),
monitoring._may_hold_secrets(text, text, text[]),
monitoring.scrub_key_likes(jsonb),
monitoring._scrub_default_key_pattern(),
monitoring._scrub_default_key_likes(),
monitoring.scrub_with(jsonb, text, text[]),
monitoring.scrub_key_pattern(jsonb),
monitoring.scrub(jsonb)
TO monitoring_reader, monitoring_writer, monitoring_admin;

-- The scrub.* settings (p_cfg: all settings in force) as scrub_with and _may_hold_secrets
-- take them: the key pattern, its LIKE form and the safe keys; NULL when scrubbing is off
-- (and no safe keys: NULL). Computed when a setting changes, into the settings snapshot
-- (core/settings.sql), which every capture and ingest reads anyway: no work per event.
CREATE OR REPLACE FUNCTION monitoring._scrub_pattern(p_cfg jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN NOT (p_cfg ->> 'scrub.enabled')::boolean THEN NULL
        WHEN p_cfg -> 'scrub.extra_keys' = '[]' THEN monitoring._scrub_default_key_pattern()
        ELSE monitoring.scrub_key_pattern(p_cfg -> 'scrub.extra_keys')
    END;
$$;

CREATE OR REPLACE FUNCTION monitoring._scrub_likes(p_cfg jsonb)
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN NOT (p_cfg ->> 'scrub.enabled')::boolean THEN NULL
        WHEN p_cfg -> 'scrub.extra_keys' = '[]' THEN monitoring._scrub_default_key_likes()
        ELSE monitoring.scrub_key_likes(p_cfg -> 'scrub.extra_keys')
    END;
$$;

-- scrub.safe_keys in lower case (PL/pgSQL: a query; called only when there are some)
CREATE OR REPLACE FUNCTION monitoring._lower_names(p_names jsonb)
RETURNS text[]
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    RETURN ARRAY(SELECT lower(k) FROM jsonb_array_elements_text(p_names) AS k);
END
$$;

CREATE OR REPLACE FUNCTION monitoring._scrub_safe_keys(p_cfg jsonb)
RETURNS text[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_cfg -> 'scrub.safe_keys' <> '[]'
            THEN monitoring._lower_names(p_cfg -> 'scrub.safe_keys')
    END;
$$;
