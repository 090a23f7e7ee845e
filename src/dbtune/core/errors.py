"""The dbtune error family.

Every expected failure is a DbtuneError that carries the data a caller needs
to act on it (the revision, the statement, the blocking sessions) and the exit
code the command line returns for it.  The CLI prints ``str(error)`` on one
line; nothing here should ever need a traceback to be understood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Exit codes, documented in the README and in `dbtune --help`.
EXIT_OK = 0
EXIT_FAILED = 1  # the operation ran and failed (a migration, a check)
EXIT_USAGE = 2  # bad usage or configuration, nothing was attempted
EXIT_UNREACHABLE = 3  # the database could not be reached or refused us
EXIT_BUSY = 4  # another dbtune run holds this database's lock
EXIT_BLOCKED = 5  # a build waited past --max-wait on another session


class DbtuneError(Exception):
    """Base of every error dbtune expects and explains."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message

    def add_note(self, note: str) -> None:  # type: ignore[override]
        """Extend the one-line message (BaseException.add_note would print on a new line)."""
        self.message = f"{self.message}; {note}"
        self.args = (self.message,)


class ConfigError(DbtuneError):
    """Bad usage or configuration: a path, an option, a revision name."""

    exit_code = EXIT_USAGE


class PoolerRefused(ConfigError):
    """The connection goes through a pooler in transaction or statement pooling mode."""

    def __init__(self, message: str, *, mode: str, endpoint: str) -> None:
        super().__init__(message, mode=mode, endpoint=endpoint)


class ConnectionFailed(DbtuneError):
    """The server is unreachable, refused the login, or the database is missing."""

    exit_code = EXIT_UNREACHABLE


class LockBusy(DbtuneError):
    """Another apply/rollback holds the database's dbtune lock."""

    exit_code = EXIT_BUSY


class LockLost(LockBusy):
    """The session holding our lock was ended and another run took the lock: we stopped."""


class MigrationFailed(DbtuneError):
    """A migration's statement failed; the database stays at ``revision``."""

    def __init__(self, message: str, *, revision: str | None, failed_revision: str | None,
                 statement: str | None = None, sqlstate: str | None = None) -> None:
        super().__init__(message, revision=revision, failed_revision=failed_revision,
                         statement=statement, sqlstate=sqlstate)
        self.revision = revision
        self.failed_revision = failed_revision
        self.statement = statement
        self.sqlstate = sqlstate


@dataclass
class Blocker:
    """A session that holds up one of ours, as pg_stat_activity shows it."""

    pid: int
    application: str = ""
    state: str = ""
    xact_age_s: float | None = None
    query: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    role: str = ""
    # This role may not see the session's state, transaction age and query (pg_read_all_stats).
    hidden: bool = False

    def describe(self) -> str:
        if self.hidden:
            app = f", {self.application}" if self.application else ""
            return f"pid {self.pid} (role {self.role or '?'}{app}; its state, age and query are hidden from this role)"
        age = f"{self.xact_age_s:.0f}s" if self.xact_age_s is not None else "?"
        app = self.application or "-"
        query = " ".join(self.query.split())
        if len(query) > 80:
            query = query[:77] + "..."
        return f"pid {self.pid} ({app}, {self.state or '?'}, transaction open {age}): {query}"


class BuildBlocked(DbtuneError):
    """An index build waited longer than --max-wait on other sessions."""

    exit_code = EXIT_BLOCKED

    def __init__(self, message: str, *, index: str, blockers: list[Blocker], waited_s: float) -> None:
        super().__init__(message, index=index, blockers=blockers, waited_s=waited_s)
        self.index = index
        self.blockers = blockers
        self.waited_s = waited_s


class ServerError(DbtuneError):
    """The throwaway PostgreSQL server could not be found, started or stopped."""

    exit_code = EXIT_USAGE
