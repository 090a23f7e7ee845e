"""Operations for migration scripts: run dbtune's SQL files, build and drop indexes online.

A migration calls these from ``upgrade()``/``downgrade()``.  They work under
`dbtune apply` (which passes its options through ``config.attributes``),
under plain `alembic upgrade`, and in offline ``--sql`` mode, where they only
print the statements.

Index statements run outside the migration's transaction (Alembic's
``autocommit_block``), on the online engine's own connections; so a migration
that builds indexes should do nothing else, and every build is idempotent:
re-running a half-done migration finishes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from alembic import context, op
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .core import db
from .core.errors import DbtuneError
from .core.resources import sql_path
from .core.settings import Target
from .migration import drivers
from .migration.keys import OPTIONS_KEY, OWN_PIDS_KEY
from .online import Engine, OnlineOptions
from .sqltext.statements import IndexStatement, parse_index_statement, read_index_file, split_sql


def _path(name: str | Path) -> Path:
    path = Path(name)
    return path if path.is_absolute() else sql_path(*path.parts)


def run_sql_file(name: str | Path) -> None:
    """Run every statement of a SQL file (relative to dbtune's sql/) in the migration's transaction."""
    for statement in split_sql(_path(name).read_text()):
        op.execute(text(statement.replace(":", r"\:")))


def index_statements(*names: str | Path) -> list[IndexStatement]:
    return [read_index_file(_path(name if str(name).endswith(".sql") else f"indexes/{name}.sql"))
            for name in names]


def create_indexes(*names: str | Path) -> None:
    """Build the indexes of these sql/indexes files concurrently (repairing leftovers)."""
    _run_online(index_statements(*names))


def drop_indexes(*names: str | Path) -> None:
    """Drop the indexes these files create, concurrently, newest first."""
    drops = []
    for st in reversed(index_statements(*names)):
        name = sql.Identifier(st.schema, st.name) if st.schema else sql.Identifier(st.name)
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(name).as_string()
        drops.append(IndexStatement(sql=statement, verb="drop",
                                    name=st.name, schema=st.schema, table=None, table_schema=None,
                                    concurrently=True, source=st.source))
    _run_online(drops)


def _run_options() -> tuple[OnlineOptions, set[int]]:
    """What `dbtune apply` passed in; defaults under plain `alembic upgrade`."""
    config = op.get_context().config
    attributes = config.attributes if config is not None else {}
    return attributes.get(OPTIONS_KEY) or OnlineOptions(), attributes.get(OWN_PIDS_KEY) or set()


def _run_online(statements: list[IndexStatement]) -> None:
    migration = op.get_context()
    if context.is_offline_mode():
        with migration.autocommit_block():
            for st in statements:
                op.execute(text(st.sql.replace(":", r"\:")))
        return
    options, own = _run_options()
    bind = op.get_bind()
    # dbtune's own sessions reach the migration's database with psycopg, whatever driver
    # env.py uses, and resolve names with the migration connection's search_path.
    raw = drivers.dbapi(bind)
    target = Target.from_engine_url(bind.engine.url, source="migration connection").with_session(
        search_path=drivers.search_path(raw))
    with migration.autocommit_block():
        pid = drivers.backend_pid(bind)
        Engine(target, options, own_pids=own | {pid}).run(statements)


def view_path(name: str) -> Path:
    return _path(name if name.endswith(".sql") else f"views/{name}.sql")


def view_statements(name: str) -> tuple[list[str], list[IndexStatement]]:
    """A sql/views file: its transactional statements, and its index builds (for the engine)."""
    path = view_path(name)
    plain, indexes = [], []
    for statement in split_sql(path.read_text()):
        st = parse_index_statement(statement, source=path.name)
        if st is not None and st.concurrently:
            indexes.append(st)
        else:
            plain.append(statement)
    return plain, indexes


def create_materialized_views(*names: str) -> None:
    """Create each sql/views file's materialized view, then build its unique index online.

    The views are created WITH NO DATA: populating them here would hold the
    migration for as long as the query takes on a large database, so the first
    `dbtune refresh` populates them.
    """
    builds: list[IndexStatement] = []
    for name in names:
        plain, indexes = view_statements(name)
        for statement in plain:
            op.execute(text(statement.replace(":", r"\:")))
        builds += indexes
    _run_online(builds)  # autocommit_block(): the views above commit first


def drop_materialized_views(*names: str) -> None:
    """DROP MATERIALIZED VIEW, newest first; a brief ACCESS EXCLUSIVE on the view, under lock_timeout.

    Each name is qualified with the schema the view was created in (the files name none, so
    CREATE put it in current_schema()): an unqualified DROP would take the first view of that
    name anywhere on the search_path, a team's own included.  Offline there is no schema to ask.
    """
    schema = None if context.is_offline_mode() else _run_in_migration("SELECT current_schema()")[0][0]
    for name in reversed(names):
        view = Path(view_path(name)).stem
        ident = sql.Identifier(schema, view) if schema else sql.Identifier(view)
        op.execute(text(sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}").format(ident).as_string()))


def create_extensions(*names: str, preloaded: tuple[str, ...] = ()) -> None:
    """CREATE EXTENSION IF NOT EXISTS each one, explaining what a DBA must do when it cannot.

    ``preloaded`` names extensions that only work when listed in
    shared_preload_libraries (pg_stat_statements): missing there is a warning,
    since the extension installs fine and only its views fail until a restart.
    """
    def create(name: str) -> str:
        return sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)).as_string()

    if context.is_offline_mode():
        for name in names:
            op.execute(text(create(name)))
        return
    bind = op.get_bind()
    available = {row[0] for row in bind.exec_driver_sql("SELECT name FROM pg_available_extensions")}
    for name in names:
        if name not in available:
            raise DbtuneError(f"the server has no {name} extension: install PostgreSQL's contrib modules "
                              "(Debian/Ubuntu: postgresql-contrib) on the database server")
        installed = bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = :n"), {"n": name}).first()
        if installed:
            continue
        try:
            with bind.begin_nested():
                bind.exec_driver_sql(create(name))
        except DBAPIError as exc:
            if db.sqlstate(exc.orig) == psycopg.errors.InsufficientPrivilege.sqlstate:
                raise DbtuneError(f"this role may not create the {name} extension: ask a superuser to run "
                                  f"CREATE EXTENSION {name}; in this database (or grant CREATE on it, "
                                  "for trusted extensions), then apply again") from None
            raise
    libraries = bind.exec_driver_sql("SHOW shared_preload_libraries").scalar() or ""
    loaded = {lib.strip() for lib in libraries.split(",")}
    options, _ = _run_options()
    for name in preloaded:
        if name not in loaded:
            options.out.warn(f"{name} is installed but not in shared_preload_libraries, so its views will "
                             f"fail until you add it there and restart PostgreSQL")


def _run_in_migration(statement: str) -> list[Any]:
    """One statement on the migration's connection (offline: printed), its rows if it returns any."""
    clause = text(statement.replace(":", r"\:"))  # a literal colon, not a bind parameter
    if context.is_offline_mode():
        op.execute(clause)
        return []
    result = op.get_bind().execute(clause)
    return list(result.fetchall()) if result.returns_rows else []


def create_monitoring_views() -> None:
    """The sql/monitoring views, written for this server (see monitoring.py), readable by pg_monitor."""
    from .monitoring import views as monitoring

    if context.is_offline_mode():
        monitoring.create_views(_run_in_migration, monitoring.NEWEST, check=False, replace=False)
        return
    found = monitoring.facts(_run_in_migration)
    monitoring.create_views(_run_in_migration, found)
    if (note := found.view_note) is not None:
        options, _ = _run_options()
        options.out.warn(f"slow_queries cannot read pg_stat_statements yet: {note}")


def drop_monitoring_views() -> None:
    from .monitoring import views as monitoring

    monitoring.drop_views(_run_in_migration)
