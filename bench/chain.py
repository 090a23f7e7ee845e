"""Long-chain benchmark: `dbtune apply` against plain `alembic upgrade head` on 300 revisions like real ones.

Real chains are not only small DDL: they fill tables, migrate data in batches,
build indexes CONCURRENTLY in autocommit_block() after get_bind().commit(),
create enum types and trigger functions, set their own timeouts, and branch and
merge.  This generates a standard Alembic project (the `alembic init` env.py with
transaction_per_migration, which a revision that commits needs) of 300 such
revisions in groups of ten (see _revision) and runs both tools on it as whole
processes, on the same throwaway server, each on a fresh database, through the
same ini and the same driver (psycopg 3).  The two tools alternate within each
round so that machine noise hits both.  Process start-up alone (`--version`) and
a run with nothing to do (already at head) are recorded too, to split the fixed
cost from the cost per revision; one more run of each, its output stamped line
by line as it arrives, says how long each kind of revision takes under each tool.
"""

from __future__ import annotations

import compileall
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from tabulate import tabulate

from dbtune.servers.throwaway import throwaway_server

# The chain's length in make bench; a smoke run passes fewer, a multiple of GROUP (so that every
# kind is in it and every branch is merged).
REVISIONS = 300
TOOLS = ("alembic", "dbtune")
TARGET_RATIO = 1.1
# Long enough for a slow machine, short enough that a hung run does not stall `make bench`.
RUN_TIMEOUT_S = 300.0
COMMANDS = {"alembic": "alembic -c alembic.ini upgrade head",
            "dbtune": "dbtune apply --migrations alembic.ini --database-url URL --quiet"}

# The env.py that `alembic init` writes (generic template), unchanged in substance: online mode,
# engine_from_config over the ini's [alembic] section (so sqlalchemy.url, which dbtune overrides with its
# --database-url), NullPool, target_metadata=None; with one transaction per revision, since a revision that
# calls get_bind().commit() would otherwise leave the rest of a one-transaction upgrade uncommitted.
ENV_PY = '''\
from logging.config import fileConfig

from sqlalchemy import engine_from_config
from sqlalchemy import pool

from alembic import context

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = None


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )

    with connectable.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata,
            transaction_per_migration=True,
        )

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
'''

# The ini `alembic init` writes, logging sections included: plain alembic then logs one INFO line per revision
# to stderr, as it does in a real project.
ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
path_separator = os
sqlalchemy.url = {url}

[post_write_hooks]

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"""

REVISION_PY = '''\
"""{message}

Revision ID: {rev}
Revises: {down_doc}
Create Date: 2026-11-24 00:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision: str = "{rev}"
down_revision: Union[str, Sequence[str], None] = {down}
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


ROWS = 2000  # each table's rows, so that its data migration and its concurrent build have something to do
GROUP = 10  # revisions per table: KINDS in order, the last three a branch and its merge point
KINDS = ("table", "enum", "column", "data in batches", "concurrent index", "function", "own timeouts",
         "branch: comment", "branch: plain index", "merge point")


def _revision(n: int) -> tuple[str, tuple[str, ...], str, list[str], list[str]]:
    """Revision n's kind, parents, message, upgrade and downgrade bodies.

    What real chains hold, one table per group of ten: the table created and filled, an enum type, a new
    column, a data migration in batches, a CREATE INDEX CONCURRENTLY in autocommit_block() after
    get_bind().commit(), a trigger function, a revision that sets its own lock and statement timeouts, then
    two revisions on branches from the same parent and the merge point that joins them.
    """
    base, k = n - 1 - (n - 1) % GROUP, (n - 1) % GROUP
    table, kind = f"t_{base // GROUP + 1:03d}", KINDS[(n - 1) % GROUP]
    rev = lambda i: f"r{i:03d}"  # noqa: E731
    parents = (rev(base + 8), rev(base + 9)) if k == 9 else (rev(base + 7),) if k == 8 else \
        ((rev(n - 1),) if n > 1 else ())
    enum = f"state_{table}"
    bodies: dict[str, tuple[list[str], list[str]]] = {
        "table": ([f'op.create_table("{table}", sa.Column("id", sa.Integer(), primary_key=True),'
                   f' sa.Column("v", sa.Text()))',
                   f'op.execute("INSERT INTO {table} (id, v) SELECT g, \'v\' || g FROM generate_series(1, {ROWS}) g")'],
                  [f'op.drop_table("{table}")']),
        "enum": ([f'postgresql.ENUM("new", "done", name="{enum}").create(op.get_bind())',
                  f'op.add_column("{table}", sa.Column("state", postgresql.ENUM(name="{enum}", create_type=False),'
                  f' server_default="new"))'],
                 [f'op.drop_column("{table}", "state")', f'op.execute("DROP TYPE {enum}")']),
        "column": ([f'op.add_column("{table}", sa.Column("note", sa.Text(), nullable=True))'],
                   [f'op.drop_column("{table}", "note")']),
        "data in batches": (["bind = op.get_bind()",
                             f'batch = sa.text("UPDATE {table} SET note = v WHERE id IN '
                             f'(SELECT id FROM {table} WHERE note IS NULL LIMIT 500)")',
                             "while bind.execute(batch).rowcount:",
                             "    pass"],
                            [f'op.execute("UPDATE {table} SET note = NULL")']),
        "concurrent index": (["op.get_bind().commit()",
                              "with op.get_context().autocommit_block():",
                              f'    op.create_index("ix_{table}_v", "{table}", ["v"], postgresql_concurrently=True)'],
                             ["with op.get_context().autocommit_block():",
                              f'    op.drop_index("ix_{table}_v", table_name="{table}",'
                              ' postgresql_concurrently=True)']),
        "function": ([f'op.execute("CREATE FUNCTION {table}_touch() RETURNS trigger LANGUAGE plpgsql AS '
                      f'$$ BEGIN NEW.note := coalesce(NEW.note, NEW.v); RETURN NEW; END $$")',
                      f'op.execute("CREATE TRIGGER {table}_touch BEFORE INSERT ON {table} '
                      f'FOR EACH ROW EXECUTE FUNCTION {table}_touch()")'],
                     [f'op.execute("DROP TRIGGER {table}_touch ON {table}")',
                      f'op.execute("DROP FUNCTION {table}_touch()")']),
        "own timeouts": (['op.execute("SET lock_timeout = \'5s\'")', 'op.execute("SET statement_timeout = \'60s\'")',
                          f'op.alter_column("{table}", "v", server_default=sa.text("\'\'"))'],
                         [f'op.alter_column("{table}", "v", server_default=None)']),
        "branch: comment": ([f'op.execute("COMMENT ON TABLE {table} IS \'bench table {n}\'")'],
                            [f'op.execute("COMMENT ON TABLE {table} IS NULL")']),
        "branch: plain index": ([f'op.create_index("ix_{table}_note", "{table}", ["note"])'],
                                [f'op.drop_index("ix_{table}_note", table_name="{table}")']),
        "merge point": (["pass"], ["pass"]),
    }
    upgrade, downgrade = bodies[kind]
    return kind, parents, f"{kind} {table}", upgrade, downgrade


def head_of(revisions: int) -> str:
    return f"r{revisions:03d}"


def write_project(folder: Path, url: str, revisions: int = REVISIONS) -> Path:
    """A standard Alembic project in ``folder``: alembic.ini, migrations/env.py, the revisions. Returns the ini."""
    versions = folder / "migrations" / "versions"
    versions.mkdir(parents=True)
    (folder / "migrations" / "env.py").write_text(ENV_PY)
    # ConfigParser interpolation: a literal % in the URL must be doubled.
    (folder / "alembic.ini").write_text(ALEMBIC_INI.format(url=url.replace("%", "%%")))
    for n in range(1, revisions + 1):
        rev = f"r{n:03d}"
        _, parents, message, upgrade, downgrade = _revision(n)
        down = repr(parents[0]) if len(parents) == 1 else repr(parents) if parents else "None"
        (versions / f"{rev}_{message.replace(' ', '_').replace(':', '')}.py").write_text(REVISION_PY.format(
            message=message, rev=rev, down=down, down_doc=", ".join(parents),
            upgrade="".join(f"    {line}\n" for line in upgrade).rstrip("\n"),
            downgrade="".join(f"    {line}\n" for line in downgrade).rstrip("\n")))
    # Compile once up front: otherwise whichever tool runs first pays for compiling every file.
    compileall.compile_dir(str(folder / "migrations"), quiet=1)
    return folder / "alembic.ini"


def commands() -> dict[str, list[str]]:
    """How each tool is started: the venv's console scripts, or `python -m` for both when either is missing."""
    bindir = Path(sys.executable).parent
    if all((bindir / tool).is_file() for tool in TOOLS):
        return {tool: [str(bindir / tool)] for tool in TOOLS}
    return {"alembic": [sys.executable, "-m", "alembic"], "dbtune": [sys.executable, "-m", "dbtune.cli"]}


@dataclass
class Run:
    wall_s: float | None
    ok: bool
    error: str = ""


def _timed(argv: list[str], cwd: Path, env: dict[str, str], secret: str) -> Run:
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Run(None, False, f"timed out after {RUN_TIMEOUT_S:.0f}s")
    except OSError as exc:
        return Run(None, False, f"could not start {argv[0]}: {exc}")
    wall = time.perf_counter() - started
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return Run(wall, False, f"exit {done.returncode}: " + " | ".join(detail).replace(secret, "***"))
    return Run(wall, True)


def _state_of(dsn: str, revisions: int) -> str:
    """Where the database ended: the head when alembic_version says so and the chain's tables and indexes exist.

    The schema is counted too, so a run that only stamped the version (or skipped steps) is not taken for a run.
    """
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            tables, indexes = conn.execute(
                "SELECT count(*) FILTER (WHERE relkind = 'r' AND relname LIKE 't\\_%'),"
                " count(*) FILTER (WHERE relkind = 'i' AND relname LIKE 'ix\\_t\\_%')"
                " FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone()  # type: ignore[misc]
    except psycopg.errors.UndefinedTable:
        return "base (no alembic_version table)"
    except psycopg.Error as exc:
        return f"unreadable ({str(exc).strip().splitlines()[0]})"
    version = ",".join(r[0] for r in rows) or "base"
    # One table per group of revisions (see _revision), a concurrent and a plain index on each.
    head, expected_tables = head_of(revisions), revisions // GROUP
    if version == head and (tables, indexes) != (expected_tables, 2 * expected_tables):
        return (f"{head} by alembic_version but with {tables} of the {expected_tables} tables and {indexes} of the "
                f"{2 * expected_tables} indexes")
    return version


class Chain:
    """One throwaway server, one generated project, and the two tools' argument lists."""

    def __init__(self, server_dsn: str, folder: Path, ini: Path, password: str, revisions: int) -> None:
        self.admin = server_dsn
        self.revisions = revisions
        self.folder = folder
        self.ini = ini
        self.password = password
        self.cmd = commands()
        # Neither tool should pick a database or project up from the caller's environment.
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DBTUNE_DATABASE_URL", "DATABASE_URL", "DBTUNE_MIGRATIONS", "ALEMBIC_CONFIG")}

    def upgrade_argv(self, tool: str, url: str) -> list[str]:
        if tool == "alembic":
            return [*self.cmd["alembic"], "-c", str(self.ini), "upgrade", "head"]
        return [*self.cmd["dbtune"], "apply", "--migrations", str(self.ini), "--database-url", url, "--quiet"]

    def version(self, tool: str) -> Run:
        return _timed([*self.cmd[tool], "--version"], self.folder, self.env, self.password)

    def help(self, tool: str) -> Run:
        return _timed([*self.cmd[tool], "--help"], self.folder, self.env, self.password)

    def upgrade(self, tool: str, dbname: str, dsn: str, url: str) -> tuple[Run, Run]:
        """A full upgrade from base on a fresh database, then the same command again with nothing to do."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        argv = self.upgrade_argv(tool, url)
        full = _timed(argv, self.folder, self.env, self.password)
        at, head = _state_of(dsn, self.revisions), head_of(self.revisions)
        if full.ok and at != head:
            full = Run(full.wall_s, False, f"exit 0 but the database ended at {at} (expected {head})")
        elif not full.ok:
            full.error += f" (database left at {at})"
        noop = _timed(argv, self.folder, self.env, self.password) if full.ok else Run(None, False, "skipped")
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
        return full, noop


def _timeline(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, object]:
    """One upgrade with each output line stamped as it arrives: both tools log alembic's "Running upgrade
    ... -> rNNN" as each revision starts, so a revision's time is from its line to the next one (the last
    one's includes the process's exit), summed by kind."""
    started = time.perf_counter()
    marks: list[tuple[int, float]] = []
    with subprocess.Popen(argv, cwd=cwd, env={**env, "PYTHONUNBUFFERED": "1"}, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        stalled = threading.Timer(RUN_TIMEOUT_S, proc.kill)  # a hung run must not stall make bench
        stalled.start()
        for line in proc.stdout:
            found = re.search(r"Running upgrade .*-> r(\d+)", line)
            if found:
                marks.append((int(found.group(1)), time.perf_counter()))
        stalled.cancel()
    ended = time.perf_counter()
    if proc.returncode != 0 or not marks:
        return {"ok": False}
    kinds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for (n, at), (_, following) in zip(marks, [*marks[1:], (0, ended)], strict=True):
        kinds[_revision(n)[0]].append(following - at)
    return {"ok": True, "wall_s": _rounded(ended - started), "before_first_revision_s": _rounded(marks[0][1] - started),
            "kind_total_s": {kind: _rounded(sum(t)) for kind, t in kinds.items()},
            "kind_mean_ms": {kind: _rounded(statistics.mean(t) * 1000, 2) if t else None for kind, t in kinds.items()}}


def _median(runs: list[Run]) -> float | None:
    times = [r.wall_s for r in runs if r.ok and r.wall_s is not None]
    return statistics.median(times) if times else None


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def run_chain(rounds: int = 5, server_kind: str = "embedded", revisions: int = REVISIONS) -> dict[str, object]:
    """Measure both tools; failures are recorded in the results, never raised."""
    assert revisions >= GROUP and revisions % GROUP == 0, revisions  # checked by the command line
    results: dict[str, object] = {"revisions": revisions, "rounds": rounds, "commands": COMMANDS}
    runs: dict[str, dict[str, list[Run]]] = {tool: {"upgrade": [], "noop": [], "startup": [], "help": []}
                                             for tool in TOOLS}
    with throwaway_server(server_kind) as server, tempfile.TemporaryDirectory(prefix="dbtune-chain-") as tmp:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            results["server"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        folder = Path(tmp)
        # Plain alembic reads the URL from the ini; the database name there is replaced per run below.
        ini = write_project(folder, "", revisions)
        chain = Chain(server.dsn(), folder, ini, server.password, revisions)

        def one(tool: str, dbname: str, record: bool) -> None:
            dsn = server.dsn(dbname)
            url = "postgresql+psycopg://" + dsn.split("://", 1)[1]
            # Both tools read the same database: alembic from the ini, dbtune from --database-url.
            ini.write_text(ALEMBIC_INI.format(url=url.replace("%", "%%")))
            try:
                full, noop = chain.upgrade(tool, dbname, dsn, url)
            except psycopg.Error as exc:  # the harness's own database handling, not the tool under test
                full, noop = Run(None, False, f"bench could not prepare {dbname}: {exc}"), Run(None, False, "skipped")
            if not full.ok:
                print(f"chain: {tool} upgrade on {dbname} FAILED: {full.error}", flush=True)
            elif not noop.ok:
                print(f"chain: {tool} second run (nothing to do) on {dbname} FAILED: {noop.error}", flush=True)
            if record:
                runs[tool]["upgrade"].append(full)
                runs[tool]["noop"].append(noop)

        # Warm-up, not counted: the OS file cache for the venv's modules, the first connection to the server.
        for tool in TOOLS:
            chain.version(tool)
            one(tool, f"chain_warmup_{tool}", record=False)
        for r in range(1, rounds + 1):
            # Alternate which tool goes first, so neither always runs right after the other's DROP DATABASE.
            order = TOOLS if r % 2 else tuple(reversed(TOOLS))
            for tool in order:
                runs[tool]["startup"].append(chain.version(tool))
                runs[tool]["help"].append(chain.help(tool))
            for tool in order:
                one(tool, f"chain_{r}_{tool}", record=True)
            line = ", ".join(f"{tool} {runs[tool]['upgrade'][-1].wall_s or float('nan'):.2f}s"
                             + ("" if runs[tool]["upgrade"][-1].ok else " FAILED") for tool in TOOLS)
            print(f"chain round {r}/{rounds}: {line}", flush=True)

        # Where the time goes, kind by kind: one more upgrade of each tool on a fresh database, not counted above.
        timelines = {}
        for tool in TOOLS:
            dbname = f"chain_timeline_{tool}"
            dsn = server.dsn(dbname)
            url = "postgresql+psycopg://" + dsn.split("://", 1)[1]
            ini.write_text(ALEMBIC_INI.format(url=url.replace("%", "%%")))
            try:
                with psycopg.connect(server.dsn(), autocommit=True) as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except psycopg.Error as exc:  # the harness's own database handling: recorded, never raised
                print(f"chain: could not prepare {dbname}: {exc}", flush=True)
                timelines[tool] = {"ok": False}
                continue
            timelines[tool] = _timeline(chain.upgrade_argv(tool, url), folder, chain.env)
            if timelines[tool]["ok"] and _state_of(dsn, revisions) != head_of(revisions):
                timelines[tool] = {"ok": False}  # exit 0 without reaching the head: no figures
        results["timeline"] = timelines

    per_tool: dict[str, dict[str, object]] = {}
    for tool in TOOLS:
        full, noop, startup = (_median(runs[tool][k]) for k in ("upgrade", "noop", "startup"))
        per_tool[tool] = {
            "ok_runs": sum(r.ok for r in runs[tool]["upgrade"]),
            "median_s": _rounded(full), "startup_s": _rounded(startup), "noop_s": _rounded(noop),
            "per_revision_ms": _rounded((full - startup) / revisions * 1000) if full and startup else None,
            "per_revision_over_noop_ms": _rounded((full - noop) / revisions * 1000) if full and noop else None,
            "runs": [asdict(r) for r in runs[tool]["upgrade"]],
            "noop_runs": [asdict(r) for r in runs[tool]["noop"]],
            "startup_runs": [asdict(r) for r in runs[tool]["startup"]],
        }
    results["tools"] = per_tool
    a, d = per_tool["alembic"]["median_s"], per_tool["dbtune"]["median_s"]
    results["ratio"] = _rounded(d / a) if isinstance(a, float) and isinstance(d, float) and a > 0 else None
    # The same ratio round by round: each pair ran back to back, so it is less exposed to slow drifts.
    pairs = [dr.wall_s / ar.wall_s
             for ar, dr in zip(runs["alembic"]["upgrade"], runs["dbtune"]["upgrade"], strict=True)
             if ar.ok and dr.ok and ar.wall_s and dr.wall_s]
    results["paired_ratio_median"] = _rounded(statistics.median(pairs)) if pairs else None
    results["target_ratio"] = TARGET_RATIO
    results["help"] = {tool: _rounded(_median(runs[tool]["help"])) for tool in TOOLS}
    return results


def chain_report(results: dict[str, object]) -> str:
    tools = results["tools"]
    assert isinstance(tools, dict)
    lines = [f"Long chain: {results['revisions']} revisions of {len(KINDS)} kinds, {results['rounds']} rounds, "
             f"PostgreSQL {results['server']}, each run a whole process on a fresh database", ""]
    lines.append(tabulate(
        [[COMMANDS[tool], f"{t['ok_runs']}/{results['rounds']}", t["median_s"], t["startup_s"], t["noop_s"],
          t["per_revision_ms"], t["per_revision_over_noop_ms"]] for tool, t in tools.items()],
        headers=["command", "ok", "median s", "start-up s", "no-op s", "ms/revision", "ms/revision over no-op"]))
    ratio = results["ratio"]
    lines.append("")
    if ratio is None:
        lines.append("dbtune/alembic: no ratio (a tool had no successful run; see the failures below)")
    else:
        lines.append(f"dbtune apply / alembic upgrade head: {ratio:.3f}x (target <= {TARGET_RATIO}) "
                     f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}; median of per-round ratios "
                     f"{results['paired_ratio_median']}x")
    lines.append("start-up = `--version`; no-op = the same command again on the database already at head; "
                 "ms/revision = (median - start-up) / revisions")
    # dbtune's CLI imports Alembic and SQLAlchemy only inside its commands, alembic's at start-up: so dbtune's
    # "over start-up" figure carries those imports, and the no-op column is the like-for-like fixed cost.
    lines.append("(`dbtune --version` does not import Alembic/SQLAlchemy, `alembic --version` does: compare the "
                 "per-revision cost over no-op)")
    timeline = results.get("timeline") or {}
    if all(isinstance(t, dict) and t.get("ok") for t in timeline.values()) and timeline:
        lines += ["", tabulate([[kind, *(timeline[tool]["kind_mean_ms"][kind] for tool in TOOLS)] for kind in KINDS],
                               headers=["revision kind", *(f"{tool} ms/revision" for tool in TOOLS)]),
                  "before the first revision: " + ", ".join(f"{tool} {timeline[tool]['before_first_revision_s']} s"
                                                            for tool in TOOLS)]
    for tool, t in tools.items():
        errors = dict.fromkeys(r["error"] for r in (*t["runs"], *t["noop_runs"], *t["startup_runs"])
                               if not r["ok"] and r["error"] != "skipped")
        lines += [f"{tool} FAILED: {error}" for error in errors]
    return "\n".join(lines)
