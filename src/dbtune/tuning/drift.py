"""A live server's drift from postgresql.conf rendered for its machine (`dbtune config diff`).

``diff`` compares ``pg_settings`` with the rendered values, each in the setting's own
unit; ``drift`` sizes for this machine only when the server provably runs on it
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
from .pgconf import KB_PER, MAX_VERSION, MIN_VERSION, Machine, format_kb, machine, render, rendered_settings

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
