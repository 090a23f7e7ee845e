"""How ``dbtune apply`` hands its run to the revisions it runs.

Alembic's ``config.attributes`` travels from the runner, through the project's
env.py, to ``dbtune.ops`` inside each revision; these are the keys both sides
use.  A module of its own so that the runner need not import ``dbtune.ops``
(which pulls in ``alembic.op``) for two strings.
"""

# The run's OnlineOptions: what `dbtune apply` was told (--jobs, --max-wait, timeouts, output).
OPTIONS_KEY = "dbtune.online"
# The pids of dbtune's own sessions on the database, which a build never takes for its blockers.
OWN_PIDS_KEY = "dbtune.own_pids"
