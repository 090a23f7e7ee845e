"""`dbtune check`: prove a migrations directory safe against a throwaway PostgreSQL, for CI.

The steps, in order, each reported as it runs:

1. server: a throwaway PostgreSQL (the embedded one, local binaries), or a
   scratch database on a server given by URL, dropped afterwards even on failure;
2. revisions: one head, and a downgrade that does something wherever the upgrade does;
3. lint: the rendered SQL of every revision (lint.py: squawk plus dbtune's rules);
4. upgrade: base to head through dbtune's online engine, no INVALID index after;
5. verify: the project's checks with --can-use;
6. round trip: each revision downgraded and upgraded again, the schema after the
   downgrade compared with the schema before the upgrade (schema.py);
7. views: every materialized view refreshes, every monitoring view answers.

The scratch database reaches env.py as ``sqlalchemy.url`` and as ``DATABASE_URL``
(and ``DBTUNE_DATABASE_URL``); a project whose env.py reads other variables
(the application's ``POSTGRES_*`` settings) names them with ``--url-env``.
Before any step, dbtune makes sure env.py connects to the scratch database and
nowhere else.

A step passes, fails, or is skipped with its reason; a skipped step (or a
revision that could not be linted) is never counted as passed.  The library
function (``run.check``) returns a CheckReport (``results``); rendering (text,
JSON, JUnit) is separate, in ``render``.  ``server`` makes the scratch database,
``project`` points env.py at it, ``steps`` holds the steps, ``lint`` and
``schema`` what two of them read.

May import ``core``, ``sqltext``, ``online``, ``migration``, ``verify``,
``maintenance``, ``monitoring``, ``servers`` and ``dbtune.seed``.
"""

from .project import parse_url_env
from .results import STEPS, Case, CheckOptions, CheckReport, Step
from .run import check

__all__ = ["STEPS", "Case", "CheckOptions", "CheckReport", "Step", "check", "parse_url_env"]
