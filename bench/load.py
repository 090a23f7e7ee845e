"""The application's side of a benchmark: sessions that run one statement in a loop and time each.

A writer inserts single orders while indexes build; readers query a
materialized view while it refreshes.  Their latencies are what a DBA's users
feel, so they are the figures the targets are set on.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import psycopg


def latency_summary(latencies_ms: list[float], errors: int, count_name: str) -> dict[str, float]:
    data = sorted(latencies_ms)
    if not data:
        return {count_name: 0, "max_ms": 0.0, "p99_ms": 0.0, "median_ms": 0.0, "errors": errors}
    return {count_name: len(data), "max_ms": round(data[-1], 2),
            "p99_ms": round(data[min(len(data) - 1, int(len(data) * 0.99))], 2),
            "median_ms": round(data[len(data) // 2], 2), "errors": errors}


@dataclass
class Loop:
    """One session running ``statement(conn, n)`` at a steady rate (or back to back at rate 0)."""

    dsn: str
    rate: float
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def statement(self, conn: psycopg.Connection, n: int) -> None:
        raise NotImplementedError

    def prepare(self, conn: psycopg.Connection) -> None:
        """Anything read once before the loop starts."""

    def __enter__(self) -> Loop:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(30)
        time.sleep(0.5)  # warmed up before the operation starts
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _run(self, ready: threading.Event) -> None:
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        with psycopg.connect(self.dsn, autocommit=True, application_name=self.name) as conn:
            self.prepare(conn)
            ready.set()
            n = 0
            while not self._stop.is_set():
                n += 1
                started = time.perf_counter()
                try:
                    self.statement(conn, n)
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                elapsed = time.perf_counter() - started
                self.latencies_ms.append(elapsed * 1000)
                time.sleep(max(0.0, interval - elapsed))

    def summary(self, count_name: str = "statements") -> dict[str, float]:
        return latency_summary(self.latencies_ms, len(self.errors), count_name)


@dataclass
class Writer(Loop):
    """Inserts one order at a time, timing every insert."""

    rate: float = 500.0
    name: str = "bench-writer"
    _ids: tuple[int, int] = (1, 1)

    def prepare(self, conn: psycopg.Connection) -> None:
        self._ids = (conn.execute("SELECT max(id) FROM retailers").fetchone()[0],  # type: ignore[index]
                     conn.execute("SELECT max(id) FROM vendors").fetchone()[0])  # type: ignore[index]

    def statement(self, conn: psycopg.Connection, n: int) -> None:
        retailers, vendors = self._ids
        conn.execute(
            "INSERT INTO orders (order_number, retailer_id, vendor_id, status, payment_status,"
            " total, due_amount) VALUES (%s, %s, %s, 'PENDING', 'UNPAID', 120.50, 120.50)",
            [f"BENCH-{os.getpid()}-{time.monotonic_ns()}", 1 + n % retailers, 1 + n % vendors])

    def summary(self, count_name: str = "inserts") -> dict[str, float]:
        return super().summary(count_name)


@dataclass
class Reader(Loop):
    """Runs one read-only query, timing every run (a dashboard polling a summary)."""

    query: str = "SELECT 1"
    rate: float = 100.0
    name: str = "bench-reader"

    def statement(self, conn: psycopg.Connection, n: int) -> None:
        conn.execute(self.query).fetchall()  # type: ignore[arg-type]

    def summary(self, count_name: str = "reads") -> dict[str, float]:
        return super().summary(count_name)
