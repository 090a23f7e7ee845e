"""Drawing an Advice: the indexes kept, with the queries they serve, their cost and what they save; or JSON."""

from __future__ import annotations

from typing import Any

from ..core.output import Column, Output, shorten
from .run import Advice


def to_dict(advice: Advice) -> dict[str, Any]:
    queries = advice.queries
    return {
        "source": advice.source, "min_gain": advice.min_gain, "planned": advice.how, "notes": advice.notes,
        "indexes": [{
            "name": k.candidate.name, "kind": k.candidate.kind, "table": k.candidate.table,
            "definition": k.candidate.definition(concurrently=True), "planned": k.how,
            "estimated_bytes": k.size, "table_writes_per_hour": advice.writes.get(k.candidate.table),
            "queries": [{"query": queries[t.query].statement.text, "origin": queries[t.query].statement.origin,
                         "calls": queries[t.query].statement.calls, "total_ms": queries[t.query].statement.total_ms,
                         "cost_before": round(t.before, 2), "cost_after": round(t.after, 2),
                         "gain": round(t.gain, 4)} for t in k.serves],
        } for k in advice.kept],
        "already_served": [{"candidate": c.definition(), "by": by} for c, by in advice.skipped],
        "under_threshold": [{"candidate": c.definition(), "best_gain": round(g, 4)} for c, g in advice.dropped],
        "not_advised": [{"query": q.statement.text, "origin": q.statement.origin, "kind": q.kind, "why": q.note}
                        for q in queries if q.note],
    }


def render(advice: Advice, out: Output, fmt: str = "table") -> None:
    if fmt == "json":
        out.json(to_dict(advice))
        return
    rows = []
    for k in advice.kept:
        before, after = sum(t.before for t in k.serves), sum(t.after for t in k.serves)
        served_ms = [advice.queries[t.query].statement.total_ms for t in k.serves]
        rows.append({"index": k.candidate.name, "kind": k.candidate.kind, "queries": len(k.serves),
                     "time": sum(ms for ms in served_ms if ms) if any(served_ms) else None,
                     "before": before, "after": after, "gain": 100.0 * (1 - after / before) if before else None,
                     "size": k.size, "writes": advice.writes.get(k.candidate.table)})
    out.grid(rows, [Column("index", "index"), Column("kind", "kind"), Column("queries", "queries", "int"),
                    Column("time", "their time", "ms"), Column("before", "cost before", "float"),
                    Column("after", "after", "float"), Column("gain", "gain", "pct"),
                    Column("size", "est. size", "bytes"), Column("writes", "table writes/h", "int")])
    lines = [f"\n{len(advice.kept)} index{'es' if len(advice.kept) != 1 else ''} advised from {advice.source} "
             f"(each cuts a query's plan cost by at least {advice.min_gain:.0%}); "
             f"{'; '.join(advice.how) or 'nothing planned'}"]
    lines += [f"  {k.candidate.definition(concurrently=True)}" for k in advice.kept]
    lines += [f"note: {n}" for n in advice.notes]
    lines += [f"already served: {c.name} by the existing index {by}" for c, by in advice.skipped]
    lines += [f"under the threshold: {c.name} ({_best(g)})" for c, g in advice.dropped]
    lines += [f"not advised: {shorten(' '.join(q.statement.text.split()), 70)} ({q.note})"
              for q in advice.queries if q.note]
    out.info("\n".join(lines))


def _best(gain: float) -> str:
    """A dropped candidate's best gain; where there was none, say so ("0%" reads as a small gain rounded)."""
    return f"best gain {gain:.1%}" if gain > 0 else "no query's plan cost fell with it"
