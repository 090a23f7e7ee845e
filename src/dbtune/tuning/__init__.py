"""`dbtune config`: postgresql.conf rendered for a machine (``pgconf``), and a live server's drift from it (``drift``).

May import ``core``.
"""
