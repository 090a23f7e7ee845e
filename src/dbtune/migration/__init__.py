"""The migration runner: a team's Alembic project run through its own env.py, online.

Holds the verbs (``verbs``: apply, rollback, status) and what they are made of:
``config`` (Alembic's Config for the project, the run's options), ``run`` (one pass
through env.py: the database it binds, the run lock, dbtune's own sessions),
``revisions`` (what a revision name means: known, pending, past, the destination),
``steps`` (which revision Alembic is running), ``failures`` (what an exception
means), ``dryrun`` (the annotated offline SQL), ``results`` (what the verbs
return), ``intercept`` (what dbtune does to a migration's statements), ``drivers``
(what it asks of the migration's own connection, whatever its driver),
``session_settings`` (what it sets on that connection, and puts back) and ``keys``
(how the run reaches ``dbtune.ops`` inside the revisions).  May import ``core``,
``sqltext`` and ``online``.
"""
