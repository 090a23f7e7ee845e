"""Drawing a VerifyReport: a table of checks, then each failure with its reason, hint and plan; or JSON.

And a before/after comparison against a baseline, per check, with the speed-up.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ConfigError
from ..core.output import Column, Output
from .baselines import Baseline
from .results import CheckResult, VerifyReport, mode


def render(report: VerifyReport, out: Output, fmt: str = "table") -> None:
    """Draw ``report``: a table, then what failed with its reason, hint and plan; or JSON."""
    if fmt == "json":
        out.json(report.to_dict())
        return
    if fmt != "table":
        raise ConfigError(f"unknown format {fmt!r}: use table or json")
    # One column per fact: the expected index only where it is not the check's own name.
    rows: list[dict[str, Any]] = []
    for c in report.checks:
        rows.append({"check": c.name, "index": c.expected_index if c.expected_index != c.name else None,
                     "result": "PASS" if c.passed else "FAIL", "plan": c.plan_summary, "cost": c.cost,
                     "ms": c.ms, "buffers": None if c.shared_hit is None else f"{c.shared_hit}/{c.shared_read}",
                     "baseline": _versus(c)})
    columns = [Column("check", "check"), Column("result", "result"), Column("plan", "plan", "sql"),
               Column("cost", "est. cost", "float")]
    if any(r["index"] for r in rows):
        columns.insert(1, Column("index", "expected index (when not the check's name)"))
    if report.analyze:
        columns += [Column("ms", "time", "ms"), Column("buffers", "buffers hit/read")]
    if report.baseline:
        columns += [Column("baseline", "vs baseline")]
    out.grid(rows, columns)
    for c in report.failed:
        block = [f"\nFAIL {c.name} ({c.file})"]
        if c.query:
            block.append(f"  query:  {c.query}")
        block.append(f"  reason: {c.reason}")
        if c.hint:
            block.append(f"  hint:   {c.hint}")
        if c.plan:
            block.append("  plan:")
            block.extend("    " + line for line in c.plan.splitlines())
        out.result("\n".join(block))
    for c in report.passed:
        if c.plan_change:
            out.info(f"note: {c.name}: {c.plan_change}")
    out.info(f"\n{len(report.checks)} checks ({mode(report)}): {len(report.passed)} passed, "
             f"{len(report.failed)} failed")


def _versus(c: CheckResult) -> str:
    if c.baseline_ms and c.ms:
        return f"{c.baseline_ms / c.ms:.1f}x faster" if c.ms <= c.baseline_ms else f"{c.ms / c.baseline_ms:.1f}x slower"
    if c.baseline_plan is None:
        return "-"
    return "plan changed" if c.plan_change else "same plan"


def comparison_rows(baseline: Baseline, report: VerifyReport) -> list[dict[str, Any]]:
    """Per check: plan, cost and time before (the baseline) and after (the report), and the speed-up."""
    rows = []
    for c in report.checks:
        before = baseline.checks.get(c.name)
        speedup = None
        if before and before.ms and c.ms:
            speedup = before.ms / c.ms
        rows.append({"check": c.name, "plan_before": before.plan_summary if before else None,
                     "plan_after": c.plan_summary, "cost_before": before.cost if before else None,
                     "cost_after": c.cost, "ms_before": before.ms if before else None, "ms_after": c.ms,
                     "speedup": speedup, "passed": c.passed})
    return rows


def render_comparison(baseline: Baseline, report: VerifyReport, out: Output, fmt: str = "table") -> None:
    """Before (``baseline``, e.g. recorded without the indexes) against after (``report``), per check."""
    rows = comparison_rows(baseline, report)
    if fmt == "json":
        out.json(rows)
        return
    if fmt != "table":
        raise ConfigError(f"unknown format {fmt!r}: use table or json")
    expected = {c.name: c.expected_index for c in report.checks}

    def short(plan: str | None, check: str) -> str:
        # The check is named for its index: "Index Scan" says it all, and keeps the table narrow.
        index = expected.get(check)
        return (plan.replace(f" using {index}", "") if plan and index else plan) or "-"

    for r in rows:
        r["plan_before"], r["plan_after"] = short(r["plan_before"], r["check"]), short(r["plan_after"], r["check"])
        r["speed-up"] = None if r["speedup"] is None else f"{r['speedup']:.1f}x"
    out.grid(rows, [Column("check", "check"), Column("plan_before", "plan before", "sql"),
                    Column("plan_after", "plan after", "sql"), Column("cost_before", "cost before", "float"),
                    Column("cost_after", "cost after", "float"), Column("ms_before", "before", "ms"),
                    Column("ms_after", "after", "ms"), Column("speed-up", "speed-up")])
