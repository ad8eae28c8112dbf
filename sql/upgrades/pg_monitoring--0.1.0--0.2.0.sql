-- pg_monitoring 0.1.0 -> 0.2.0 (in development).
--
-- Components new in this version are included whole; changes to 0.1.0 objects are written
-- out here. tests/test_upgrade.py requires the result to equal a fresh 0.2.0 install.

-- @include ../normalize.sql
-- @include ../privileges.sql
