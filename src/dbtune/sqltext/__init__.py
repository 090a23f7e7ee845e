"""SQL as text: what a statement is (``statements``), the lock each takes (``lockmodes``, over
``lockmodel`` and ``altertable``),
and how PostgreSQL reads a name (``identifiers``); what kind of statement it is and how it uses
each table, for index advice (``shapes``, ``parameters``).

Pure functions over SQL text (PostgreSQL's own parser through pglast where it matters);
no connection.  May import ``core.errors`` only.
"""
