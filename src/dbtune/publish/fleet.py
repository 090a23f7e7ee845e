"""A fleet run's metrics or page: one exposition with every sample labelled by its target, or one
page with a summary and a part per target.  One page rather than a page per target: it is the one
file a DBA opens (or a web server serves) to see the whole fleet, and each part keeps its anchor.

Each target's run printed its result as JSON (``--format json``); the refresh history the page
and the refresh metrics need, which that JSON does not carry, is read here (one short read-only
query a target).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from ..core import db
from ..core.errors import DbtuneError
from ..core.output import Output
from . import emit, openmetrics, page, refresh_runs


def printed_json(output: str) -> Any:
    """The JSON document a child printed; its warnings share the stream, on lines of their own."""
    decoder = json.JSONDecoder()
    for number, line in enumerate(lines := output.splitlines()):
        if line in ("{", "[") or line.startswith(("{", "[")):
            return decoder.raw_decode("\n".join(lines[number:]))[0]
    raise ValueError("no JSON in the target's output")


def _runs(target: Any) -> refresh_runs.Runs:
    try:
        return refresh_runs.read(target)
    except DbtuneError as exc:  # the target's own run succeeded a moment ago: say what this read met
        return refresh_runs.Runs(None, f"it could not be read: {exc}")
    except psycopg.Error as exc:
        return refresh_runs.Runs(None, f"it could not be read: {db.describe(exc, target)}")


def publish(verb: str, results: list[Any], targets: list[Any], fmt: str, out: Output) -> None:
    """``results`` are the fleet's TargetResults (with each child's output), ``targets`` its FleetTargets."""
    by_name = {t.name: t for t in targets}
    documents: dict[str, Any] = {}
    for r in results:
        if r.outcome == "done":
            try:
                documents[r.name] = printed_json(r.output)
            except ValueError:
                r.outcome, r.error = "failed", "its output held no JSON result"
    if fmt == "html":
        out.result(page.render([page.Part(r.name, documents.get(r.name), _runs(by_name[r.name].target)
                                          if r.name in documents else None, r.error or r.outcome)
                                for r in results]))
        return
    groups = [[openmetrics.fleet_targets({r.name: r.name in documents for r in results})]]
    for name, doc in documents.items():
        target = by_name[name].target
        if verb == "report":
            groups.append(openmetrics.report(doc, {"target": name, "database": doc["database"]}))
        elif verb == "status":
            groups.append(openmetrics.status(doc, {"target": name, "database": emit.database_of(doc["target"])}))
        else:
            labels = {"target": name, "database": emit.database_of(target)}
            groups.append(openmetrics.refresh_status(doc, _runs(target).views, labels))
    emit.metrics(openmetrics.merged(groups), out)
