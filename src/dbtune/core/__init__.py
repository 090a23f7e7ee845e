"""The foundation every verb stands on: errors, output, targets and settings, connections, the run lock.

Holds ``errors`` (the DbtuneError family and exit codes), ``output`` (the one writer),
``settings`` (``Target``: where to connect; ``Migrations``: which project), ``conninfo``
(connection strings by libpq's rules, masked in one place), ``db`` (dbtune's own
connections), ``pooler`` (is a pooler in between), ``runlock`` (one run per database),
``retry`` (lock_timeout, and the backoff between retries), ``setting_sources`` (where a
server setting comes from) and ``resources`` (bundled files).
Imports nothing else of dbtune's.
"""
