"""Rendering a CheckReport: the summary (a table in the one style), JSON, and a JUnit file (one test case
per step and revision).

A skipped step, and a revision that was not linted, is a skipped JUnit case with its
reason (``<skipped message=...>``): never a passing one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..core.output import Column, Output
from . import CheckReport, Step

SUMMARY = [Column("result", "result"), Column("step", "step"), Column("details", "details")]


def render(report: CheckReport, out: Output, fmt: str = "table") -> None:
    if fmt == "json":
        out.json(report.as_dict())
        return
    out.result("")
    rows: list[dict[str, str]] = []
    for step in report.steps:
        rows.append({"result": step.status.upper(), "step": step.name, "details": _headline(step)})
        rows += [{"result": "", "step": "", "details": line} for line in _below(step)]
    # Shown whole: a failure's message is what CI readers came for.
    out.grid(rows, SUMMARY, width=None)
    failure = report.first_failure
    if report.failed:
        out.result(f"\ndbtune check failed at step {failure.name if failure else '?'}: {report.migrations}")
    elif report.skipped:
        skipped = "; ".join(f"{s.name} ({s.summary})" for s in report.skipped)
        out.result(f"\ndbtune check passed {len(report.steps) - len(report.skipped)} of {len(report.steps)} steps, "
                   f"skipped: {skipped}: {report.migrations} on {report.server}")
    else:
        out.result(f"\ndbtune check passed: {report.migrations} on {report.server}")


def _below(step: Step) -> list[str]:
    """The lines under a step's own: each failure not already whole on it, then its notes."""
    lines = [f"{case.name}: {case.message}" for n, case in enumerate(step.failures)
             if not (n == 0 and step.reason == f"{case.name}: {case.message}")]
    return lines + [f"note: {note}" for note in step.notes]


def _headline(step: Step) -> str:
    """The step's summary and, when it failed, its first failure: every failure shows why on its line."""
    if step.status != "failed" or not step.failures:
        return step.summary
    return f"{step.summary}: {step.reason}" if step.summary else step.reason


def write_junit(report: CheckReport, path: Path) -> None:
    suite = ET.Element("testsuite", name="dbtune check")
    tests = failures = skipped = 0
    for step in report.steps:
        classname = f"dbtune.check.{step.name.replace(' ', '_')}"
        if step.status == "skipped":
            element = ET.SubElement(suite, "testcase", classname=classname, name=step.name)
            ET.SubElement(element, "skipped", message=step.summary or "skipped")
            tests, skipped = tests + 1, skipped + 1
            continue
        for case in step.cases:
            element = ET.SubElement(suite, "testcase", classname=classname, name=case.name)
            tests += 1
            if case.skipped:
                ET.SubElement(element, "skipped", message=case.message or "skipped")
                skipped += 1
            elif not case.passed:
                failure = ET.SubElement(element, "failure", message=case.message.splitlines()[0][:500]
                                        if case.message else "failed")
                failure.text = case.message
                failures += 1
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", tests=str(tests), failures=str(failures), errors="0")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
