"""SQL as text: what a statement is (``statements``) and the lock each takes (``lockmodes``).

Pure functions over SQL text (PostgreSQL's own parser through pglast where it matters);
no connection.  May import ``core.errors`` only.
"""
