"""The online index engine: concurrent builds, repair of leftovers, blockers named, progress, ANALYZE.

Used by the migration runner, by ``dbtune.ops`` (what revisions call) and by
``maintain``.  May import ``core`` and ``sqltext``.
"""
