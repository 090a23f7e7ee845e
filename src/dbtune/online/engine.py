"""The online engine's names at their old address, until every module imports them from ``dbtune.online``."""

from . import (  # noqa: F401
    BUILDING_ON,
    PRIVILEGE_HINT,
    BuildResult,
    Engine,
    OnlineOptions,
    analyze_tables,
    build_statement_timeout_ms,
    has_expression,
    next_build,
)
