-- Last of every script: nothing in the schema is callable by PUBLIC. Each component grants
-- its own functions to the monitoring_* roles next to their definitions; this catches a
-- function that forgot to revoke PostgreSQL's default EXECUTE for PUBLIC.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA monitoring FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA monitoring FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA monitoring FROM PUBLIC;
