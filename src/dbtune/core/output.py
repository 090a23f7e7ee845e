"""All of dbtune's output goes through one Output object.

Library functions take an Output and never print; the CLI builds one from its
flags (``--quiet``, ``--no-progress``, ``--format``).  Messages go to stdout,
warnings and errors to stderr, so cron can mail only what matters.  Progress
redraws one line on a terminal and falls back to plain log lines elsewhere.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

TABLE_WIDTH = 120  # report tables fit a terminal this wide: long text is shortened, never wrapped


@dataclass
class Output:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    show_progress: bool = True
    # Seconds between plain progress lines when not on a terminal.
    log_interval: float = 10.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last_line: dict[str, float] = field(default_factory=dict, repr=False)
    _bar_open: bool = field(default=False, repr=False)
    _bars: dict[str, str] = field(default_factory=dict, repr=False)  # live builds, on a terminal

    @property
    def is_tty(self) -> bool:
        return bool(getattr(self.stdout, "isatty", lambda: False)())

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            if self._bar_open:
                self.stdout.write("\r\033[K")
                self._bar_open = False
            stream.write(text + "\n")
            stream.flush()
            self._redraw()

    def _redraw(self) -> None:
        """The live builds on one line, under whatever was printed last (terminal only)."""
        if not self._bars:
            return
        width = shutil.get_terminal_size((120, 24)).columns - 1
        self.stdout.write("\r\033[K" + " | ".join(self._bars.values())[:width])
        self.stdout.flush()
        self._bar_open = True

    def info(self, text: str) -> None:
        """A normal message; silenced by --quiet."""
        if not self.quiet:
            self._write(self.stdout, text)

    def result(self, text: str) -> None:
        """What the command was asked for (a URL, a table); never silenced."""
        self._write(self.stdout, text)

    def warn(self, text: str) -> None:
        self._write(self.stderr, f"warning: {text}")

    def grid(self, rows: list[dict[str, Any]], columns: list[Column], fmt: str = "table",
             width: int | None = TABLE_WIDTH) -> None:
        """A table in the one style every command shares (see render_grid)."""
        self.result(render_grid(rows, columns, fmt, width))

    def json(self, data: Any) -> None:
        self.result(json.dumps(data, indent=2, default=str))

    def progress(self, key: str, text: str, *, final: bool = False) -> None:
        """One build's progress: redrawn in place on a terminal, logged now and then elsewhere."""
        if self.quiet or not self.show_progress:
            return
        if self.is_tty:
            if final:
                with self._lock:
                    self._bars.pop(key, None)
                self._write(self.stdout, text)
            else:
                with self._lock:
                    self._bars[key] = text
                    self._redraw()
            return
        now = time.monotonic()
        if final or key not in self._last_line or now - self._last_line[key] >= self.log_interval:
            self._last_line[key] = now
            self._write(self.stdout, text)


def bar(done: float, total: float, width: int = 24) -> str:
    if total <= 0:
        return "[" + " " * width + "]"
    filled = int(width * min(done / total, 1.0))
    return "[" + "#" * filled + "." * (width - filled) + "]"


# -- one table style for every command -----------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of a table: how to show its values, and how much room it may take."""

    key: str
    header: str
    kind: str = "text"  # text, sql (one line, shortened), int, float, bytes, ms, pct, ratio, when
    max_width: int | None = None

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "float", "bytes", "ms", "pct", "ratio")


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def cell(value: Any, column: Column) -> str:
    """A value as the table shows it: units on numbers, one line for text."""
    if value is None:
        return "-"
    kind = column.kind
    if kind == "bytes":
        return human_bytes(float(value))
    if kind == "ms":
        return f"{float(value):,.3f} ms" if float(value) < 10 else f"{float(value):,.1f} ms"
    if kind == "pct":
        return f"{float(value):.1f}%"
    if kind == "ratio":
        return f"{float(value):.4f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "float":
        return f"{float(value):,.2f}"
    if kind == "when":
        return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split()) if kind == "sql" else str(value)


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 1)] + "…"


def render_grid(rows: list[dict[str, Any]], columns: list[Column], fmt: str = "table",
                width: int | None = TABLE_WIDTH) -> str:
    """Rows as a table that fits ``width`` columns (long text shortened, never wrapped), or csv/markdown.

    Numbers are right-aligned with their units; text columns give up room, widest first.  With
    ``width=None`` nothing is shortened: a URL, a path or a server's message is shown whole.
    Columns with no header make a table without a header line (name and value pairs).
    """
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.header for c in columns])
        for row in rows:
            writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in columns])
        return buffer.getvalue().rstrip("\n")
    cells = [[cell(row.get(c.key), c) for c in columns] for row in rows]
    for i, column in enumerate(columns):
        if column.max_width:
            for line in cells:
                line[i] = shorten(line[i], column.max_width)
    headers = [c.header for c in columns] if any(c.header for c in columns) else []
    if width is not None:
        _fit(cells, columns, width, bool(headers))
    from tabulate import tabulate  # loaded when a table is printed, not at every start-up

    # tabulate 0.9.0 raises IndexError for colalign on a table with no rows; there is nothing to align.
    align = ["right" if c.numeric else "left" for c in columns] if cells else None
    return tabulate(cells, headers=headers, tablefmt="github" if fmt == "markdown" else "simple",
                    colalign=align, disable_numparse=True)


def _fit(cells: list[list[str]], columns: list[Column], width: int, headed: bool) -> None:
    """Shorten the widest text columns until the table fits ``width``."""
    # tabulate pads a header by 2 (MIN_PADDING): a column is at least its header + 2 wide.
    pad = 2 if headed else 0
    widths = [max([len(c.header) + pad] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    room = width - 2 * (len(columns) - 1)
    shrinkable = [i for i, c in enumerate(columns) if not c.numeric]
    while sum(widths) > room and shrinkable:
        i = max(shrinkable, key=lambda k: widths[k])
        floor = max(len(columns[i].header) + 2, 12)
        if widths[i] <= floor:
            shrinkable.remove(i)
            continue
        widths[i] = max(floor, widths[i] - (sum(widths) - room))
        for line in cells:
            line[i] = shorten(line[i], widths[i])
