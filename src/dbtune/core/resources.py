"""Where dbtune's own migrations, SQL files and configuration template live.

In a wheel they are bundled under ``dbtune/_bundled``; in a source checkout
(an editable install, or the test suite) they sit at the top of the
repository, where `alembic upgrade head` and a reader expect them.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # the dbtune package


def bundled(name: str) -> Path:
    """Path of a bundled resource: ``migrations``, ``sql`` or ``postgresql.conf.template``."""
    inside = _PACKAGE / "_bundled" / name
    if inside.exists():
        return inside
    checkout = _PACKAGE.parent.parent / name
    if checkout.exists():
        return checkout
    raise FileNotFoundError(f"dbtune resource {name!r} is missing from this installation")


def sql_path(*parts: str) -> Path:
    return bundled("sql").joinpath(*parts)
