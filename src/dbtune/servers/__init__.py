"""PostgreSQL servers dbtune starts itself: ``throwaway`` (for tests, CI and check) and ``sandbox``.

May import ``core``.
"""
