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

from tabulate import tabulate


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

    def table(self, rows: list[list[Any]] | list[dict[str, Any]], headers: Any = "keys") -> None:
        self.result(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))

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
