"""Lint of the SQL each revision runs: squawk's rules, dbtune's own where squawk is silent, and
squawk overruled where it is wrong for builds dbtune repairs.

The SQL is Alembic's offline rendering (``alembic upgrade --sql``) of the whole
chain, split by revision at Alembic's "-- Running upgrade A -> B" lines, so each
finding names its revision and its line in the rendered file.  Statements are
read with pglast (locks.py): a relation (table, partition, materialized view)
created earlier in the same revision is new, and may take any lock, from
dbtune's rules and from squawk's alike; every other table is a production
table.  squawk's client-compatibility rules are advice about deploy order
unless the project asks for them to fail.

Silencing: a SQL comment ``-- dbtune: ignore[rule]`` (or squawk's own
``-- squawk-ignore rule``) on the statement; ``# dbtune: ignore[rule]`` anywhere
in a revision's file for that revision; ``[tool.dbtune] check.ignore = [...]``
for the project.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..sqltext import lockmodes as locks

# squawk rules dbtune overrules: dbtune apply sets lock_timeout on every transactional
# statement and bounds concurrent builds with --max-wait, Alembic revisions are
# transactional, and IF NOT EXISTS on a concurrent build is what hides an INVALID
# leftover that dbtune otherwise repairs.
OVERRULED = {
    "require-lock-timeout": "dbtune apply sets lock_timeout (--lock-timeout) on every transactional statement",
    "require-statement-timeout": "dbtune apply bounds waits with --lock-timeout and --max-wait instead",
    "prefer-robust-stmts": "revisions are transactional; dbtune repairs INVALID leftovers of concurrent builds",
    # Alembic writes each revision's BEGIN and COMMIT; a revision's SQL is linted on its own, so
    # squawk may see one without the other.  concurrent-in-transaction covers what matters.
    "transaction-nesting": "Alembic manages the transactions; dbtune's concurrent-in-transaction rule applies",
    "ban-uncommitted-transaction": "Alembic manages the transactions",
}
# squawk's schema-design advice: reported, never a failure of a migration's safety.
ADVICE = {"prefer-bigint-over-int", "prefer-bigint-over-smallint", "prefer-identity", "prefer-text-field",
          "prefer-timestamptz"}
# squawk's client-compatibility rules ("may break existing clients"): advice about the order in which
# the application and the migration are deployed, not about locks.  Advice unless the project asks
# for them to fail (--fail-on-compatibility, or [tool.dbtune] check.fail-on-compatibility = true).
COMPATIBILITY = {"ban-drop-column", "ban-drop-table", "ban-drop-constraint", "ban-drop-not-null", "ban-drop-default",
                 "ban-drop-view", "ban-drop-type", "ban-drop-schema", "ban-drop-sequence", "ban-drop-function",
                 "ban-drop-database", "ban-drop-domain", "ban-drop-index", "ban-drop-policy", "ban-drop-trigger",
                 "ban-drop-extension", "ban-drop-generated-expression", "ban-set-schema", "renaming-column",
                 "renaming-table", "renaming-object"}

_RUNNING = re.compile(r"^-- Running upgrade (?P<down>.*?) -> (?P<rev>\S+)", re.MULTILINE)
_IGNORE_SQL = re.compile(r"--\s*(?:dbtune:\s*ignore\[(?P<ours>[\w,\s-]+)\]|squawk-ignore\s+(?P<theirs>[\w,\s-]+))")
_IGNORE_PY = re.compile(r"#\s*dbtune:\s*ignore\[(?P<rules>[\w,\s-]+)\]")


@dataclass
class Finding:
    revision: str
    line: int  # 1-based, in the rendered SQL
    rule: str
    message: str
    source: str  # "dbtune" or "squawk"
    level: str = "error"  # "error" fails the check; "advice" is reported only
    statement: str = ""


@dataclass
class Rendered:
    sql: str
    revisions: list[tuple[int, str]]  # (first line, revision) in order

    def revision_at(self, line: int) -> str:
        current = "(before the first revision)"
        for first, rev in self.revisions:
            if first > line:
                break
            current = rev
        return current


def split_rendered(text: str) -> Rendered:
    marks = [(text.count("\n", 0, m.start()) + 1, m.group("rev")) for m in _RUNNING.finditer(text)]
    return Rendered(text, marks)


def _statements(text: str) -> list[tuple[int, str]]:
    """Each statement of ``text`` with the line it starts on (comments before it included)."""
    from ..sqltext.statements import split_sql

    found, cursor = [], 0
    for statement in split_sql(text):
        at = text.find(statement, cursor)
        if at < 0:
            continue
        body_start = at
        # The statement's own first non-comment line, for the finding's line number.
        for line in statement.splitlines():
            if line.strip() and not line.strip().startswith("--"):
                body_start = text.find(line, at)
                break
        found.append((text.count("\n", 0, body_start) + 1, statement))
        cursor = at + len(statement)
    return found


def _silenced(statement: str) -> set[str]:
    rules: set[str] = set()
    for m in _IGNORE_SQL.finditer(statement):
        rules |= {r.strip() for r in (m.group("ours") or m.group("theirs")).replace(",", " ").split()}
    return rules


def revision_ignores(files: dict[str, Path]) -> dict[str, set[str]]:
    """Rules silenced per revision by a ``# dbtune: ignore[rule]`` comment in its file."""
    found: dict[str, set[str]] = {}
    for rev, path in files.items():
        for m in _IGNORE_PY.finditer(path.read_text(errors="replace")):
            found.setdefault(rev, set()).update(r.strip() for r in m.group("rules").replace(",", " ").split())
    return found


@dataclass
class _Read:
    """One statement of the rendered SQL, as PostgreSQL's parser reads it."""

    line: int
    revision: str
    body: str
    in_transaction: bool
    statements: list[locks.Statement]
    new: set[str]  # relations created earlier in the same revision


def _read(rendered: Rendered) -> list[_Read]:
    """Every statement with its revision, its transaction, and the relations its revision created before it."""
    found: list[_Read] = []
    created: dict[str, set[str]] = {}
    in_transaction = False
    for line, statement in _statements(rendered.sql):
        body = "\n".join(s for s in statement.splitlines() if not s.strip().startswith("--")).strip()
        head = body.split(None, 1)[0].upper() if body else ""
        if head in ("BEGIN", "START"):
            in_transaction = True
            continue
        if head in ("COMMIT", "END", "ROLLBACK"):
            in_transaction = False
            continue
        rev = rendered.revision_at(line)
        new = created.setdefault(rev, set())
        parsed = locks.classify(body)
        found.append(_Read(line, rev, body, in_transaction, parsed, set(new)))
        new.update(st.creates.split(".")[-1] for st in parsed if st.creates)
    return found


def _touches(st: locks.Statement) -> set[str]:
    return {lock.relation.split(".")[-1] for lock in st.locks}


def dbtune_rules(reads: list[_Read]) -> list[Finding]:
    """The rules squawk does not have, read from PostgreSQL's parse tree."""
    findings: list[Finding] = []
    for r in reads:
        def add(rule: str, message: str, level: str = "error", r: _Read = r) -> None:
            findings.append(Finding(r.revision, r.line, rule, message, "dbtune", level, " ".join(r.body.split())[:200]))

        new = set(r.new)
        for st in r.statements:
            existing = bool(_touches(st) - new)
            if st.creates:
                new.add(st.creates.split(".")[-1])
            if st.kind == "CREATE INDEX" and existing:
                add("index-not-concurrent", "CREATE INDEX on an existing table blocks its writes for the whole "
                    "build: use CREATE INDEX CONCURRENTLY in autocommit_block()")
            elif st.kind == "DROP INDEX":
                add("drop-index-not-concurrent", "DROP INDEX takes ACCESS EXCLUSIVE on its table: use DROP INDEX "
                    "CONCURRENTLY in autocommit_block()")
            elif st.kind == "REFRESH MATERIALIZED VIEW" and existing:
                add("refresh-not-concurrent", "REFRESH MATERIALIZED VIEW blocks every reader of the view for the "
                    "whole refresh: use CONCURRENTLY (it needs a unique index), or leave refreshes to dbtune refresh")
            if st.concurrent and r.in_transaction:
                add("concurrent-in-transaction", f"{st.kind} cannot run inside a transaction block: put it in "
                    "op.get_context().autocommit_block()")
            if existing and any(lock.rewrites for lock in st.locks) and st.kind.startswith("ALTER TABLE ADD COLUMN"):
                add("volatile-default-rewrite", "the new column is filled row by row: the whole table is rewritten "
                    "under ACCESS EXCLUSIVE; add it without the default (or with a constant), then backfill in "
                    "batches")
            if existing and ("ADD FOREIGN KEY" in st.kind or "ADD CHECK" in st.kind) and "NOT VALID" not in st.kind:
                add("constraint-not-valid", "every existing row is checked while the lock is held: add the "
                    "constraint NOT VALID, then VALIDATE CONSTRAINT in a later revision")
            if existing and st.strongest == locks.ACCESS_EXCLUSIVE and r.in_transaction:
                add("lock-timeout", "ACCESS EXCLUSIVE on a production table: dbtune apply bounds the wait with "
                    "--lock-timeout and retries; plain alembic would queue the application behind it",
                    level="advice")
    return findings


def _on_new_relations(reads: list[_Read]) -> set[int]:
    """Lines of statements that touch only relations their revision created earlier.

    No application code knows such a relation yet, and inside the revision's transaction no
    other session can even see it: nobody waits for its lock, no client breaks.
    """
    lines = set()
    for r in reads:
        touched = set().union(*(_touches(st) for st in r.statements)) if r.statements else set()
        if touched and touched <= r.new:
            lines.add(r.line)
    return lines


def _statement_at(reads: list[_Read], line: int) -> _Read | None:
    """The statement a finding's line belongs to: the last one starting at or before it."""
    found = None
    for r in reads:
        if r.line > line:
            break
        found = r
    return found


def squawk_binary() -> str | None:
    """squawk-cli's binary: beside this Python (the venv), else on PATH."""
    here = Path(sys.executable).parent / "squawk"
    return str(here) if here.exists() else shutil.which("squawk")


def squawk_rules(rendered: Rendered, reads: list[_Read], fail_on_compatibility: bool = False) -> list[Finding]:
    binary = squawk_binary()
    if binary is None:
        from ..core.errors import ConfigError

        raise ConfigError("squawk is not installed: pip install squawk-cli (dbtune check lints with it)")
    # One file per revision: squawk treats a table created earlier in the same file as new, and
    # a table from an earlier revision is a production table.
    lines = rendered.sql.splitlines()
    bounds = [(first, rev) for first, rev in rendered.revisions]
    chunks = [(first, bounds[i + 1][0] - 1 if i + 1 < len(bounds) else len(lines), rev)
              for i, (first, rev) in enumerate(bounds)]
    with tempfile.TemporaryDirectory(prefix="dbtune-lint-") as folder:
        files = {}
        for n, (first, last, rev) in enumerate(chunks):
            path = Path(folder) / f"{n:05d}.sql"
            path.write_text("\n".join(lines[first - 1:last]) + "\n")
            files[str(path)] = (first, rev)
        # Alembic's rendering has its own BEGIN and COMMIT lines: squawk sees the transactions as they are.
        done = subprocess.run([binary, "--reporter", "json", *files], capture_output=True, text=True, timeout=120)
    try:
        raw = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        from ..core.errors import DbtuneError

        raise DbtuneError(f"squawk failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}") from None
    findings = []
    new_only = _on_new_relations(reads)
    for item in raw:
        first, rev = files.get(item.get("file", ""), (1, "?"))
        line = first + int(item.get("line", 0))
        rule = item.get("rule_name", "squawk")
        statement = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        if rule in OVERRULED:
            continue
        at = _statement_at(reads, line)
        if rule not in ADVICE and at is not None and at.line in new_only:
            continue  # a relation created earlier in the same revision: see _on_new_relations
        message = item.get("message", "") + (f" {item['help']}" if item.get("help") else "")
        advice = rule in ADVICE or (rule in COMPATIBILITY and not fail_on_compatibility)
        findings.append(Finding(rev, line, rule, message, "squawk", "advice" if advice else "error",
                                statement[:200]))
    return findings


def lint(rendered: Rendered, project_ignores: set[str], revision_ignores_: dict[str, set[str]], *,
         fail_on_compatibility: bool = False) -> list[Finding]:
    """Every finding, less the silenced ones, in the order of the rendered SQL."""
    if not rendered.revisions:
        return []  # nothing rendered (every revision older than --since): nothing to lint
    statements = _statements(rendered.sql)
    silenced_at: dict[int, set[str]] = {}
    for line, statement in statements:
        rules = _silenced(statement)
        if rules:
            last = line + statement.count("\n")
            for n in range(line - statement.count("\n") - 1, last + 1):
                silenced_at.setdefault(n, set()).update(rules)
    kept = []
    reads = _read(rendered)
    for f in dbtune_rules(reads) + squawk_rules(rendered, reads, fail_on_compatibility):
        if f.rule in project_ignores or f.rule in revision_ignores_.get(f.revision, set()):
            continue
        if f.rule in silenced_at.get(f.line, set()):
            continue
        kept.append(f)
    return sorted(kept, key=lambda f: (f.line, f.rule))
