"""What cron runs: ``refresh`` (materialized views, with their ``history``) and ``maintain``
(ANALYZE and REINDEX through the online engine).

May import ``core``, ``sqltext`` and ``online``.
"""
