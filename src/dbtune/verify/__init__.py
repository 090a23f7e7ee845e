"""`dbtune verify`: check files (``checks``) proved by EXPLAIN, with baselines (``runner``).

May import ``core``.
"""

from .runner import (
    Baseline,
    CheckResult,
    VerifyReport,
    compare_baseline,
    load_baseline,
    render,
    render_comparison,
    run_checks,
    save_baseline,
    verify,
)

__all__ = ["Baseline", "CheckResult", "VerifyReport", "compare_baseline", "load_baseline", "render",
           "render_comparison", "run_checks", "save_baseline", "verify"]
