"""The bad-input suite (issue #11): every public function family called with bad input.

Each case is one call, made as the role that may make it, under a statement timeout. It is
answered by what it stored (cut down, with a visible marker, when it was oversize) or by a
clear error: an SQLSTATE of the case's list and a short message naming what was wrong.
Never by a half-stored event, a raw PostgreSQL limit or a timeout; and after each family,
maintenance runs clean and everything stored reads back through psycopg.
"""
