"""Results as an OpenMetrics exposition (https://prometheus.io/docs/specs/om/open_metrics_spec/).

The format is a few lines of text, so it is written here rather than through a client library;
the tests read every exposition back with prometheus_client's own parser.  Names follow
Prometheus' conventions (https://prometheus.io/docs/practices/naming/): a ``dbtune_`` prefix,
the verb, the base unit last (``_seconds``, ``_bytes``, ``_ratio``), and string values as labels
of an ``info`` metric.  The names and labels are part of dbtune's interface: dashboards and
alert rules use them (docs/metrics.md lists them), so they do not change.

Every function takes a result's JSON form (``as_dict``, or a fleet child's printed JSON), and
``labels`` that go first on every sample: the database, and in a fleet run the target.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..monitoring.sections import SECTIONS

SEVERITIES = ("warn", "crit")


@dataclass
class Family:
    name: str  # without the _info suffix of an info metric's samples
    kind: str  # gauge or info
    help: str
    unit: str = ""
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | bool | None, labels: dict[str, str], **more: str) -> None:
        if value is not None:
            self.samples.append(({**labels, **more}, float(value)))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def exposition(families: Iterable[Family]) -> str:
    """The text: each family's HELP, TYPE (and UNIT) lines, its samples, and the closing ``# EOF``."""
    lines = []
    for f in families:
        lines.append(f"# HELP {f.name} {_escape(f.help)}")
        lines.append(f"# TYPE {f.name} {f.kind}")
        if f.unit:
            lines.append(f"# UNIT {f.name} {f.unit}")
        sample = f"{f.name}_info" if f.kind == "info" else f.name
        for labels, value in f.samples:
            pairs = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            lines.append(f"{sample}{{{pairs}}} {_number(value)}" if pairs else f"{sample} {_number(value)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def merged(groups: Iterable[list[Family]]) -> list[Family]:
    """Families of several results (a fleet's targets) as one: a family's samples may not be split."""
    by_name: dict[str, Family] = {}
    for group in groups:
        for f in group:
            if f.name in by_name:
                by_name[f.name].samples.extend(f.samples)
            else:
                by_name[f.name] = Family(f.name, f.kind, f.help, f.unit, list(f.samples))
    return list(by_name.values())


def _epoch(text: str | None) -> float | None:
    return dt.datetime.fromisoformat(text).timestamp() if text else None


def report(doc: dict[str, Any], labels: dict[str, str]) -> list[Family]:
    """``dbtune report``: the health score and grade, findings by section and severity, INVALID
    indexes, cache hit ratios and the statistics' age."""
    score = Family("dbtune_report_health_score", "gauge", "Health score: 100 less the findings' points (0 to 100)")
    score.add(doc["score"], labels)
    grade = Family("dbtune_report_health_grade", "info", "Health grade, A (90 and over) to F (under 60)")
    grade.add(1, labels, grade=doc["grade"])
    findings = Family("dbtune_report_findings", "gauge", "Findings of the report, by section and severity")
    ran = [s for s in SECTIONS if s in doc["sections"]]
    for section in ran:  # zero as well: a series that vanishes when all is well breaks graphs and alerts
        for severity in SEVERITIES:
            findings.add(sum(1 for f in doc["findings"] if f["section"] == section and f["severity"] == severity),
                         labels, section=section, severity=severity)
    families = [score, grade, findings]
    if "invalid-indexes" in doc["sections"]:
        invalid = Family("dbtune_report_invalid_indexes", "gauge",
                         "INVALID indexes (left by failed concurrent builds; builds running now excluded)")
        invalid.add(len(doc["sections"]["invalid-indexes"]["rows"]), labels)
        families.append(invalid)
    if "cache" in doc["sections"]:
        cache = Family("dbtune_report_cache_hit_ratio", "gauge",
                       "Share of block reads served from shared_buffers since the statistics were reset, by kind",
                       "ratio")
        for row in doc["sections"]["cache"]["rows"]:
            cache.add(row["ratio"], labels, kind=row["kind"])
        families.append(cache)
    age = Family("dbtune_report_statistics_age_seconds", "gauge",
                 "Age of the statistics the report judges (since their reset, or the server's start)", "seconds")
    age.add(doc.get("stats_age_seconds", None if doc["stats_age_hours"] is None else doc["stats_age_hours"] * 3600),
            labels)
    reset = Family("dbtune_report_statistics_reset_timestamp_seconds", "gauge",
                   "When the statistics were last reset (or the server started), as a Unix time", "seconds")
    reset.add(_epoch(doc["stats_since"]), labels)
    return [*families, age, reset]


def refresh_status(rows: list[dict[str, Any]], runs: dict[str, list[dict[str, Any]]] | None,
                   labels: dict[str, str]) -> list[Family]:
    """``dbtune refresh --status``: each view's last successful refresh, its duration and rows, and the
    outcome of its newest recorded refresh (``runs``, from the history; None where there is none)."""
    history = Family("dbtune_refresh_history_available", "gauge",
                     "1 when dbtune.refresh_history can be read (without it no refresh is dated)")
    history.add(runs is not None, labels)
    populated = Family("dbtune_refresh_populated", "gauge", "1 when the materialized view is populated")
    age = Family("dbtune_refresh_last_success_age_seconds", "gauge",
                 "Seconds since the view's last successful refresh", "seconds")
    when = Family("dbtune_refresh_last_success_timestamp_seconds", "gauge",
                  "When the view's last successful refresh finished, as a Unix time", "seconds")
    took = Family("dbtune_refresh_last_success_duration_seconds", "gauge",
                  "How long the view's last successful refresh took", "seconds")
    count = Family("dbtune_refresh_last_success_rows", "gauge", "Rows in the view after its last successful refresh")
    outcome = Family("dbtune_refresh_last_outcome", "info",
                     "The outcome (refreshed, populated or failed) and mode of the view's newest recorded refresh")
    for row in rows:
        schema, _, view = row["view"].partition(".")
        own = {**labels, "schema": schema, "view": view}
        populated.add(row["populated"], own)
        age.add(row["age_s"], own)
        when.add(_epoch(row["last_refresh"]), own)
        took.add(row["duration_s"], own)
        count.add(row["rows"], own)
        newest = (runs or {}).get(row["view"])
        if newest:
            outcome.add(1, own, outcome=newest[-1]["outcome"], mode=newest[-1]["mode"] or "")
    return [history, populated, age, when, took, count, outcome]


def status(doc: dict[str, Any], labels: dict[str, str]) -> list[Family]:
    """``dbtune status``: pending revisions, INVALID indexes and the current revision."""
    pending = Family("dbtune_status_pending_revisions", "gauge", "Revisions not yet applied")
    pending.add(len(doc["pending"]), labels)
    invalid = Family("dbtune_status_invalid_indexes", "gauge", "INVALID indexes (left by failed concurrent builds)")
    invalid.add(len(doc["invalid_indexes"]), labels)
    current = Family("dbtune_status_current_revision", "info", "The revision the database is at (base: none)")
    for revision in doc["current"] or ["base"]:
        current.add(1, labels, revision=revision)
    return [pending, invalid, current]


def fleet_targets(outcomes: dict[str, bool]) -> Family:
    """A fleet run: whether each target's run succeeded (a failed target has no other series)."""
    ok = Family("dbtune_fleet_target_success", "gauge",
                "1 when the target's run succeeded; 0 when it failed or was not started (its series are then absent)")
    for name, success in outcomes.items():
        ok.add(success, {"target": name})
    return ok
