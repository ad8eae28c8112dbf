-- pg_monitoring 0.1.0 -> 0.2.0 (in development).
--
-- Components new in this version are included whole, and so are the files of the functions
-- and views it changes (every one is CREATE OR REPLACE); changes to 0.1.0's tables are
-- written out here. tests/test_upgrade.py requires the result to equal a fresh 0.2.0 install.

-- Settings have ranges (core/settings.sql checks them; effective_settings shows them).
ALTER TABLE monitoring.setting_definitions
ADD COLUMN min_value numeric,
ADD COLUMN max_value numeric,
ADD COLUMN fractional boolean NOT NULL DEFAULT FALSE;

-- version() runs as its owner now
-- @include ../core/install.sql
-- @include ../core/settings_snapshot_table.sql
-- @include ../core/settings.sql
-- @include ../core/formats.sql
-- @include ../core/arguments.sql
-- @include ../core/levels.sql
-- @include ../core/limits.sql
-- @include ../core/partitions.sql
-- @include ../core/scrubbing.sql
-- @include ../core/ingest_scopes.sql
-- @include ../core/ingest_keys_tables.sql
-- @include ../core/ingest_keys.sql
-- @include ../core/ingest_drops_table.sql
-- @include ../core/ingest_drops.sql
-- @include ../core/maintenance_runs_table.sql

-- @include ../errors/normalize.sql
-- @include ../errors/stack_traces.sql
-- @include ../errors/fingerprint.sql
-- @include ../errors/vocabulary.sql
-- @include ../errors/tables.sql
-- @include ../errors/storm_tables.sql
-- @include ../errors/views.sql
-- @include ../errors/issues.sql
-- @include ../errors/capture_chain.sql
-- @include ../errors/capture_limits.sql
-- @include ../errors/storm.sql
-- @include ../errors/ingest.sql
-- @include ../errors/capture.sql
-- @include ../errors/sentry.sql
-- @include ../errors/maintenance.sql

-- @include ../alerts/vocabulary.sql
-- @include ../alerts/tables.sql
-- @include ../alerts/channels.sql
-- @include ../alerts/rules.sql
-- @include ../alerts/firing.sql
-- @include ../alerts/outbox.sql
-- @include ../alerts/views.sql

-- @include ../cache/tables.sql
-- @include ../cache/arguments.sql
-- @include ../cache/reads.sql
-- @include ../cache/eviction.sql
-- @include ../cache/writes.sql
-- @include ../cache/keys.sql
-- @include ../cache/patterns.sql
-- @include ../cache/locks.sql
-- @include ../cache/stats.sql
-- @include ../cache/maintenance.sql

-- @include ../otlp/tables.sql
-- @include ../otlp/values.sql

-- @include ../traces/tables.sql
-- @include ../traces/durations.sql
-- @include ../traces/otlp_spans.sql
-- @include ../traces/ingest.sql
-- @include ../traces/views.sql
-- @include ../traces/queries.sql
-- @include ../traces/maintenance.sql

-- @include ../logs/tables.sql
-- @include ../logs/ingest.sql
-- @include ../logs/views.sql
-- @include ../logs/maintenance.sql

-- @include ../database/views.sql
-- @include ../database/statements_tables.sql
-- @include ../database/statements.sql

-- @include ../sentry/tables.sql
-- @include ../sentry/projects.sql
-- @include ../sentry/ingest.sql
-- @include ../sentry/stats.sql

-- @include ../metrics/exposition_tables.sql
-- @include ../metrics/store_tables.sql
-- @include ../metrics/points.sql
-- @include ../metrics/ingest.sql
-- @include ../metrics/views.sql
-- @include ../metrics/maintenance.sql
-- @include ../metrics/exposition.sql

-- @include ../scaling/distribute.sql

-- @include ../core/maintenance.sql
-- @include ../core/privileges.sql
