"""The advised indexes as a reviewed change: an Alembic revision and a verify check file per index.

The revision builds each index with CREATE INDEX CONCURRENTLY inside Alembic's
``autocommit_block()`` (the documented way; dbtune's engine then repairs leftovers and names
blockers), drops it CONCURRENTLY on downgrade, and carries the planner's evidence in its
docstring.  Each check file holds a query the index serves, with its parameters filled
from pg_stats, so `dbtune check` and, after `dbtune apply`, `dbtune verify` prove it used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError
from ..core.settings import Migrations, Target
from .run import Advice

_TEMPLATE = '''"""{title}

Revision ID: {revision}
Revises: {down}

Written by `dbtune advise` from {source}; {how}.
Each index cut the plan cost of the queries below by at least {min_gain:.0%}
(planner cost before -> with the index):

{evidence}
"""

from __future__ import annotations

from alembic import op

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None

INDEXES = {indexes}


def upgrade() -> None:
{extension}    with op.get_context().autocommit_block():
        for statement in INDEXES.values():
            op.execute(statement)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in reversed(list(INDEXES)):
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS {{name}}')
'''


@dataclass
class Written:
    revision: str
    path: Path
    checks: list[Path]


def write(advice: Advice, target: Target, migrations: Migrations, checks_dir: Path | None = None) -> Written:
    """Write the revision (on top of the project's head) and one check file per index."""
    from ..migration.config import alembic_config, script_directory

    if not advice.kept:
        raise ConfigError("no index to write: advise kept none (nothing was written)")
    if migrations.bundled:
        raise ConfigError("the bundled migrations are dbtune's own: name your project with --migrations "
                          "(nothing was written)")
    script = script_directory(alembic_config(target, migrations), migrations)
    heads = script.get_heads()
    if len(heads) > 1:
        raise ConfigError(f"the project has {len(heads)} heads ({', '.join(heads)}): merge them first "
                          "(nothing was written)")
    down = heads[0] if heads else None
    revision = f"{int(down) + 1:0{len(down)}d}" if down and down.isdigit() else _fresh_id()
    versions = Path(script.versions)
    path = versions / f"{revision}_advised_indexes.py"
    checks_dir = checks_dir or migrations.script_location / "checks"
    indexes = "{\n" + "".join(f"    {k.candidate.name!r}: {k.candidate.definition(concurrently=True)!r},\n"
                              for k in advice.kept) + "}"
    gin = any(k.candidate.method == "gin" for k in advice.kept) and advice.trgm_missing
    text = _TEMPLATE.format(
        title=f"Indexes advised by dbtune advise: {', '.join(k.candidate.name for k in advice.kept)}"[:200],
        revision=revision, down=down, source=advice.source, how="; ".join(advice.how), min_gain=advice.min_gain,
        evidence=_evidence(advice), indexes=indexes,
        extension="    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')  # the trigram operator classes\n"
        if gin else "")
    versions.mkdir(parents=True, exist_ok=True)
    checks_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return Written(revision, path, [_check(advice, k, checks_dir) for k in advice.kept])


def _evidence(advice: Advice) -> str:
    lines = []
    for k in advice.kept:
        lines.append(f"{k.candidate.name} ({k.candidate.kind}, about {k.size // 1024:,} kB):")
        for t in k.serves:
            s = advice.queries[t.query].statement
            calls = f", {s.calls:,} calls, {s.total_ms:,.0f} ms in all" if s.calls is not None and s.total_ms else ""
            lines.append(f"  {t.before:,.1f} -> {t.after:,.1f} ({t.gain:.0%}){calls}: "
                         f"{' '.join(s.text.split())[:160]}")
    return "\n".join(lines).replace('"""', "'''").replace("\\", "\\\\")


def _check(advice: Advice, kept, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    query = advice.queries[kept.serves[0].query]
    text = query.filled or query.statement.text
    path = folder / f"{kept.candidate.name}.sql"
    path.write_text(f"-- Advised by dbtune advise ({kept.candidate.kind}); the query it serves, its parameters "
                    "filled from pg_stats.\n"
                    f"-- verify: {' '.join(text.split())}\n-- verify-index: {kept.candidate.name}\n")
    return path


def _fresh_id() -> str:
    import uuid

    return re.sub("-", "", str(uuid.uuid4()))[:12]
