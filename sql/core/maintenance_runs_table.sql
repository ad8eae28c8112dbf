-- The last run of run_maintenance: when it ended, how long it took, which steps failed. One
-- row, replaced by each run; prometheus_metrics exposes it, so an alert can say that
-- maintenance stopped running (nothing folds, partitions run out, retention stops).
CREATE TABLE monitoring.maintenance_runs (
    only_row boolean PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    finished_at timestamptz NOT NULL,
    milliseconds numeric NOT NULL,
    failed_steps text[] NOT NULL
);

COMMENT ON TABLE monitoring.maintenance_runs IS
'The last run_maintenance: when it finished, how long it took, the steps that failed';

GRANT SELECT ON monitoring.maintenance_runs TO monitoring_reader, monitoring_admin;

SELECT monitoring._keep_rows_in_dump('monitoring.maintenance_runs'::regclass);
