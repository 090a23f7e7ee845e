"""Rendering a CheckReport: the summary, JSON, and a JUnit file (one test case per step and revision)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..output import Output
from . import CheckReport


def render(report: CheckReport, out: Output, fmt: str = "table") -> None:
    if fmt == "json":
        out.json(report.as_dict())
        return
    out.result("")
    for step in report.steps:
        out.result(f"{step.status.upper():8} {step.name:11} {step.summary}")
        for case in step.cases:
            if not case.passed:
                out.result(f"           {case.name}: {case.message}")
        for note in step.notes:
            out.result(f"           note: {note}")
    failure = report.first_failure
    if report.ok:
        out.result(f"\ndbtune check passed: {report.migrations} on {report.server}")
    else:
        out.result(f"\ndbtune check failed at step {failure.name if failure else '?'}: "
                   f"{report.migrations}")


def write_junit(report: CheckReport, path: Path) -> None:
    cases = [(step, case) for step in report.steps for case in step.cases]
    suite = ET.Element("testsuite", name="dbtune check", tests=str(len(cases) + sum(
        1 for s in report.steps if s.status == "skipped")),
        failures=str(sum(1 for _, c in cases if not c.passed)),
        skipped=str(sum(1 for s in report.steps if s.status == "skipped")))
    for step in report.steps:
        if step.status == "skipped":
            element = ET.SubElement(suite, "testcase", classname=f"dbtune.check.{step.name.replace(' ', '_')}",
                                    name=step.name)
            ET.SubElement(element, "skipped", message=step.summary)
            continue
        for case in step.cases:
            element = ET.SubElement(suite, "testcase", classname=f"dbtune.check.{step.name.replace(' ', '_')}",
                                    name=case.name)
            if not case.passed:
                failure = ET.SubElement(element, "failure", message=case.message.splitlines()[0][:500]
                                        if case.message else "failed")
                failure.text = case.message
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
