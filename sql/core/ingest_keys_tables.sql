-- Ingest keys: what `pg-monitoring serve` asks of an HTTP request (Authorization: Bearer
-- <key>). Only a key's SHA-256 is stored: the key itself is shown once, by add_ingest_key,
-- and a stolen dump of this table sends nothing. Functions are in ingest_keys.sql.
CREATE TABLE monitoring.ingest_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (
        pg_catalog.length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'
    ),
    key_hash bytea NOT NULL UNIQUE CHECK (pg_catalog.octet_length(key_hash) = 32),
    scopes text[] NOT NULL CHECK (
        pg_catalog.cardinality(scopes) > 0 AND scopes <@ monitoring.ingest_scopes()
    ),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by name NOT NULL DEFAULT session_user,
    -- written at most once a minute per key (check_ingest_key), so a busy key does not
    -- make every check a write
    last_used_at timestamptz,
    revoked_at timestamptz,
    revoked_by name
);

-- A name stays with its key once revoked (the list shows both), and may be given again.
CREATE UNIQUE INDEX ingest_keys_live_name ON monitoring.ingest_keys (name)
WHERE revoked_at IS NULL;

COMMENT ON TABLE monitoring.ingest_keys IS
'Keys that may send data to pg-monitoring serve; only their SHA-256 is kept';

SELECT monitoring._keep_rows_in_dump(t)
FROM pg_catalog.unnest(ARRAY[
    'monitoring.ingest_keys',
    'monitoring.ingest_keys_id_seq'
]::regclass[]) AS t;
