"""`python -m dbtune.cli`: the command as a process of this interpreter (fleet runs and tests start it so)."""

import sys

from . import main

sys.exit(main())
