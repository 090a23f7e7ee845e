"""`dbtune report --format html`: the report as one self-contained page, for a person to open.

One file with its CSS and SVG inline: no network, no script needed to read it (a few lines of
script only make the tables sortable).  It is built from the report's JSON form, so a fleet run
builds its page from the JSON each target's run printed: one page, a part per target.  The
tables are the page's own choice of columns, beside charts where a person would rather look
than read; each numeric cell carries its exact value (``data-value``), which sorting uses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from ..core.output import Column, cell, human_bytes
from . import charts

if TYPE_CHECKING:  # the page renders what it is given; reading stays with the callers
    from . import refresh_runs

C = Column
FOLDED = 25  # rows past which a section's table is folded (HTML's own <details>: no script)


@dataclass
class Part:
    """What the page shows of one database: its report (JSON form) and refresh history, or why not."""

    name: str | None  # the fleet's target name; None for a single database
    report: dict[str, Any] | None
    runs: refresh_runs.Runs | None = None  # None: not read (the report failed)
    error: str = ""


# The page's tables: (section, id, heading, columns).
TABLES = [
    ("index-usage", "Index usage", [C("table_name", "table"), C("index_name", "index"), C("scans", "scans", "int"),
                                    C("tuples_read", "tuples read", "int"), C("size_bytes", "size", "bytes"),
                                    C("is_valid", "valid"), C("last_used", "last used", "when")]),
    ("unused-indexes", "Unused indexes", [C("table_name", "table"), C("index_name", "index"),
                                          C("size_bytes", "size", "bytes"), C("fix", "fix", "sql")]),
    ("duplicate-indexes", "Duplicate indexes", [C("table_name", "table"), C("redundant_index", "redundant index"),
                                                C("covered_by", "covered by"), C("reason", "why"),
                                                C("redundant_bytes", "size", "bytes"), C("fix", "fix", "sql")]),
    ("invalid-indexes", "Invalid indexes", [C("table_name", "table"), C("index_name", "index"),
                                            C("size_bytes", "size", "bytes"), C("definition", "definition", "sql")]),
    ("missing-indexes", "Missing indexes", [C("table_name", "table"), C("seq_scan", "seq scans", "int"),
                                            C("idx_scan", "index scans", "int"), C("seq_scan_pct", "seq", "pct"),
                                            C("size_bytes", "size", "bytes")]),
    ("bloat", "Table bloat", [C("table_name", "table"), C("live_tuples", "live", "int"),
                              C("dead_tuples", "dead", "int"), C("dead_pct", "dead", "pct"),
                              C("bloat_bytes", "bloat", "bytes"), C("bloat_pct", "bloat", "pct"),
                              C("total_bytes", "size", "bytes"), C("last_autovacuum", "last autovacuum", "when")]),
    ("slow-queries", "Slow queries", [C("calls", "calls", "int"), C("total_ms", "total", "ms"),
                                      C("mean_ms", "mean", "ms"), C("hit_ratio", "hit ratio", "ratio"),
                                      C("kind", "kind"), C("query", "query", "sql", 160)]),
    ("cache", "Cache hits", [C("kind", "reads of"), C("hits", "hits", "int"), C("reads", "disk reads", "int"),
                             C("ratio", "hit ratio", "ratio")]),
]
FINDINGS = [C("severity", "severity"), C("points", "points", "int"), C("section", "section"), C("what", "what"),
            C("fix", "fix", "sql")]
REFRESHES = [C("view", "view"), C("refreshes", "recorded", "int"), C("finished_at", "last", "when"),
             C("outcome", "outcome"), C("duration_s", "took (s)", "float"), C("rows", "rows", "int")]

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;color:#222;margin:24px auto;max-width:1200px;padding:0 16px}
h1{margin:0 0 4px}h2{margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{margin:18px 0 6px}
.meta,.note{color:#555}.note{font-style:italic}
.grade{display:inline-block;font-size:44px;font-weight:700;width:72px;height:72px;line-height:72px;
text-align:center;border-radius:12px;color:#fff;margin-right:16px;vertical-align:middle}
.A{background:#2e8b57}.B{background:#6a9f2f}.C{background:#d9a21b}.D{background:#d9822b}.F{background:#b33a3a}
.score{font-size:20px;vertical-align:middle}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{background:#f6f6f6;cursor:pointer}td.n{text-align:right;white-space:nowrap}
td.sql{font-family:ui-monospace,monospace;font-size:12px;word-break:break-word}
summary{cursor:pointer;color:#2f6db5;margin:4px 0}a{color:#2f6db5}
.crit{color:#b33a3a;font-weight:600}.warn{color:#b8720b}.error{color:#b33a3a}
"""

# Progressive enhancement only: a click on a header sorts by the cells' exact values.
SORT = """
document.querySelectorAll("table").forEach(t=>t.querySelectorAll("th").forEach((th,i)=>th.onclick=()=>{
const b=t.tBodies[0],r=[...b.rows],d=th.dataset.dir=th.dataset.dir==="a"?"d":"a";
const v=x=>{const c=x.cells[i];const n=parseFloat(c.dataset.value);return isNaN(n)?c.textContent:n};
r.sort((x,y)=>{const p=v(x),q=v(y);return (p>q?1:p<q?-1:0)*(d==="a"?1:-1)});r.forEach(x=>b.appendChild(x))}));
"""


def _when(value: Any) -> Any:
    with_time = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return with_time.strftime("%Y-%m-%d %H:%M") if hasattr(with_time, "strftime") else value


def table(rows: list[dict[str, Any]], columns: list[Column], section: str) -> str:
    head = "".join(f'<th data-key="{c.key}">{escape(c.header)}</th>' for c in columns)
    body = []
    for row in rows:
        tds = []
        for c in columns:
            value = row.get(c.key)
            shown = _when(value) if c.kind == "when" and value is not None else cell(value, c)
            if c.max_width and len(shown) > c.max_width:
                shown = shown[:c.max_width - 1] + "…"
            kind = ' class="n"' if c.numeric else ' class="sql"' if c.kind == "sql" else ""
            exact = f' data-value="{escape(str(value))}"' if c.numeric and value is not None else ""
            tds.append(f'<td data-key="{c.key}"{kind}{exact}>{escape(shown)}</td>')
        body.append(f"<tr>{''.join(tds)}</tr>")
    return (f'<table data-section="{section}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def ordered_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What to fix first: critical findings, then the costliest."""
    return sorted(findings, key=lambda f: (f["severity"] != "crit", -f["points"]))


def _health(doc: dict[str, Any], prefix: str) -> str:
    findings = ordered_findings(doc["findings"])
    out = [f'<section id="{prefix}health"><h2>Health</h2><p><span class="grade {doc["grade"]}">{doc["grade"]}</span>'
           f'<span class="score">{doc["score"]}/100</span></p>']
    for note in doc["notes"]:
        out.append(f'<p class="note">{escape(note)}</p>')
    out.append("<h3>What to fix first</h3>")
    out.append(table(findings, FINDINGS, "findings") if findings else "<p>Nothing to fix.</p>")
    return "".join(out) + "</section>"


def _chart(section: str, rows: list[dict[str, Any]]) -> str:
    if section == "index-usage":
        busiest = sorted(rows, key=lambda r: -(r["scans"] or 0))[:15]
        return charts.bars([(f"{r['index_name']}", float(r["scans"] or 0)) for r in busiest],
                           lambda v: f"{v:,.0f}", title="Index scans, busiest indexes first")
    if section == "bloat":
        return charts.bars([(f"{r['schema']}.{r['table_name']}", float(r["bloat_bytes"] or 0)) for r in rows],
                           human_bytes, title="Estimated bloat by table")
    if section == "cache":
        return charts.bars([(r["kind"], float(r["ratio"])) for r in rows if r["ratio"] is not None],
                           lambda v: f"{v:.2%}", title="Cache hit ratio")
    return ""


def _sections(doc: dict[str, Any], prefix: str) -> str:
    out = []
    for name, heading, columns in TABLES:
        section = doc["sections"].get(name)
        if section is None:
            continue
        rows = section["rows"]
        out.append(f'<section id="{prefix}{name}"><h2>{heading}</h2><p class="meta">{escape(section["title"])}</p>')
        if section["note"]:
            out.append(f'<p class="note">{escape(section["note"])}</p>')
        if rows and len(rows) > FOLDED:  # a long table stays one click away, under its chart
            out.append(_chart(name, rows) + f"<details><summary>All {len(rows)} rows</summary>"
                       f"{table(rows, columns, name)}</details>")
        elif rows:
            out.append(_chart(name, rows) + table(rows, columns, name))
        elif not section["note"]:
            out.append("<p>None.</p>")
        out.append("</section>")
    return "".join(out)


def _refreshes(found: refresh_runs.Runs | None, prefix: str) -> str:
    out = [f'<section id="{prefix}refreshes"><h2>Materialized view refreshes</h2>']
    runs = found.views if found else None
    if runs is None:
        # Whose problem it is differs: no history is the owner's one-time setup, an unreadable one a
        # grant for the role that runs the report (often a monitoring role, not the owner).
        why = found.why_not if found and found.why_not else "it could not be read"
        out.append(f'<p class="note">No refresh history to show: {escape(why.rstrip("."))}.</p>')
    elif not runs:
        out.append("<p>No refresh recorded yet.</p>")
    else:
        series = {view: [(dt.datetime.fromisoformat(r["finished_at"]), float(r["duration_s"])) for r in rs
                         if r["outcome"] != "failed"] for view, rs in runs.items()}
        out.append(charts.lines(series, title="Refresh durations over time (seconds)"))
        last = [{"view": view, "refreshes": len(rs), **rs[-1]} for view, rs in runs.items()]
        out.append(table(last, REFRESHES, "refreshes"))
    return "".join(out) + "</section>"


def _part(part: Part, number: int) -> str:
    # A fleet page holds a part per target: each part's sections are anchored under its number (a
    # target's name could end like another's section: "eu" and "eu-health"), so that every id is
    # unique and each part's links lead within that part.  The part itself is #target-NAME.
    anchor = f"target-{escape(part.name)}" if part.name else ""
    prefix = f"t{number}-" if anchor else ""
    out = [f'<article id="{anchor}">' if anchor else "<article>"]
    doc = part.report
    if part.name:
        out.append(f"<h2>{escape(part.name)}</h2>")
    if doc is None:
        return "".join(out) + f'<p class="error">No report: {escape(part.error)}</p></article>'
    standby = " (hot standby)" if doc["standby"] else ""
    age = "unknown" if doc["stats_age_hours"] is None else f"{doc['stats_age_hours']:g} hours"
    out.append(f'<p class="meta">Database <b>{escape(doc["database"])}</b> on PostgreSQL {escape(doc["server"])}'
               f"{standby}; statistics gathered for {age} (since {escape(str(_when(doc['stats_since'])))}).</p>")
    links = [("health", "Health"), *((n, h) for n, h, _ in TABLES if n in doc["sections"]), ("refreshes", "Refreshes")]
    out.append('<nav class="meta">' + " · ".join(f'<a href="#{prefix}{n}">{h}</a>' for n, h in links) + "</nav>")
    out += [_health(doc, prefix), _sections(doc, prefix), _refreshes(part.runs, prefix), "</article>"]
    return "".join(out)


def _fleet(parts: list[Part]) -> str:
    rows = [{"target": p.name, "grade": p.report["grade"] if p.report else "-",
             "score": p.report["score"] if p.report else None,
             "crit": sum(f["severity"] == "crit" for f in p.report["findings"]) if p.report else None,
             "warn": sum(f["severity"] == "warn" for f in p.report["findings"]) if p.report else None,
             "error": p.error} for p in parts]
    columns = [C("target", "target"), C("grade", "grade"), C("score", "score", "int"),
               C("crit", "critical", "int"), C("warn", "warnings", "int"), C("error", "error")]
    return f'<section id="fleet"><h2>Targets</h2>{table(rows, columns, "fleet")}</section>'


def render(parts: list[Part], generated: dt.datetime | None = None) -> str:
    """The whole page: one part (a single database), or a summary and a part per fleet target."""
    generated = generated or dt.datetime.now().astimezone()
    single = parts[0].report if len(parts) == 1 and parts[0].name is None else None
    title = f"Database health: {single['database']}" if single else "Database health"
    body = [f"<header><h1>{escape(title)}</h1><p class=\"meta\">dbtune report, "
            f"{generated:%Y-%m-%d %H:%M %Z}</p></header>"]
    if single is None:
        body.append(_fleet(parts))
    body += [_part(p, n) for n, p in enumerate(parts, start=1)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head>'
            f"<body>{''.join(body)}<script>{SORT}</script></body></html>")
