"""`dbtune config`: postgresql.conf rendered for a machine, and a live server's drift from it (``pgconf``).

May import ``core``.
"""
