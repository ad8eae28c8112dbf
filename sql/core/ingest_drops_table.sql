-- Items refused or dropped at ingest, by signal and reason, for Prometheus
-- (pg_monitoring_ingest_dropped_total). Only ever added to (monitoring._count_ingest_drop).
-- In 16 shard rows per signal and reason, by backend, as the cache's counters: a batch of
-- bad items from every exporter at once must not queue its transactions on one row.
CREATE TABLE monitoring.ingest_drops (
    signal text NOT NULL CHECK (signal IN ('events', 'spans', 'logs', 'metrics')),
    reason text NOT NULL,
    shard smallint NOT NULL,
    dropped bigint NOT NULL,
    PRIMARY KEY (signal, reason, shard)
);

COMMENT ON TABLE monitoring.ingest_drops IS
'Items refused or dropped at ingest by signal and reason, in shards summed by '
'prometheus_metrics()';

SELECT monitoring._keep_rows_in_dump('monitoring.ingest_drops'::regclass);
