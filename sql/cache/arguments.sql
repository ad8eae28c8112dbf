-- What a SET's arguments become, checked: the indexed form of a key, a TTL as an expiry time,
-- a value clients can read back, tags that fit the tag index. Each check is plain SQL inlined
-- into the caller, with its error branch a call.

-- The btree key of an entry. A btree tuple holds at most ~2.7 KB, so a key longer than 500
-- characters (up to 2000 bytes) is indexed as its first 500 characters, '#' and the md5 of the
-- whole key: 533 characters, so it can never equal a short key, and it keeps the prefix that
-- pattern deletes scan by. Readers compare the full key too, so even an md5 collision could
-- only make one long key overwrite the other, never return the other's value.
-- md5, not sha256: it takes text and is IMMUTABLE, which the generated column and inlining
-- into the hot read path both need (sha256 would need convert_to, which is only STABLE).
CREATE OR REPLACE FUNCTION monitoring.cache_index_key(p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.char_length(p_key) <= 500 THEN p_key
        ELSE pg_catalog.left(p_key, 500) || '#' || pg_catalog.md5(p_key)
    END;
$$;

COMMENT ON FUNCTION monitoring.cache_index_key(text) IS
'The indexed form of a cache key: the key itself, or for keys over 500 characters its first '
'500 characters, ''#'' and its md5';

-- Redis's TTL rules, with one limit of our own: a TTL must be a positive number of seconds
-- (fractions allowed) of at most 10^12 (31,700 years; timestamptz ends in 294276 AD). NaN,
-- zero, negative and larger TTLs raise. NULL means no expiry.
CREATE OR REPLACE FUNCTION monitoring._cache_bad_ttl(p_ttl double precision)
RETURNS timestamptz
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'p_ttl must be a number of seconds above 0 and at most 1e12, not %', p_ttl
        USING ERRCODE = 'invalid_parameter_value';
END
$$;

COMMENT ON FUNCTION monitoring._cache_bad_ttl(double precision) IS
'Raises the error for a TTL that is not positive, NaN or over 1e12 seconds';

-- Plain SQL so that it inlines into the callers' statements; the error branch is a call.
CREATE OR REPLACE FUNCTION monitoring._cache_expiry(p_ttl double precision)
RETURNS timestamptz
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN p_ttl IS NULL THEN 'infinity'::timestamptz
        WHEN p_ttl > 0 AND p_ttl <= 1e12
            THEN pg_catalog.now() + p_ttl * INTERVAL '1 second'
        ELSE monitoring._cache_bad_ttl(p_ttl)
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_expiry(double precision) IS
'When an entry stored now with TTL p_ttl seconds expires (''infinity'' for NULL)';

-- A JSON value a SET may store: nested at most 512 levels, so that clients can read it back
-- (Python's json module gives up at about 1,000 levels, Ruby's JSON at 100 by default).
-- Raises naming p_name otherwise.
CREATE OR REPLACE FUNCTION monitoring._cache_checked_value(p_value jsonb, p_name text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF jsonb_path_exists(p_value, 'strict $.**{513}') THEN
        RAISE EXCEPTION '% is nested more than 512 levels deep', p_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_value;
END
$$;

-- p_value, checked only when it may be too deep: each level of a jsonb value takes 8 bytes
-- or more, so one of 4 kB or less (as clients send it) is not, and the SET, where this is
-- inlined, pays one comparison. STABLE as pg_column_size is: an IMMUTABLE SQL function over
-- a STABLE one is not inlined.
CREATE OR REPLACE FUNCTION monitoring._cache_value(p_value jsonb, p_name text)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN p_value IS NULL OR pg_catalog.pg_column_size(p_value) <= 4096 THEN p_value
        ELSE monitoring._cache_checked_value(p_value, p_name)
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_value(jsonb, text) IS
'p_value as a SET stores it; raises for JSON nested more than 512 levels deep';

-- Tags a SET may store: each is an entry of the GIN tag index, which holds at most ~2.7 kB;
-- 500 characters are at most 2,000 bytes. Raises naming p_tags otherwise.
CREATE OR REPLACE FUNCTION monitoring._cache_checked_tags(p_tags text[])
RETURNS text[]
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF EXISTS (SELECT FROM unnest(p_tags) AS t (tag) WHERE length(t.tag) > 500) THEN
        RAISE EXCEPTION 'p_tags must be tags of at most 500 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN nullif(p_tags, '{}');
END
$$;

-- The tags to store (NULL for none), checked only when they may be too long: inlined into
-- the SET (STABLE, as array_to_string is), where tags of 500 bytes in all cost one
-- comparison.
CREATE OR REPLACE FUNCTION monitoring._cache_tags(p_tags text[])
RETURNS text[]
LANGUAGE sql
STABLE
AS $$
    SELECT CASE
        WHEN p_tags IS NULL OR pg_catalog.octet_length(pg_catalog.array_to_string(p_tags, '')) <= 500
            THEN nullif(p_tags, '{}')
        ELSE monitoring._cache_checked_tags(p_tags)
    END;
$$;

COMMENT ON FUNCTION monitoring._cache_tags(text[]) IS
'p_tags as a SET stores them (NULL for none); raises for a tag over 500 characters';

GRANT EXECUTE ON FUNCTION
monitoring.cache_index_key(text),
monitoring._cache_bad_ttl(double precision),
monitoring._cache_expiry(double precision),
monitoring._cache_checked_value(jsonb, text),
monitoring._cache_value(jsonb, text),
monitoring._cache_checked_tags(text[]),
monitoring._cache_tags(text[])
TO monitoring_writer;
