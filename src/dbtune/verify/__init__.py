"""`dbtune verify`: check files (``checks``) proved by EXPLAIN (``run``), with baselines.

``run`` runs the checks, ``diagnosis`` says why one failed, ``plans`` reads an
EXPLAIN plan, ``results`` holds what was found, ``baselines`` saves and compares
runs, ``render`` draws them.  May import ``core``, ``sqltext`` and ``online`` (the one
staleness rule).
"""

from .baselines import Baseline, compare_baseline, load_baseline, save_baseline
from .render import render, render_comparison
from .results import CheckResult, VerifyReport
from .run import run_checks, verify

__all__ = ["Baseline", "CheckResult", "VerifyReport", "compare_baseline", "load_baseline", "render",
           "render_comparison", "run_checks", "save_baseline", "verify"]
