"""SQL as text: what a statement is (``statements``), the lock each takes (``lockmodes``, over
``lockmodel`` and ``altertable``),
and how PostgreSQL reads a name (``identifiers``).

Pure functions over SQL text (PostgreSQL's own parser through pglast where it matters);
no connection.  May import ``core.errors`` only.
"""
