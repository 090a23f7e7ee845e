"""What a revision name means for a database at some revisions: known, pending, past, where to go.

Read from the project's ScriptDirectory only, never from the database: a verb
asks these once env.py has placed the versions and the run holds its lock.
"""

from __future__ import annotations

import re

from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError

from ..core.errors import ConfigError


def known(script: ScriptDirectory, rev: str) -> None:
    if rev in ("base", "head", "heads"):
        return
    # Alembic's relative forms name a revision too: REV@-1 (one step down REV's own branch), REV+2.
    relative = re.sub(r"(@[+-]?\d+|[+-]\d+)$", "", rev)
    for name in dict.fromkeys([rev, relative]):
        try:
            if name and script.get_revision(name) is not None:
                return
        except (CommandError, RevisionError):
            pass
    raise ConfigError(f"unknown revision {rev!r} (see `dbtune status` for the known ones)")


def past(script: ScriptDirectory, current: list[str], destination: str) -> bool:
    """Whether the database has gone beyond ``destination``: all of it applied, and more on top."""
    if not current:
        return False
    try:
        tops = {r.revision for r in script.get_revisions(destination) if r is not None}
        if tops <= set(current):
            return False  # at the destination: no walk of the history (a tenth of a second on long ones)
        wanted = {r.revision for r in script.iterate_revisions(destination, "base")}
        applied = {r.revision for r in script.iterate_revisions(tuple(current), "base")}
    except (CommandError, RevisionError):
        return False  # a relative form (REV@-1): Alembic's own reading of it follows
    return wanted <= applied and not tops <= set(current)


def pending_to(script: ScriptDirectory, current: list[str], destination: str) -> bool:
    try:
        # The usual answers without walking the history (which takes Alembic a tenth of a second
        # on a few hundred revisions with merge points): at base, any revision at all is pending;
        # at the destination itself, none is.
        tops = {r.revision for r in script.get_revisions(destination) if r is not None}
        if tops and (not current or tops <= set(current)):
            return not current
    except (CommandError, RevisionError):
        pass  # a relative form (REV@-1) and the like: the walk below reads it
    try:
        revs = list(script.iterate_revisions(destination, current or "base"))
    except (CommandError, RevisionError):
        return True  # let Alembic explain, e.g. a destination below the current revision
    return any(r.revision not in current for r in revs)


def pending(script: ScriptDirectory, current: list[str]) -> list[tuple[str, str]]:
    """Each revision up to the heads the database has not applied, oldest first, with its message."""
    lower = current if current else "base"
    revs = list(script.iterate_revisions("heads", lower))
    revs = [r for r in revs if r.revision not in current]
    return [(r.revision, (r.doc or "").splitlines()[0] if r.doc else "") for r in reversed(revs)]


def destination(script: ScriptDirectory, direction: str, to: str | None, steps: int,
                current: list[str]) -> str:
    if direction == "upgrade":
        to = to or "head"
        known(script, to)
        return to
    if to is not None:
        known(script, to)
        return to
    # N steps down from the current revision, along down_revision.
    if len(current) > 1:
        raise ConfigError("the database has several heads; roll back with --to REV")
    rev = current[0] if current else None
    for _ in range(steps):
        if rev is None:
            raise ConfigError(f"cannot roll back {steps} step(s): the history is shorter")
        down = script.get_revision(rev).down_revision  # type: ignore[union-attr]
        if isinstance(down, tuple):
            raise ConfigError(f"{rev} is a merge point; roll back with --to REV")
        rev = down
    return rev or "base"
