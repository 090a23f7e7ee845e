"""Baselines of `dbtune verify`: plans, costs and times saved to a JSON file, and a later run compared with them.

A check fails against its baseline when its plan left the expected index, or when
its time grew past ``max_regression`` times (above a floor: sub-millisecond
timings are noise).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path

from ..core.errors import ConfigError
from .results import VerifyReport

BASELINE_FORMAT = 1


@dataclass
class BaselineEntry:
    name: str
    query: str | None
    expected_index: str | None
    passed: bool
    plan_summary: str | None
    indexes_used: list[str]
    shape: list[dict[str, str | None]]
    cost: float | None
    ms: float | None


@dataclass
class Baseline:
    checks: dict[str, BaselineEntry]
    created: str = ""
    analyze: bool = False
    can_use: bool = False
    source: str | None = None  # the file it was read from


def baseline_from_report(report: VerifyReport) -> Baseline:
    return Baseline(
        checks={c.name: BaselineEntry(name=c.name, query=c.query, expected_index=c.expected_index, passed=c.passed,
                                      plan_summary=c.plan_summary, indexes_used=list(c.indexes_used),
                                      shape=list(c.shape), cost=c.cost, ms=c.ms)
                for c in report.checks},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        analyze=report.analyze, can_use=report.can_use)


def save_baseline(report: VerifyReport, path: str | PathLike[str]) -> Baseline:
    """Write the plans (node types and index names), costs and times of ``report`` to ``path`` as JSON."""
    baseline = baseline_from_report(report)
    data = {"format": BASELINE_FORMAT, "created": baseline.created, "analyze": baseline.analyze,
            "can_use": baseline.can_use, "checks": [asdict(e) for e in baseline.checks.values()]}
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the baseline {path}: {exc.strerror}", path=str(path)) from None
    baseline.source = str(path)
    return baseline


def load_baseline(path: str | PathLike[str]) -> Baseline:
    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != BASELINE_FORMAT:
            raise ConfigError(f"{path} is not a dbtune verify baseline (format {data.get('format')!r})",
                              path=str(path))
        entries = [BaselineEntry(**entry) for entry in data["checks"]]
    except OSError as exc:
        raise ConfigError(f"cannot read the baseline {path}: {exc.strerror}", path=str(path)) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{path} is not a dbtune verify baseline", path=str(path)) from None
    return Baseline(checks={e.name: e for e in entries}, created=data.get("created", ""),
                    analyze=bool(data.get("analyze")), can_use=bool(data.get("can_use")), source=str(path))


def compare_baseline(report: VerifyReport, baseline: Baseline, *, max_regression: float = 2.0,
                     floor_ms: float = 1.0) -> None:
    """Fail the checks of ``report`` whose plan left their index, or whose time grew past ``max_regression``x.

    Times under ``floor_ms`` are never a regression: sub-millisecond timings are noise.
    """
    report.baseline = baseline.source or "given"
    for result in report.checks:
        before = baseline.checks.get(result.name)
        if before is None or not result.shape:  # new check, or it failed before planning
            continue
        result.baseline_ms, result.baseline_cost, result.baseline_plan = before.ms, before.cost, before.plan_summary
        if before.query != result.query:
            result.plan_change = "the query changed since the baseline; not compared"
            continue
        expected = (result.expected_index or "").split(".")[-1]
        used_before = expected in before.indexes_used
        used_now = expected in result.indexes_used
        if used_before and not used_now:
            result.fail(f"plan regression: the baseline used {expected} ({before.plan_summary}), "
                        f"now {result.plan_summary}")
        elif _shape_key(before.shape) != _shape_key(result.shape):
            result.plan_change = f"plan changed: was {before.plan_summary}, now {result.plan_summary}"
        if before.ms and result.ms is not None and result.ms >= floor_ms:
            ratio = result.ms / before.ms
            if ratio > max_regression:
                result.fail(f"time regression: {before.ms:.3f} ms in the baseline, now {result.ms:.3f} ms "
                            f"({ratio:.1f}x, limit {max_regression:g}x)",
                            "compare the plan with the baseline's; look for stale statistics or data growth")


def _shape_key(shape: list[dict[str, str | None]]) -> list[tuple[str | None, str | None]]:
    return [(n.get("node"), n.get("index")) for n in shape]
