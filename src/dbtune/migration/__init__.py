"""The migration runner: a team's Alembic project run through its own env.py, online.

Holds ``runner`` (apply, rollback, status and the dry run over Alembic), ``intercept``
(what dbtune does to a migration's statements), ``drivers`` (what it asks of the
migration's own connection, whatever its driver) and ``session_settings`` (what it sets
on that connection, and puts back).  May import ``core``, ``sqltext`` and ``online``.
"""
