"""dbtune: put PostgreSQL performance work into production safely.

The library API, one function per verb (the `dbtune` command is a thin layer
over these)::

    from dbtune import resolve_target, resolve_migrations, apply, rollback, status
    target = resolve_target("postgresql://dba@db1/shop")
    dbtune.apply(target, resolve_migrations(), "head")

Names are loaded on first use so that `import dbtune` (and `dbtune --help`)
stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .core.errors import (
    BuildBlocked,
    ConfigError,
    ConnectionFailed,
    DbtuneError,
    LockBusy,
    MigrationFailed,
    ServerError,
)

_LAZY = {
    "apply": "migration.verbs", "rollback": "migration.verbs", "status": "migration.verbs",
    "RunOptions": "migration.config", "OnlineOptions": "online", "Engine": "online",
    "resolve_target": "core.settings", "resolve_migrations": "core.settings", "Target": "core.settings",
    "Output": "core.output", "seed": "seed", "throwaway_server": "servers.throwaway",
}

__all__ = ["BuildBlocked", "ConfigError", "ConnectionFailed", "DbtuneError", "LockBusy", "MigrationFailed",
           "ServerError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'dbtune' has no attribute {name!r}")
