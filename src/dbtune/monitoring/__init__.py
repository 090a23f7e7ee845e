"""The database's health: the monitoring queries and views (``views``) and `dbtune report`.

``report`` runs the sections (``findings`` their parts, ``sections`` and ``slow_queries`` the
builders) and grades them; ``render`` writes the result.  The SQL lives in ``sql/monitoring/``,
one file a report.  May import ``core`` and ``sqltext`` (what kind of statement a slow one is).
"""
