"""The health of the PostgreSQL server pg_monitoring lives in: reads of the `database_*`
views and `database_statements` (sql/database/), and how the CLI prints them."""
