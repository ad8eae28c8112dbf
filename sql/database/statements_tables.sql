-- The last snapshot of pg_stat_statements' counters for this database, which
-- database_statements subtracts: what statements did since then, not since the statistics
-- were last reset (a total over months says little about now). Counters only, no query
-- text; replaced whole by each snapshot (run_maintenance).
CREATE TABLE monitoring.database_statement_snapshots (
    userid oid NOT NULL,
    queryid bigint NOT NULL,
    toplevel boolean NOT NULL,
    calls bigint NOT NULL,
    total_exec_time double precision NOT NULL,
    rows bigint NOT NULL,
    shared_blks_hit bigint NOT NULL,
    shared_blks_read bigint NOT NULL,
    temp_blks_written bigint NOT NULL,
    taken_at timestamptz NOT NULL,
    PRIMARY KEY (userid, queryid, toplevel)
);

COMMENT ON TABLE monitoring.database_statement_snapshots IS
'pg_stat_statements counters of this database at the last snapshot (run_maintenance)';

GRANT SELECT ON monitoring.database_statement_snapshots TO monitoring_reader, monitoring_admin;
