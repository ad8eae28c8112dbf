-- Keys by pattern (Redis globs: KEYS, SCAN MATCH, delete by pattern) and by tag.

-- One character of a glob as a regular expression atom, good in and out of brackets: letters
-- and digits as they are, anything else as \Uhhhhhhhh, so nothing in a key is special.
CREATE OR REPLACE FUNCTION monitoring._cache_regex_char(p_char text)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE
        WHEN p_char ~ '^[A-Za-z0-9]$' THEN p_char
        ELSE E'\\U' || pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.ascii(p_char)), 8, '0')
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_regex_char(text) IS
'A character as a regular expression atom that matches just that character';

-- A glob pattern, Redis style (* ? [abc] [^a-z] \x), as an anchored regular expression and
-- the literal prefix every match starts with. It follows Redis's stringmatchlen to the letter,
-- quirks included: an unclosed [ ends at the end of the pattern, a - right before the closing ]
-- makes a range that swallows the ], and the empty key matches only '' and '*'. It matches
-- characters where Redis matches bytes, which differs only for ? and [] over non-ASCII keys.
-- LIKE is never used, so % and _ are ordinary characters.
CREATE OR REPLACE FUNCTION monitoring.cache_glob(
    p_pattern text, OUT regex text, OUT prefix text, OUT prefix_end text
)
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_chars text[];
    v_length integer;
    v_i integer := 1;
    v_c text;
    v_class text;
    v_empty_class boolean;
    v_negated boolean;
    v_literal boolean := TRUE;
    v_last integer;
BEGIN
    IF p_pattern IS NULL THEN
        RETURN;
    END IF;
    -- Every key a scan reads is matched in time that grows with the pattern (and this loop
    -- with its square): 1,000 characters hold any prefix the index keeps (500) and then some.
    IF length(p_pattern) > 1000 THEN
        RAISE EXCEPTION 'p_pattern must be at most 1000 characters, not %', length(p_pattern)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- regexp_split_to_array('', '') is {""}, one empty character: an empty pattern has none.
    v_chars := CASE WHEN p_pattern <> '' THEN regexp_split_to_array(p_pattern, '') END;
    v_length := cardinality(v_chars);
    regex := '';
    prefix := '';
    WHILE v_i <= v_length LOOP
        v_c := v_chars[v_i];
        IF v_c = '*' THEN
            -- A run of stars is one, as in Redis: 1,000 of them make a regex too complex to
            -- compile.
            IF right(regex, 2) <> '.*' THEN
                regex := regex || '.*';
            END IF;
            v_literal := FALSE;
        ELSIF v_c = '?' THEN
            regex := regex || '.';
            v_literal := FALSE;
        ELSIF v_c = '[' THEN
            v_literal := FALSE;
            v_i := v_i + 1;
            v_negated := v_i <= v_length AND v_chars[v_i] = '^';
            IF v_negated THEN
                v_i := v_i + 1;
            END IF;
            v_class := '';
            LOOP
                EXIT WHEN v_i > v_length OR v_chars[v_i] = ']';
                IF v_chars[v_i] = E'\\' AND v_i < v_length THEN
                    v_i := v_i + 1;
                    v_class := v_class || monitoring._cache_regex_char(v_chars[v_i]);
                ELSIF v_chars[v_i + 1] = '-' AND v_i + 2 <= v_length THEN
                    -- Redis swaps a reversed range.
                    v_class := v_class
                        || monitoring._cache_regex_char(least(v_chars[v_i], v_chars[v_i + 2] COLLATE "C"))
                        || '-'
                        || monitoring._cache_regex_char(greatest(v_chars[v_i], v_chars[v_i + 2] COLLATE "C"));
                    v_i := v_i + 2;
                ELSE
                    v_class := v_class || monitoring._cache_regex_char(v_chars[v_i]);
                END IF;
                v_i := v_i + 1;
            END LOOP;
            v_empty_class := v_class = '';
            IF v_empty_class AND NOT v_negated THEN
                -- [] matches no character, so the pattern matches nothing.
                regex := NULL;
                prefix := NULL;
                RETURN;
            END IF;
            regex := regex || CASE
                WHEN v_empty_class THEN '.'
                WHEN v_negated THEN '[^' || v_class || ']'
                ELSE '[' || v_class || ']'
            END;
        ELSE
            IF v_c = E'\\' AND v_i < v_length THEN
                v_i := v_i + 1;
                v_c := v_chars[v_i];
            END IF;
            regex := regex || monitoring._cache_regex_char(v_c);
            IF v_literal THEN
                prefix := prefix || v_c;
            END IF;
        END IF;
        v_i := v_i + 1;
    END LOOP;
    -- Redis's matcher needs at least one key character to start, and lists every key for a
    -- lone * only through a special case of KEYS and SCAN.
    regex := CASE
        WHEN p_pattern IN ('', '*') THEN '^' || regex || '$'
        ELSE '^(?=.)' || regex || '$'
    END;

    -- The index holds only the first 500 characters of long keys.
    prefix := left(prefix, 500);
    -- The least string above every string that starts with prefix, in byte order: its last
    -- character plus one, skipping the UTF-16 surrogates, which are no characters; none when the
    -- prefix is empty or all U+10FFFF.
    prefix_end := rtrim(prefix, chr(1114111));
    v_last := ascii(right(prefix_end, 1));
    prefix_end := CASE
        WHEN prefix_end = '' THEN NULL
        ELSE left(prefix_end, -1) || chr(CASE WHEN v_last = 55295 THEN 57344 ELSE v_last + 1 END)
    END;
END
$$;

COMMENT ON FUNCTION monitoring.cache_glob(text) IS
'A Redis glob pattern as an anchored regular expression (NULL: matches nothing) and the '
'literal prefix of every key it matches, with the least string above that prefix';

-- The keys matching p_pattern, in index order, after the key p_after. A literal prefix turns
-- into an index range, so 'user:*' reads only the user: keys of a million-key cache; a pattern
-- that starts with a wildcard reads them all.
CREATE OR REPLACE FUNCTION monitoring._cache_matching(p_pattern text, p_after text, p_limit bigint)
RETURNS TABLE (index_key text, key text)
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_glob record;
    v_after text := monitoring.cache_index_key(p_after);
BEGIN
    IF p_limit < 0 THEN
        RAISE EXCEPTION 'p_limit must be 0 or more (NULL: no limit), not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_glob := monitoring.cache_glob(p_pattern);
    IF v_glob.regex IS NULL THEN
        RETURN;
    END IF;
    IF v_glob.prefix_end IS NULL THEN
        RETURN QUERY
        SELECT e.index_key, e.key::text
        FROM monitoring.cache_entries AS e
        WHERE
            e.index_key >= greatest(v_glob.prefix, v_after)
            AND e.index_key IS DISTINCT FROM v_after
            AND e.key ~ v_glob.regex
            AND e.expires_at > now()
        ORDER BY e.index_key
        LIMIT p_limit;
    ELSE
        RETURN QUERY
        SELECT e.index_key, e.key::text
        FROM monitoring.cache_entries AS e
        WHERE
            e.index_key >= greatest(v_glob.prefix, v_after)
            AND e.index_key < v_glob.prefix_end
            AND e.index_key IS DISTINCT FROM v_after
            AND e.key ~ v_glob.regex
            AND e.expires_at > now()
        ORDER BY e.index_key
        LIMIT p_limit;
    END IF;
END
$$;

COMMENT ON FUNCTION monitoring._cache_matching(text, text, bigint) IS
'Index key and key of the live entries matching glob p_pattern after key p_after, '
'at most p_limit (NULL: all)';

CREATE OR REPLACE FUNCTION monitoring.cache_keys(
    p_pattern text DEFAULT '*', p_after text DEFAULT NULL, p_limit bigint DEFAULT NULL
)
RETURNS SETOF text
LANGUAGE sql
STABLE
AS $$
    SELECT m.key FROM monitoring._cache_matching(p_pattern, p_after, p_limit) AS m;
$$;

COMMENT ON FUNCTION monitoring.cache_keys(text, text, bigint) IS
'Live keys matching the Redis glob p_pattern (at most 1000 characters), in index order; '
'p_after and p_limit page through them (Redis KEYS and SCAN MATCH)';

CREATE OR REPLACE FUNCTION monitoring.cache_delete_pattern(p_pattern text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    -- = ANY(ARRAY(...)), not a join: joined to a function scan, the planner would hash the
    -- whole table.
    DELETE FROM monitoring.cache_entries AS e
    WHERE e.index_key = ANY(
        ARRAY(SELECT m.index_key FROM monitoring._cache_matching(p_pattern, NULL, NULL) AS m)
    );
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring.cache_delete_pattern(text) IS
E'Deletes the live keys matching the Redis glob p_pattern (user:*, h?llo, h[ae]llo, \\*); '
'returns how many';

CREATE OR REPLACE FUNCTION monitoring.cache_delete_tag(p_tag text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    -- tags IS NOT NULL matches the partial index's predicate.
    DELETE FROM monitoring.cache_entries AS e
    WHERE e.tags @> ARRAY[p_tag] AND e.tags IS NOT NULL AND e.expires_at > now();
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION monitoring.cache_delete_tag(text) IS
'Deletes the live entries stored with tag p_tag; returns how many';

GRANT EXECUTE ON FUNCTION
monitoring._cache_regex_char(text),
monitoring.cache_glob(text),
monitoring._cache_matching(text, text, bigint),
monitoring.cache_keys(text, text, bigint),
monitoring.cache_delete_pattern(text),
monitoring.cache_delete_tag(text)
TO monitoring_writer;
