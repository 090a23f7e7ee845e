"""Long-chain benchmark: `dbtune apply` against plain `alembic upgrade head` on 300 small revisions.

A team's history is mostly small transactional steps, so what dbtune adds per
revision (hooks, logging, bookkeeping) matters more there than on a few index
builds.  This generates a standard Alembic project (the `alembic init`
env.py, a linear chain r001..r300 of small DDL steps, no concurrent index
builds) and runs both tools on it as whole processes, on the same throwaway
server, each on a fresh database, through the same ini and the same driver
(psycopg 3).  The two tools alternate within each round so that machine noise
hits both.  Process start-up alone (`--version`) and a run with nothing to do
(already at head) are recorded too, to split the fixed cost from the cost per
revision.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from tabulate import tabulate

from dbtune.servers.throwaway import throwaway_server

REVISIONS = 300
HEAD = f"r{REVISIONS:03d}"
EXPECTED_TABLES = REVISIONS // 5  # one per cycle of five steps (see _step)
EXPECTED_INDEXES = REVISIONS // 10
TOOLS = ("alembic", "dbtune")
TARGET_RATIO = 1.2
# Long enough for a slow machine, short enough that a hung run does not stall `make bench`.
RUN_TIMEOUT_S = 300.0
COMMANDS = {"alembic": "alembic -c alembic.ini upgrade head",
            "dbtune": "dbtune apply --migrations alembic.ini --database-url URL --quiet"}

# The env.py that `alembic init` writes (generic template), unchanged in substance: online mode,
# engine_from_config over the ini's [alembic] section (so sqlalchemy.url, which dbtune overrides with its
# --database-url), NullPool, target_metadata=None, one transaction for the whole upgrade.
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
            connection=connection, target_metadata=target_metadata
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


revision: str = "{rev}"
down_revision: Union[str, None] = {down}
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def _step(n: int) -> tuple[str, list[str], list[str]]:
    """Revision n's message, upgrade and downgrade bodies.

    A cycle of five small steps on the table created at the start of the cycle; every 10th revision builds a
    (plain, transactional) index on that still-empty table instead.
    """
    table = f"t_{n - (n - 1) % 5:03d}"
    kind = (n - 1) % 5
    if kind == 0:
        return (f"create table {table}",
                [f'op.create_table("{table}", sa.Column("id", sa.Integer(), primary_key=True),'
                 f' sa.Column("v", sa.Text()))'],
                [f'op.drop_table("{table}")'])
    if kind == 1:
        return (f"add {table}.note",
                [f'op.add_column("{table}", sa.Column("note", sa.Text(), nullable=True))'],
                [f'op.drop_column("{table}", "note")'])
    if kind == 2:
        return (f"comment on {table}",
                [f'op.execute("COMMENT ON TABLE {table} IS \'bench table {n}\'")'],
                [f'op.execute("COMMENT ON TABLE {table} IS NULL")'])
    if kind == 3:
        return (f"backfill {table}.note",
                [f'op.execute("UPDATE {table} SET note = v WHERE note IS NULL")'],
                ["pass"])
    if n % 10 == 0:
        return (f"index {table}.v",
                [f'op.create_index("ix_{table}_v", "{table}", ["v"])'],
                [f'op.drop_index("ix_{table}_v", table_name="{table}")'])
    return (f"default for {table}.v",
            [f'op.alter_column("{table}", "v", server_default=sa.text("\'\'"))'],
            [f'op.alter_column("{table}", "v", server_default=None)'])


def write_project(folder: Path, url: str) -> Path:
    """A standard Alembic project in ``folder``: alembic.ini, migrations/env.py, 300 revisions. Returns the ini."""
    versions = folder / "migrations" / "versions"
    versions.mkdir(parents=True)
    (folder / "migrations" / "env.py").write_text(ENV_PY)
    # ConfigParser interpolation: a literal % in the URL must be doubled.
    (folder / "alembic.ini").write_text(ALEMBIC_INI.format(url=url.replace("%", "%%")))
    for n in range(1, REVISIONS + 1):
        rev, down = f"r{n:03d}", (f"r{n - 1:03d}" if n > 1 else None)
        message, upgrade, downgrade = _step(n)
        (versions / f"{rev}_{message.replace(' ', '_').replace('.', '_')}.py").write_text(REVISION_PY.format(
            message=message, rev=rev, down=f"\"{down}\"" if down else "None", down_doc=down or "",
            upgrade="".join(f"    {line}\n" for line in upgrade).rstrip("\n"),
            downgrade="".join(f"    {line}\n" for line in downgrade).rstrip("\n")))
    # Compile once up front: otherwise whichever tool runs first pays for compiling 300 files.
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


def _state_of(dsn: str) -> str:
    """Where the database ended: HEAD when alembic_version says so and the chain's tables and indexes exist.

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
    if version == HEAD and (tables, indexes) != (EXPECTED_TABLES, EXPECTED_INDEXES):
        return (f"{HEAD} by alembic_version but with {tables} of the {EXPECTED_TABLES} tables and {indexes} of the "
                f"{EXPECTED_INDEXES} indexes")
    return version


class Chain:
    """One throwaway server, one generated project, and the two tools' argument lists."""

    def __init__(self, server_dsn: str, folder: Path, ini: Path, password: str) -> None:
        self.admin = server_dsn
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
        at = _state_of(dsn)
        if full.ok and at != HEAD:
            full = Run(full.wall_s, False, f"exit 0 but the database ended at {at} (expected {HEAD})")
        elif not full.ok:
            full.error += f" (database left at {at})"
        noop = _timed(argv, self.folder, self.env, self.password) if full.ok else Run(None, False, "skipped")
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
        return full, noop


def _median(runs: list[Run]) -> float | None:
    times = [r.wall_s for r in runs if r.ok and r.wall_s is not None]
    return statistics.median(times) if times else None


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def run_chain(rounds: int = 5, server_kind: str = "embedded") -> dict[str, object]:
    """Measure both tools; failures are recorded in the results, never raised."""
    results: dict[str, object] = {"revisions": REVISIONS, "rounds": rounds, "commands": COMMANDS}
    runs: dict[str, dict[str, list[Run]]] = {tool: {"upgrade": [], "noop": [], "startup": [], "help": []}
                                             for tool in TOOLS}
    with throwaway_server(server_kind) as server, tempfile.TemporaryDirectory(prefix="dbtune-chain-") as tmp:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            results["server"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        folder = Path(tmp)
        # Plain alembic reads the URL from the ini; the database name there is replaced per run below.
        ini = write_project(folder, "")
        chain = Chain(server.dsn(), folder, ini, server.password)

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

    per_tool: dict[str, dict[str, object]] = {}
    for tool in TOOLS:
        full, noop, startup = (_median(runs[tool][k]) for k in ("upgrade", "noop", "startup"))
        per_tool[tool] = {
            "ok_runs": sum(r.ok for r in runs[tool]["upgrade"]),
            "median_s": _rounded(full), "startup_s": _rounded(startup), "noop_s": _rounded(noop),
            "per_revision_ms": _rounded((full - startup) / REVISIONS * 1000) if full and startup else None,
            "per_revision_over_noop_ms": _rounded((full - noop) / REVISIONS * 1000) if full and noop else None,
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
    lines = [f"Long chain: {results['revisions']} small revisions, {results['rounds']} rounds, "
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
    for tool, t in tools.items():
        errors = dict.fromkeys(r["error"] for r in (*t["runs"], *t["noop_runs"], *t["startup_runs"])
                               if not r["ok"] and r["error"] != "skipped")
        lines += [f"{tool} FAILED: {error}" for error in errors]
    return "\n".join(lines)
