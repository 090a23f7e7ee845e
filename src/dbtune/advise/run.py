"""`dbtune advise`: statements in, the indexes the planner proves worth building out.

Reads only: the session is READ ONLY, hypopg's hypothetical indexes live in this backend's
memory, and the fallback builds its candidates in a scratch server, never on the target.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ..core import db
from ..core.output import Output
from ..core.settings import Target
from ..sqltext import parameters, shapes
from . import costing, sources
from .candidates import Candidate, propose, served_by
from .choose import Kept, Trial, best_gain, choose
from .tables import Table, read

NO_HYPOPG = ("hypopg is not created in this database (a superuser runs CREATE EXTENSION hypopg once; "
             "advise never writes to the target)")


@dataclass
class Query:
    statement: sources.Statement
    kind: str
    tables: dict[str | None, Table] = field(default_factory=dict)
    uses: list[shapes.Use] = field(default_factory=list)
    filled: str | None = None  # the statement with its $n filled from pg_stats
    note: str | None = None  # why no index is advised for it

    @property
    def weight(self) -> float:
        return self.statement.total_ms if self.statement.total_ms else 1.0


@dataclass
class Advice:
    source: str
    min_gain: float
    queries: list[Query]
    kept: list[Kept]
    how: list[str]  # the ways the candidates were planned
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[Candidate, str]] = field(default_factory=list)  # (candidate, the index serving it)
    dropped: list[tuple[Candidate, float]] = field(default_factory=list)  # under the threshold: best gain
    writes: dict[str, float | None] = field(default_factory=dict)  # table -> rows written per hour
    trgm_missing: bool = False


def advise(target: Target, *, queries: Path | None = None, checks: Path | None = None, min_gain: float = 0.5,
           limit: int = 20, sample_rows: int = 50_000, use_hypopg: bool = True, out: Output | None = None) -> Advice:
    out = out or Output(quiet=True)
    # A file or a checks directory is read before connecting: bad input is refused before any work.
    found: list[sources.Statement] | None = None
    if queries is not None:
        found, source = sources.from_file(queries), str(queries)
    elif checks is not None:
        found, source = sources.from_checks(checks), str(checks)
    with db.connect(target, purpose="advise") as conn:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        if found is None:
            found, source = sources.from_stat_statements(conn, limit), "pg_stat_statements"
        advice = Advice(source, min_gain, [_query(conn, s, {}) for s in found], [], [])
        advice.trgm_missing = not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()
        hypo = bool(conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'").fetchone())
        if not hypo:
            advice.notes.append(NO_HYPOPG)
        _plan(conn, advice, hypo and use_hypopg, sample_rows, out)
    return advice


def _query(conn: psycopg.Connection[Any], statement: sources.Statement, cache: dict[Any, Table | None]) -> Query:
    query = Query(statement, shapes.kind(statement.text))
    if query.kind not in shapes.SERVABLE:
        query.note = shapes.no_index(statement.text)
        return query
    query.uses = shapes.uses(statement.text)
    for use in query.uses:
        table = read(conn, use.relation)
        if table is not None:
            query.tables[use.alias] = table
    if len(query.tables) == 1:
        query.tables[None] = next(iter(query.tables.values()))
    query.uses = [u for u in query.uses if u.alias in query.tables]
    if not query.uses:
        query.note = "reads no table of this database"
    query.filled = costing.fill(statement.text, parameters.params(statement.text), query.tables)
    return query


def _plan(conn: psycopg.Connection[Any], advice: Advice, hypo: bool, sample_rows: int, out: Output) -> None:
    served = [q for q in advice.queries if q.note is None]
    wanted: dict[Candidate, None] = {}
    for q in served:
        for use in q.uses:
            table = q.tables[use.alias]
            advice.writes[table.qualified] = table.writes_per_hour
            for c in propose(use, table):
                existing = served_by(c, table.indexes)
                if existing is not None:
                    advice.skipped.append((c, existing.name))
                else:
                    wanted[c] = None
    advice.skipped = list(dict.fromkeys(advice.skipped))
    tables = list({t.qualified: t for q in served for t in q.tables.values()}.values())
    with contextlib.ExitStack() as stack:
        primary: Any = costing.Hypothetical(conn) if hypo else None
        sample: costing.Sample | None = None

        def planner_for(c: Candidate) -> Any:
            nonlocal sample
            if primary is not None and primary.can_hold(c):
                return primary
            if sample is None:
                sample = stack.enter_context(costing.Sample(conn, tables, sample_rows, out))
            return sample

        trials, sizes, how = _trials(advice, served, list(wanted), planner_for, out)
        advice.how = sorted(set(how.values()))
    advice.kept = choose(trials, [q.weight for q in advice.queries], sizes, advice.min_gain, how)
    kept = {k.candidate for k in advice.kept}
    advice.dropped = [(c, best_gain(trials, c)) for c in wanted if c not in kept
                      and best_gain(trials, c) < advice.min_gain]


def _trials(advice: Advice, served: list[Query], candidates: list[Candidate], planner_for: Any,
            out: Output) -> tuple[list[Trial], dict[Candidate, int], dict[Candidate, str]]:
    trials: list[Trial] = []
    sizes: dict[Candidate, int] = {}
    how: dict[Candidate, str] = {}
    before: dict[tuple[int, int], costing.Plan | None] = {}
    index = {id(q): advice.queries.index(q) for q in served}
    for n, c in enumerate(candidates, start=1):
        planner = planner_for(c)
        out.progress("advise", f"costing candidate {n} of {len(candidates)}: {c.name}")
        readers = [q for q in served if any(t.qualified == c.table for t in q.tables.values())]
        for q in readers:
            if (id(planner), id(q)) not in before:
                before[id(planner), id(q)] = _plan_of(planner, q)
        with planner.built(c) as (name, size):
            sizes[c], how[c] = size, planner.how
            for q in readers:
                was = before[id(planner), id(q)]
                now = _plan_of(planner, q)
                if was is not None and now is not None:
                    trials.append(Trial(c, index[id(q)], was.cost, now.cost,
                                        name in now.indexes and _used_as_checked(planner, q, name)))
    out.progress("advise", f"{len(candidates)} candidates costed", final=True)
    return trials, sizes, how


def _used_as_checked(planner: Any, q: Query, name: str) -> bool:
    """Whether the plan of the query as its check file will hold it (its $n filled from pg_stats)
    reads the index too: a generic plan can use an index that the check's values do not, and
    the written check must pass."""
    if not planner.generic or q.filled is None or q.filled == q.statement.text:
        return True
    try:
        return name in planner.plan(q.filled).indexes
    except psycopg.Error:
        return False


def _plan_of(planner: Any, q: Query) -> costing.Plan | None:
    text = q.statement.text if planner.generic or "$" not in q.statement.text else q.filled
    if text is None:
        q.note = q.note or "its parameters cannot be filled from pg_stats on this server (no GENERIC_PLAN before 16)"
        return None
    try:
        return planner.plan(text)
    except psycopg.Error as exc:
        q.note = q.note or f"cannot be planned: {exc.diag.message_primary or exc}"
        return None
