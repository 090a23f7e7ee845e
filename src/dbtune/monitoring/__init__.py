"""The database's health: the monitoring queries and views (``views``) and `dbtune report` (``report``).

The SQL lives in ``sql/monitoring/``, one file a report.  May import ``core``.
"""
