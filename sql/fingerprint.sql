-- Fingerprints: which events are the same issue. Sentry's default ("newstyle") algorithm,
-- see ../shared/reference/grouping.md: in-app frames by module (else file basename), function
-- and normalised source line, never line numbers or paths; else exception type plus
-- normalised value; else the normalised message. Explicit fingerprints win.

-- p_exceptions is the chain, root cause first: [{type, value, module, frames: [...]}].
CREATE FUNCTION monitoring.default_fingerprint(
    p_exceptions jsonb,
    p_message text,
    OUT fingerprint text,
    OUT source text
)
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    WITH exceptions AS (
        SELECT e.ord, e.exc
        FROM pg_catalog.jsonb_array_elements(
            CASE WHEN pg_catalog.jsonb_typeof(p_exceptions) = 'array' THEN p_exceptions END
        ) WITH ORDINALITY AS e (exc, ord)
        WHERE pg_catalog.jsonb_typeof(e.exc) = 'object'
    ),

    frames AS (
        SELECT
            x.ord AS exc_ord,
            f.ord,
            pg_catalog.lower(coalesce(
                nullif(f.frame ->> 'module', ''),
                pg_catalog.regexp_replace(
                    coalesce(f.frame ->> 'filename', f.frame ->> 'abs_path', ''), '^.*[/\\]', ''
                )
            )) AS module,
            coalesce(f.frame ->> 'function', '') AS function,
            -- long lines are often minified or generated: Sentry ignores them too
            CASE WHEN pg_catalog.length(f.frame ->> 'context_line') <= 120
                    THEN pg_catalog.regexp_replace(
                        pg_catalog.btrim(f.frame ->> 'context_line'), '\s+', ' ', 'g'
                    )
                ELSE ''
            END AS context_line,
            coalesce(
                CASE WHEN pg_catalog.jsonb_typeof(f.frame -> 'in_app') = 'boolean'
                        THEN (f.frame ->> 'in_app')::boolean
                END,
                monitoring.frame_in_app(
                    coalesce(f.frame ->> 'abs_path', f.frame ->> 'filename'), f.frame ->> 'module'
                )
            ) AS in_app
        FROM exceptions AS x
        CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(
            CASE WHEN pg_catalog.jsonb_typeof(x.exc -> 'frames') = 'array' THEN x.exc -> 'frames' END
        ) WITH ORDINALITY AS f (frame, ord)
        WHERE pg_catalog.jsonb_typeof(f.frame) = 'object'
            AND NOT (f.frame ? 'frames_omitted')
    ),

    -- Only in-app frames count when the event has any; otherwise every frame does.
    contributing AS (
        SELECT
            fr.exc_ord,
            fr.ord,
            fr.module || '|' || fr.function || '|' || fr.context_line AS component,
            pg_catalog.lag(fr.module || '|' || fr.function || '|' || fr.context_line)
                OVER (PARTITION BY fr.exc_ord ORDER BY fr.ord) AS previous
        FROM frames AS fr
        WHERE (fr.in_app OR NOT EXISTS (SELECT FROM frames AS a WHERE a.in_app))
            AND (fr.module <> '' OR fr.function <> '')
    ),

    per_exception AS (
        SELECT
            x.ord,
            coalesce(x.exc ->> 'type', '') AS type,
            (
                SELECT pg_catalog.string_agg(c.component, E'\n' ORDER BY c.ord)
                FROM contributing AS c
                -- direct recursion counts once
                WHERE c.exc_ord = x.ord AND c.component IS DISTINCT FROM c.previous
            ) AS stack,
            x.exc ->> 'value' AS value
        FROM exceptions AS x
        WHERE coalesce(x.exc ->> 'type', '') <> '' OR coalesce(x.exc ->> 'value', '') <> ''
            OR EXISTS (SELECT FROM contributing AS c WHERE c.exc_ord = x.ord)
    )

    SELECT
        pg_catalog.md5(coalesce(
            (
                SELECT pg_catalog.string_agg(
                    CASE WHEN p.stack IS NOT NULL THEN p.type || E'\n' || p.stack
                        -- normalised only when the frames do not decide
                        ELSE p.type || ': ' || coalesce(monitoring.normalize_message(p.value), '')
                    END,
                    E'\n--\n' ORDER BY p.ord
                )
                FROM per_exception AS p
            ),
            'message: ' || coalesce(monitoring.normalize_message(p_message), '')
        )) AS fingerprint,
        CASE
            WHEN EXISTS (SELECT FROM per_exception AS p WHERE p.stack IS NOT NULL)
                THEN 'stacktrace'
            WHEN EXISTS (SELECT FROM per_exception) THEN 'exception'
            ELSE 'message'
        END AS source;
$$;

COMMENT ON FUNCTION monitoring.default_fingerprint(jsonb, text) IS
'Sentry-style default grouping hash of an exception chain (root cause first) or a message, '
'and what it was computed from: stacktrace, exception or message';

-- An explicit fingerprint replaces the algorithm; "{{ default }}" in it stands for the
-- default hash, so callers can split a group further. Without it the fingerprint is kept
-- readable (elements joined by " | "), as users chose it, unless it is too long for an index.
CREATE FUNCTION monitoring.compute_fingerprint(
    p_exceptions jsonb,
    p_message text,
    p_explicit text[] DEFAULT NULL,
    OUT fingerprint text,
    OUT source text
)
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_parts text[];
    v_default text;
BEGIN
    v_parts := ARRAY(
        SELECT p FROM unnest(p_explicit) AS p WHERE coalesce(btrim(p), '') <> ''
    );
    IF cardinality(v_parts) = 0 THEN
        SELECT d.fingerprint, d.source INTO fingerprint, source
        FROM monitoring.default_fingerprint(p_exceptions, p_message) AS d;
        RETURN;
    END IF;

    IF EXISTS (SELECT FROM unnest(v_parts) AS p WHERE p ~ '^\s*\{\{\s*default\s*\}\}\s*$') THEN
        SELECT d.fingerprint INTO v_default
        FROM monitoring.default_fingerprint(p_exceptions, p_message) AS d;
        fingerprint := md5(array_to_string(ARRAY(
            SELECT CASE WHEN p ~ '^\s*\{\{\s*default\s*\}\}\s*$' THEN v_default ELSE p END
            FROM unnest(v_parts) WITH ORDINALITY AS u (p, ord)
            ORDER BY ord
        ), E'\n'));
        source := 'explicit+default';
        RETURN;
    END IF;

    fingerprint := array_to_string(v_parts, ' | ');
    IF length(fingerprint) > 200 THEN
        fingerprint := md5(array_to_string(v_parts, E'\n'));
    END IF;
    source := 'explicit';
END
$$;

COMMENT ON FUNCTION monitoring.compute_fingerprint(jsonb, text, text[]) IS
'The grouping fingerprint: p_explicit when given (readable; {{ default }} in it stands for '
'the default hash), else monitoring.default_fingerprint';

GRANT EXECUTE ON FUNCTION
monitoring.default_fingerprint(jsonb, text),
monitoring.compute_fingerprint(jsonb, text, text[])
TO monitoring_reader, monitoring_writer, monitoring_admin;
