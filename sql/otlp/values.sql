-- Reading OTLP's JSON mapping (opentelemetry-proto, docs/specification.md): attributes are
-- lists of {"key", "value": {"stringValue" | "intValue" | "doubleValue" | "boolValue" |
-- "arrayValue" | "kvlistValue" | "bytesValue"}}, int64 values are decimal strings, ids are
-- hex. We store attributes as one flat jsonb object, {"http.route": "/pay", ...}, which is
-- what @> queries and GIN indexes want. Nothing here raises on bad values: an attribute
-- that is not what the mapping says is kept as sent (bounded later), and the callers reject
-- a span or record whose identity fields are wrong, with a reason, one by one.

-- Lists and maps (_otlp_value, below, takes the rest), to p_depth levels (a deeper value
-- becomes a string saying what it was). First: a SQL function's body is checked when it is
-- created, a PL/pgSQL one's when it runs.
CREATE OR REPLACE FUNCTION monitoring._otlp_nested_value(p_value jsonb, p_depth integer)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_items jsonb;
BEGIN
    IF p_value ? 'arrayValue' THEN
        v_items := p_value #> '{arrayValue,values}';
        IF jsonb_typeof(v_items) IS DISTINCT FROM 'array' THEN
            RETURN '[]';
        ELSIF p_depth < 1 THEN
            RETURN to_jsonb(format('[nested too deep: a list of %s values]', jsonb_array_length(v_items)));
        END IF;
        RETURN (
            SELECT coalesce(jsonb_agg(
                CASE
                    WHEN e.value ? 'arrayValue' OR e.value ? 'kvlistValue'
                        THEN monitoring._otlp_nested_value(e.value, p_depth - 1)
                    ELSE monitoring._otlp_value(e.value)
                END ORDER BY e.ord
            ), '[]')
            FROM jsonb_array_elements(v_items) WITH ORDINALITY AS e (value, ord)
        );
    END IF;
    v_items := p_value #> '{kvlistValue,values}';
    IF jsonb_typeof(v_items) IS DISTINCT FROM 'array' THEN
        RETURN '{}';
    ELSIF p_depth < 1 THEN
        RETURN to_jsonb(format('[nested too deep: a map of %s keys]', jsonb_array_length(v_items)));
    END IF;
    RETURN (
        SELECT coalesce(jsonb_object_agg(
            e.value ->> 'key',
            CASE
                WHEN e.value -> 'value' ? 'arrayValue' OR e.value -> 'value' ? 'kvlistValue'
                    THEN monitoring._otlp_nested_value(e.value -> 'value', p_depth - 1)
                ELSE monitoring._otlp_value(e.value -> 'value')
            END
        ), '{}')
        FROM jsonb_array_elements(v_items) AS e (value)
        WHERE jsonb_typeof(e.value -> 'key') = 'string'
    );
END
$$;

-- An AnyValue as plain JSON. SQL with a CASE only, so PostgreSQL inlines it into the ingest
-- query; lists and maps (rare) go to _otlp_nested_value.
CREATE OR REPLACE FUNCTION monitoring._otlp_value(p_value jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- strings first and in one lookup: most attributes are strings, and a caller's argument
    -- (a.value -> 'value') is evaluated again for each mention here
    SELECT coalesce(p_value -> 'stringValue', CASE
        WHEN p_value ? 'intValue' THEN CASE
            -- a JSON number as it is written: jsonb's input (to_jsonb is STABLE, and a STABLE
            -- call in this IMMUTABLE body would keep PostgreSQL from inlining it)
            WHEN pg_catalog.jsonb_typeof(p_value -> 'intValue') = 'string'
                AND (p_value ->> 'intValue') ~ '^-?(0|[1-9][0-9]{0,18})$'
                THEN (p_value ->> 'intValue')::jsonb
            ELSE p_value -> 'intValue'
        END
        WHEN p_value ? 'doubleValue' THEN p_value -> 'doubleValue'
        WHEN p_value ? 'boolValue' THEN p_value -> 'boolValue'
        WHEN p_value ? 'arrayValue' OR p_value ? 'kvlistValue'
            THEN monitoring._otlp_nested_value(p_value, 10)
        WHEN p_value ? 'bytesValue' THEN p_value -> 'bytesValue'
        ELSE 'null'::jsonb
    END);
$$;

-- A KeyValue list as one object. PL/pgSQL, not SQL: a SQL function holding a query is not
-- inlined, and would be planned again by every statement that calls it.
CREATE OR REPLACE FUNCTION monitoring.otlp_attributes(p_list jsonb)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
BEGIN
    IF jsonb_typeof(p_list) IS DISTINCT FROM 'array' OR p_list = '[]' THEN
        RETURN '{}';
    END IF;
    RETURN (
        SELECT coalesce(jsonb_object_agg(a.value ->> 'key', monitoring._otlp_value(a.value -> 'value')), '{}')
        FROM jsonb_array_elements(p_list) AS a (value)
        WHERE jsonb_typeof(a.value -> 'key') = 'string'
    );
END
$$;

COMMENT ON FUNCTION monitoring.otlp_attributes(jsonb) IS
'An OTLP JSON KeyValue list as one flat object: {"key": plain value, ...}';

-- Unix nanoseconds (a decimal string, or a JSON number, as ->> gives them) as a timestamptz;
-- NULL when it is not one. Microseconds are what timestamptz keeps. Runs twice per span:
-- a length test and an unbounded '^[0-9]+$' in the C collation cost a third of translate()'s
-- character-by-character lookups, and a tenth of a bounded '{1,19}'.
CREATE OR REPLACE FUNCTION monitoring._otlp_time(p_nanos text)
RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.length(p_nanos) BETWEEN 1 AND 19
            AND p_nanos COLLATE "C" ~ '^[0-9]+$'
            -- 19 digits may be over int64: compared as text, digits sort as numbers do
            AND (pg_catalog.length(p_nanos) < 19 OR p_nanos COLLATE "C" <= '9223372036854775807')
            AND p_nanos::bigint > 0
            THEN pg_catalog.to_timestamp((p_nanos::bigint / 1000)::double precision / 1000000)
    END;
$$;

-- The nanoseconds from p_start to p_end (both Unix nanoseconds, checked by _otlp_time).
CREATE OR REPLACE FUNCTION monitoring._otlp_duration(p_start text, p_end text)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT p_end::bigint - p_start::bigint;
$$;

-- The resources and scopes of a request, one row per (resource, scope) with its index
-- (r, s), what identifies it (digest) and its items (spans or log records). p_outer and
-- p_scopes name the lists: resourceSpans/scopeSpans, resourceLogs/scopeLogs. A set-returning
-- SQL function: inlined into the query that calls it.
CREATE OR REPLACE FUNCTION monitoring._otlp_sources(
    p_request jsonb, p_outer text, p_scopes text, p_items text
)
RETURNS TABLE (
    r integer, s integer, service text, attributes jsonb, scope_name text,
    scope_version text, digest uuid, items jsonb
)
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT
        src.r,
        src.s,
        src.service,
        src.attributes,
        src.scope_name,
        src.scope_version,
        -- || not concat_ws, which is STABLE: this function is inlined only if it is all
        -- IMMUTABLE
        pg_catalog.md5(
            src.service || E'\x1f' || src.attributes::text || E'\x1f'
            || coalesce(src.scope_name, '') || E'\x1f' || coalesce(src.scope_version, '')
        )::uuid AS digest,
        src.items
    FROM (
        SELECT
            rs.ord::integer AS r,
            ss.ord::integer AS s,
            monitoring._index_text(coalesce(
                nullif(ra.attributes ->> 'service.name', ''), 'unknown_service'
            ), 200) AS service,
            ra.attributes,
            monitoring._index_text(ss.value #>> '{scope,name}', 200) AS scope_name,
            monitoring._index_text(ss.value #>> '{scope,version}', 200) AS scope_version,
            CASE WHEN pg_catalog.jsonb_typeof(ss.value -> p_items) = 'array'
                THEN ss.value -> p_items ELSE '[]'::jsonb END AS items
        FROM pg_catalog.jsonb_array_elements(
            CASE WHEN pg_catalog.jsonb_typeof(p_request -> p_outer) = 'array'
                THEN p_request -> p_outer ELSE '[]'::jsonb END
        ) WITH ORDINALITY AS rs (value, ord)
        -- OFFSET 0: once per resource, not pulled up into (and run again for) every item
        CROSS JOIN LATERAL (
            SELECT monitoring.otlp_attributes(rs.value #> '{resource,attributes}') AS attributes
            OFFSET 0
        ) AS ra
        CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(
            CASE WHEN pg_catalog.jsonb_typeof(rs.value -> p_scopes) = 'array'
                THEN rs.value -> p_scopes ELSE '[]'::jsonb END
        ) WITH ORDINALITY AS ss (value, ord)
    ) AS src;
$$;

-- What record_spans, record_logs and record_metrics do first: check that the request is
-- one, read the settings, count its items (a metric's: its data points) against
-- otlp.max_items_per_call (before any per-item work), and find or store its resources:
-- sources maps "r.s" (resource, scope) to [resource id, service]. p_signal: 'spans', 'logs'
-- or 'metrics'.
CREATE OR REPLACE FUNCTION monitoring._otlp_request(
    p_request jsonb, p_signal text, OUT cfg jsonb, OUT total integer, OUT sources jsonb,
    OUT key_pattern text, OUT key_likes text[], OUT safe_keys text[]
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_outer text := CASE p_signal
        WHEN 'spans' THEN 'resourceSpans' WHEN 'metrics' THEN 'resourceMetrics' ELSE 'resourceLogs'
    END;
    v_scopes text := CASE p_signal
        WHEN 'spans' THEN 'scopeSpans' WHEN 'metrics' THEN 'scopeMetrics' ELSE 'scopeLogs'
    END;
    v_items text := CASE p_signal
        WHEN 'spans' THEN 'spans' WHEN 'metrics' THEN 'metrics' ELSE 'logRecords'
    END;
BEGIN
    IF jsonb_typeof(p_request) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'p_request must be an OTLP Export%ServiceRequest (a JSON object with '
            '"%"), not %',
            CASE p_signal WHEN 'spans' THEN 'Trace' WHEN 'metrics' THEN 'Metrics' ELSE 'Logs' END,
            v_outer,
            coalesce(jsonb_typeof(p_request), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT st.value, st.scrub_pattern, st.scrub_likes, st.scrub_safe_keys
    INTO cfg, key_pattern, key_likes, safe_keys
    FROM monitoring.settings_snapshot AS st;
    -- the whole request bounded before any work on it (its size is in its header)
    IF pg_column_size(p_request) > (cfg ->> 'otlp.max_request_bytes')::bigint THEN
        RAISE EXCEPTION 'p_request has % bytes, over otlp.max_request_bytes (%)',
            pg_column_size(p_request), cfg ->> 'otlp.max_request_bytes'
            USING ERRCODE = 'program_limit_exceeded',
                HINT = 'Send less per call (pg-monitoring serve splits requests).';
    END IF;
    IF p_signal = 'metrics' THEN
        -- a metric's points are under its one data field (gauge, sum, histogram, ...)
        SELECT coalesce(sum(jsonb_array_length(d.value -> 'dataPoints')), 0)::integer INTO total
        FROM monitoring._otlp_sources(p_request, v_outer, v_scopes, v_items) AS src
        CROSS JOIN LATERAL jsonb_array_elements(src.items) AS mt (value)
        CROSS JOIN LATERAL jsonb_each(
            CASE WHEN jsonb_typeof(mt.value) = 'object' THEN mt.value ELSE '{}' END
        ) AS d
        WHERE d.key IN ('gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary')
            AND jsonb_typeof(d.value -> 'dataPoints') = 'array';
    ELSE
        SELECT coalesce(sum(jsonb_array_length(src.items)), 0)::integer INTO total
        FROM monitoring._otlp_sources(p_request, v_outer, v_scopes, v_items) AS src;
    END IF;
    IF total > (cfg ->> 'otlp.max_items_per_call')::integer THEN
        RAISE EXCEPTION 'p_request holds % %, over otlp.max_items_per_call (%)',
            total, CASE p_signal
                WHEN 'spans' THEN 'spans' WHEN 'metrics' THEN 'data points' ELSE 'log records'
            END,
            cfg ->> 'otlp.max_items_per_call'
            USING ERRCODE = 'program_limit_exceeded',
                HINT = 'Send fewer per call (pg-monitoring serve splits requests).';
    END IF;
    IF total > 0 THEN
        -- in statements of their own, before the items: a resource another writer stores
        -- at the same moment is then found (see _otlp_resource_ids)
        SELECT jsonb_object_agg(ri.r || '.' || ri.s, jsonb_build_array(ri.resource_id, ri.service))
        INTO sources
        FROM monitoring._otlp_resource_ids(
            p_request, v_outer, v_scopes, cfg, key_pattern, key_likes, safe_keys
        ) AS ri;
    END IF;
END
$$;

-- OTLP's partial_success message: how many of p_total items were refused, and why: each
-- reason (the first five, in request order) with its count and where its first item was.
-- p_refused: [[reason, resource, scope, item], ...], 1-based as WITH ORDINALITY counts; for
-- metrics [reason, resource, scope, metric, data point].
CREATE OR REPLACE FUNCTION monitoring._otlp_refusals(
    p_signal text, p_total integer, p_refused jsonb
)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_path text[] := CASE p_signal
        WHEN 'spans' THEN ARRAY['spans', 'resourceSpans', 'scopeSpans', 'spans']
        WHEN 'metrics' THEN ARRAY['data points', 'resourceMetrics', 'scopeMetrics', 'metrics']
        ELSE ARRAY['log records', 'resourceLogs', 'scopeLogs', 'logRecords']
    END;
BEGIN
    IF p_refused IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN format(
        '%s of %s %s rejected: ', jsonb_array_length(p_refused), p_total, v_path[1]
    ) || (
        SELECT string_agg(format(
            '%s (%s %s, first: %s[%s].%s[%s].%s[%s]%s)', x.reason, x.n, v_path[1],
            v_path[2], x.r - 1, v_path[3], x.s - 1, v_path[4], x.i - 1,
            coalesce('.dataPoints[' || x.j - 1 || ']', '')
        ), '; ' ORDER BY x.r, x.s, x.i, x.j)
        FROM (
            -- each reason's first item, with the reason's count; the five first of those
            SELECT f.*
            FROM (
                SELECT DISTINCT ON (q.reason)
                    q.reason, q.r, q.s, q.i, q.j, count(*) OVER (PARTITION BY q.reason) AS n
                FROM (
                    SELECT
                        e.value ->> 0 AS reason,
                        (e.value ->> 1)::integer AS r,
                        (e.value ->> 2)::integer AS s,
                        (e.value ->> 3)::integer AS i,
                        (e.value ->> 4)::integer AS j
                    FROM jsonb_array_elements(p_refused) AS e (value)
                ) AS q
                ORDER BY q.reason, q.r, q.s, q.i, q.j
            ) AS f
            ORDER BY f.r, f.s, f.i, f.j
            LIMIT 5
        ) AS x
    );
END
$$;

GRANT EXECUTE ON FUNCTION monitoring.otlp_attributes(jsonb)
TO monitoring_reader, monitoring_writer, monitoring_admin;

-- Attributes (or any document) as we keep them: strings cut to p_max_length and nesting to
-- 10 levels, at most p_max_bytes, scrubbed with the settings snapshot's scrub_* values (a
-- NULL pattern: not scrubbed). Each step only when a cheap test says it may change something.
CREATE OR REPLACE FUNCTION monitoring._otlp_clean(
    p_doc jsonb, p_max_bytes integer, p_max_length integer,
    p_key_pattern text, p_key_likes text[], p_safe_keys text[]
)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
AS $$
DECLARE
    v_text text;
BEGIN
    IF p_doc IS NULL OR p_doc = '{}' THEN
        RETURN p_doc;
    END IF;
    IF pg_column_size(p_doc) > p_max_length OR jsonb_path_exists(p_doc, 'strict $.**{12}') THEN
        p_doc := monitoring.bound_json(p_doc, p_max_length);
    END IF;
    -- apart: the byte limit may be the smaller one (cap_object tests the size first)
    p_doc := monitoring.cap_object(p_doc, p_max_bytes);
    IF p_key_pattern IS NOT NULL THEN
        v_text := p_doc::text;
        IF monitoring._may_hold_secrets(v_text, p_key_pattern, p_key_likes) THEN
            p_doc := monitoring.scrub_with(p_doc, p_key_pattern, p_safe_keys);
        END IF;
    END IF;
    RETURN p_doc;
END
$$;

-- The id of each (resource, scope) of a request, stored first when new. Apart from the
-- ingest query, in statements of their own: a resource another writer stores at the same
-- moment is found by the SELECT, whose snapshot is taken after the INSERT waited for it.
CREATE OR REPLACE FUNCTION monitoring._otlp_resource_ids(
    p_request jsonb, p_outer text, p_scopes text, p_cfg jsonb,
    p_key_pattern text, p_key_likes text[], p_safe_keys text[]
)
RETURNS TABLE (r integer, s integer, resource_id integer, service text)
LANGUAGE plpgsql
AS $$
DECLARE
    v_max_length integer := (p_cfg ->> 'otlp.max_attribute_length')::integer;
BEGIN
    INSERT INTO monitoring.otel_resources AS o (
        digest, service, attributes, scope_name, scope_version
    )
    SELECT DISTINCT ON (src.digest)
        src.digest,
        src.service,
        monitoring._otlp_clean(
            src.attributes, (p_cfg ->> 'otlp.max_attributes_bytes')::integer, v_max_length,
            p_key_pattern, p_key_likes, p_safe_keys
        ),
        src.scope_name,
        src.scope_version
    FROM monitoring._otlp_sources(p_request, p_outer, p_scopes, 'none') AS src
    -- an anti-join written as a join: Citus refuses a correlated NOT EXISTS over a
    -- set-returning function once otel_resources is a reference table (scaling/)
    LEFT JOIN monitoring.otel_resources AS e ON src.digest = e.digest
    WHERE e.digest IS NULL
    ORDER BY src.digest
    ON CONFLICT (digest) DO NOTHING;

    RETURN QUERY
    SELECT src.r, src.s, o.id, o.service
    FROM monitoring._otlp_sources(p_request, p_outer, p_scopes, 'none') AS src
    INNER JOIN monitoring.otel_resources AS o ON src.digest = o.digest;
END
$$;
