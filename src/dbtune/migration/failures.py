"""What an exception from a run means: one DbtuneError that says where it came from and where the database stays.

Whatever env.py, a revision, Alembic, SQLAlchemy or a driver raises is turned
into one error of dbtune's family: it names the file and line or the revision,
and the revision the database stays at (read on a session of dbtune's own);
the traceback only with --debug (DBTUNE_DEBUG=1).
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from alembic.script.revision import ResolutionError, RevisionError
from alembic.util.exc import CommandError
from sqlalchemy.exc import DBAPIError, PendingRollbackError

from ..core import db
from ..core.errors import ConfigError, ConnectionFailed, DbtuneError, MigrationFailed
from ..core.settings import Migrations
from . import session_settings
from .steps import Restart, RevisionTracker

if TYPE_CHECKING:
    from .run import Run


@contextlib.contextmanager
def errors(run: Run) -> Iterator[RevisionTracker]:
    """Turn what env.py, a revision, Alembic, SQLAlchemy or a driver raises into one DbtuneError."""
    tracker = run.tracker
    target = run.bound or run.target
    try:
        yield tracker
    except Restart:
        raise
    except DbtuneError as exc:
        raise located(run, exc) from None
    except (DBAPIError, psycopg.Error) as exc:
        raise located(run, _database_error(run, exc)) from None
    except PendingRollbackError as exc:
        raise located(run, MigrationFailed(
            f"lost the connection to {target.masked} ({str(exc).splitlines()[0]})", revision=None,
            failed_revision=tracker.running)) from None
    except (CommandError, RevisionError) as exc:
        raise located(run, unknown_revision(run, exc)) from None
    except Exception as exc:  # noqa: BLE001 - the project's own code: env.py, a revision, its imports
        raise located(run, _project_error(run, exc)) from None


def _database_error(run: Run, exc: DBAPIError | psycopg.Error) -> DbtuneError:
    """What the server (or the connection to it) refused, with the setting behind it where one was."""
    target = run.bound or run.target
    running = run.tracker.running
    # Through SQLAlchemy (Alembic's connection) the driver's error comes wrapped;
    # from dbtune's own connections (dbtune.ops) it comes as it is.
    wrapped = isinstance(exc, DBAPIError)
    orig = exc.orig if wrapped else exc
    code = db.sqlstate(orig)
    if run.bound is None and code is None and _disconnect(orig):
        # env.py could not connect at all.
        raise ConnectionFailed(f"cannot connect to {target.masked if target.explicit else 'the database'}"
                               f" that env.py uses: {db.describe(orig, target)}") from None
    if (wrapped and exc.connection_invalidated) or (code is None and _disconnect(orig)):
        return MigrationFailed(f"lost the connection to {target.masked}: {db.describe(orig, target)}",
                               revision=None, failed_revision=running)
    reason = db.describe(orig, target)
    if code == "57014" and (note := session_settings.statement_timeout_note(run.saved)):
        reason += "; " + note
    if code == "25006" and (note := session_settings.read_only_note(run.saved)):  # read_only_sql_transaction
        reason += "; " + note
    if code == "25001":  # active_sql_transaction: a concurrent statement inside a transaction
        reason += ("; run it inside op.get_context().autocommit_block(), as Alembic documents for "
                   "statements that cannot run in a transaction")
    return MigrationFailed(reason, revision=None, failed_revision=running,
                           statement=exc.statement if wrapped else None, sqlstate=code)


def unknown_revision(run: Run, exc: Exception) -> ConfigError:
    text = (run.bound or run.target).scrub(str(exc))
    if isinstance(exc, ResolutionError) or "Can't locate revision" in text:
        text += (f"; the database records a revision that {run.migrations.script_location} does not have: "
                 "is this the right migrations directory for this database?")
    return ConfigError(text)


def _disconnect(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, psycopg.OperationalError) or "connection" in text and "closed" in text


def _project_error(run: Run, exc: BaseException) -> DbtuneError:
    """An exception from the project's Python: where it was raised, and whether a revision was running."""
    where = _where(run.migrations, exc)
    kind = type(exc).__name__
    message = f"{kind}: {run.target.scrub(str(exc)).splitlines()[0] if str(exc) else kind}"
    if run.tracker.running and not isinstance(exc, SyntaxError):
        return MigrationFailed(f"{where}: {message}", revision=None, failed_revision=run.tracker.running)
    return ConfigError(f"{where}: {message}; nothing was run")


def _where(migrations: Migrations, exc: BaseException) -> str:
    """The deepest place in the project's files (else the deepest frame) the exception passed."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_relative(migrations, exc.filename)} line {exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    root = migrations.script_location.resolve()
    mine = [f for f in frames if _inside(f.filename, root)]
    theirs = [f for f in frames if "site-packages" not in f.filename and not _inside(f.filename, _PACKAGE)]
    frame = (mine or theirs or frames or [None])[-1]
    if frame is None:
        return str(migrations.script_location)
    return f"{_relative(migrations, frame.filename)} line {frame.lineno}"


_PACKAGE = Path(__file__).resolve().parent.parent  # the dbtune package


def _inside(filename: str, root: Path) -> bool:
    try:
        Path(filename).resolve().relative_to(root)
        return True
    except (ValueError, OSError):
        return False


def _relative(migrations: Migrations, filename: str) -> str:
    """A path as the DBA knows it: from the project's alembic.ini (else the migrations' parent)."""
    base = migrations.ini.parent if migrations.ini else migrations.script_location.parent
    try:
        return str(Path(filename).resolve().relative_to(base.resolve()))
    except (ValueError, OSError):
        return filename


def located(run: Run, exc: DbtuneError) -> DbtuneError:
    """Name the failed revision and say where the database stays (read on our own session)."""
    if getattr(exc, "_located", False):
        return exc
    running = run.tracker.running
    if running and not exc.message.startswith("revision "):
        failed = "revision {} failed: ".format(running) if isinstance(exc, MigrationFailed) else f"revision {running}: "
        exc.message = failed + exc.message
    statement = getattr(exc, "statement", None)
    if isinstance(exc, MigrationFailed) and statement and "[statement:" not in exc.message:
        stmt = " ".join(statement.split())
        exc.message += f" [statement: {stmt[:157] + '...' if len(stmt) > 160 else stmt}]"
    if not isinstance(exc, ConfigError) or running:
        now = run.versions()
        if now is not None:
            exc.message += f"; the database stays at {', '.join(now) or 'base'}"
            if isinstance(exc, MigrationFailed):
                exc.revision = ", ".join(now) or None
    exc.args = (exc.message,)
    exc._located = True  # type: ignore[attr-defined]
    return exc
