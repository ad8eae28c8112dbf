-- Log records (OTLP's LogRecord), partitioned by day on their time, kept 14 days by default
-- (logs are the most voluminous signal and the least read after the fact). Found by trace,
-- by severity and time, and by words in the body.

INSERT INTO monitoring.setting_definitions (
    name, default_value, description, min_value, max_value
) VALUES
(
    'logs.retention_days', '14',
    'Days log records are kept; older partitions are dropped by run_maintenance',
    1, 3650
),
(
    'logs.partition_days_ahead', '7',
    'Daily log partitions run_maintenance keeps created ahead of today',
    0, 90
);

CREATE TABLE monitoring.log_records (
    time timestamptz NOT NULL,
    observed_time timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resource_id integer NOT NULL,
    -- OTLP's SeverityNumber: 1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-20 error,
    -- 21-24 fatal; 0 unspecified
    severity_number smallint NOT NULL DEFAULT 0 CHECK (severity_number BETWEEN 0 AND 24),
    severity_text text,
    body text,
    attributes jsonb NOT NULL DEFAULT '{}',
    trace_id text,
    span_id text,
    event_name text,
    -- the sender's id of the record (OpenTelemetry's log.record.uid attribute): a record
    -- sent again (a retry after a lost answer) is stored once
    record_uid text
) PARTITION BY RANGE (time);

COMMENT ON TABLE monitoring.log_records IS
'Log records, partitioned by day on time; read monitoring.logs';

CREATE TABLE monitoring.log_records_default PARTITION OF monitoring.log_records DEFAULT;

CREATE INDEX log_records_trace ON monitoring.log_records (trace_id) WHERE trace_id IS NOT NULL;

CREATE UNIQUE INDEX log_records_uid ON monitoring.log_records (record_uid, time)
WHERE record_uid IS NOT NULL;

CREATE INDEX log_records_severity ON monitoring.log_records (severity_number, time);

-- time is the partition key: within a day's partition rows arrive in about time order,
-- which a BRIN index summarises in a few pages
CREATE INDEX log_records_time ON monitoring.log_records USING brin (time);

-- words in the body: the 'simple' configuration (no stemming, no stop words) finds
-- identifiers, codes and words of any language as they were written
CREATE INDEX log_records_words ON monitoring.log_records
USING gin (to_tsvector('simple'::regconfig, coalesce(body, '')));

SELECT monitoring._keep_rows_in_dump('monitoring.log_records_default'::regclass);
