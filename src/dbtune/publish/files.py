"""A result written to a file atomically: a reader (node_exporter's textfile collector, a web
server) sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import ConfigError
from ..core.output import Output


def check_writable(path: Path) -> None:
    """Refuse a destination before any work is done, not after a long report."""
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"--output {path} is a directory: name a file in it")
    if not directory.is_dir():
        raise ConfigError(f"--output {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {path}: this user may not create files in {directory}")


def write_atomically(path: Path, text: str) -> None:
    """A temporary file in the same directory (a rename is atomic only within one file system),
    written and fsynced, then renamed over ``path``; the directory fsynced so the rename survives a crash."""
    check_writable(path)
    directory = path.parent if str(path.parent) else Path(".")
    # A leading dot: the textfile collector reads only *.prom, and a web server's listing hides it.
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file 0600; the collector or web server usually runs as another user.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def destination(path: Path | None, out: Output) -> Iterator[Output]:
    """The writer a command renders its result through: ``out`` itself, or (with ``--output``) one that
    collects the result and writes it to ``path`` atomically once the command has succeeded.  A failed
    command leaves the file as it was, so a collector keeps the last good metrics."""
    if path is None:
        yield out
        return
    check_writable(path)
    buffer = io.StringIO()
    yield Output(stdout=buffer, stderr=out.stderr, quiet=out.quiet, show_progress=False)
    write_atomically(path, buffer.getvalue())
