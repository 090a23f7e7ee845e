"""What the commands call to publish a single database's result: metrics or the page, or (for
``report``) any of its formats, through one writer (``files.destination`` for ``--output``)."""

from __future__ import annotations

import json
from typing import Any

from ..core import conninfo
from ..core.output import Output
from ..core.settings import Target
from . import openmetrics, page, refresh_runs

PUBLISHED = ("openmetrics", "html")


def json_form(data: Any) -> Any:
    """A result as its printed JSON reads back (dates as text, decimals as numbers' text), so a single
    run and a fleet's children publish from the very same form."""
    return json.loads(json.dumps(data, default=str))


def database_of(dsn_or_target: str | Target) -> str:
    """The database a connection string reaches, as libpq resolves it (the user's name by default)."""
    params = dsn_or_target.connect_kwargs() if isinstance(dsn_or_target, Target) else conninfo.parse(dsn_or_target)
    return conninfo.resolved(params).get("dbname", "")


def metrics(families: list[openmetrics.Family], out: Output) -> None:
    out.result(openmetrics.exposition(families).rstrip("\n"))  # result() ends the line


def report(result: Any, target: Target, fmt: str, out: Output) -> None:
    """``dbtune report`` in ``fmt``: the published formats here, the others by ``monitoring.render``."""
    if fmt not in PUBLISHED:
        from ..monitoring.render import render

        render(result, out, fmt)
        return
    doc = json_form(result.as_dict()) | {"stats_age_seconds": result.stats_age_s}  # unrounded, from the server
    if fmt == "openmetrics":
        metrics(openmetrics.report(doc, {"database": doc["database"]}), out)
        return
    out.result(page.render([page.Part(None, doc, refresh_runs.read(target))]))


def refresh_status(rows: list[dict[str, Any]], target: Target, out: Output) -> None:
    """``dbtune refresh --status --format openmetrics``."""
    labels = {"database": database_of(target)}
    metrics(openmetrics.refresh_status(json_form(rows), refresh_runs.read(target).views, labels), out)


def status(result: Any, out: Output) -> None:
    """``dbtune status --format openmetrics``: of the database env.py reached."""
    doc = result.as_dict()
    metrics(openmetrics.status(doc, {"database": database_of(doc["target"])}), out)
