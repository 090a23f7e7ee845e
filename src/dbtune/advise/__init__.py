"""`dbtune advise`: from the slow queries to a reviewed migration, proven by the planner first.

``sources`` reads the statements (pg_stat_statements, a ``.sql`` file, a checks directory);
``sqltext.shapes`` reads each one's parse tree (what kind of statement it is, how it uses each
table: `report` reads it too); ``candidates`` turns that and the table's facts (``tables``) into
index candidates; ``costing`` plans each query with each candidate (hypopg, or a sample in a scratch server);
``choose`` keeps the fewest that serve the most time; ``revision`` writes the Alembic revision
and verify checks; ``render`` the result; ``run`` ties them together.

May import ``core``, ``sqltext``, ``monitoring`` (the slow-queries query), ``verify.checks``
(check files), ``migration`` (the project a revision goes into) and ``servers`` (the scratch
server).  Nothing here writes to the target database.
"""

from __future__ import annotations

__all__ = ["advise", "Advice"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name in __all__:
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
