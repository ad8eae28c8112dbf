-- OpenTelemetry's data model, shared by traces, logs and (later) metrics: where telemetry
-- comes from. A resource (service.name, host, process, SDK...) with the instrumentation scope
-- that emitted it is the same for every span and log record a process sends, so it is
-- stored once and referenced by id: most of a naive span row's bytes are these attributes.

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES
(
    'otlp.max_attributes_bytes', '16384',
    'Bytes kept of the attributes of one span, log record or resource; over it the first '
    'keys that fit are kept with a _truncated marker',
    1024, 1048576
),
(
    'otlp.max_attribute_length', '4096',
    'Characters kept of one attribute value (or a log body); the rest is cut with a marker',
    256, 1048576
),
(
    'otlp.max_request_bytes', '67108864',
    'Bytes of one record_spans or record_logs request (as stored jsonb); more is refused',
    1048576, 1073741823
),
(
    'otlp.max_items_per_call', '10000',
    'Spans or log records one record_spans or record_logs call takes; more is refused '
    '(split the request)',
    100, 1000000
);

CREATE TABLE monitoring.otel_resources (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- md5 of what identifies the source (service, attributes, scope), as a uuid: 16 bytes
    digest uuid NOT NULL UNIQUE,
    service text NOT NULL,
    -- resource attributes, flattened to an object ({"service.name": "...", ...}), scrubbed
    attributes jsonb NOT NULL DEFAULT '{}',
    scope_name text,
    scope_version text,
    first_seen timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE monitoring.otel_resources IS
'Each source of telemetry once: a resource (service, host, SDK) with its instrumentation scope';

CREATE INDEX otel_resources_service ON monitoring.otel_resources (service);

SELECT monitoring._keep_rows_in_dump(t)
FROM pg_catalog.unnest(ARRAY[
    'monitoring.otel_resources',
    'monitoring.otel_resources_id_seq'
]::regclass[]) AS t;
