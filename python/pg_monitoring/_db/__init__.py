"""The plumbing every client shares, once: where connections come from (`connection`,
generated from `connection_async`), what one call is (`calls`), and how a call is bounded and
refused while the database is away (`breaker`). The exceptions are `pg_monitoring.errors`."""
