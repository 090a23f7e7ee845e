"""Is a connection pooler between dbtune and PostgreSQL, and may dbtune work through it?

Through a pooler in *transaction* (or *statement*) pooling, one client connection
is served by whichever server connection is free for each transaction: a session
setting (``lock_timeout``) stays behind on a server connection the application
gets next, a session advisory lock protects nothing, and ``pg_backend_pid()``
names a different backend from one statement to the next.  dbtune refuses such a
connection before it changes anything.  Through *session* pooling a client keeps
its server connection until it disconnects, as on a direct connection; dbtune
works, asking the server for its pids and resetting what it set before it hands
the connection back (see ``db.Connection.close``).

How it is told, without a privilege or the pooler's console:

* A pooler answers the client's start-up with a cancel key of its own, so the
  backend pid libpq was given (``conn.info.backend_pid``) is not the one the
  server reports (``pg_backend_pid()``).  Equal: a direct connection.
* Then a second client opens a transaction.  Under transaction pooling the
  first client's server connection went back to the pool when its statement
  ended, and PgBouncer hands out the most recently used one first
  (``server_round_robin = 0``, the default): the second client gets the same
  backend.  Under session pooling it never does.  While the second client holds
  its transaction, the first client asks again a few times: under transaction
  pooling with round-robin servers its pid changes; under session pooling never.
* Statement pooling refuses the second client's transaction outright.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

DIRECT, SESSION, TRANSACTION, STATEMENT = "direct", "session", "transaction", "statement"

# Pooling modes found per endpoint (host, port, database, user), once per process.
_MODES: dict[tuple[Any, ...], str] = {}


def _key(kwargs: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(str(kwargs.get(k, "")) for k in ("host", "hostaddr", "port", "dbname", "user", "service"))


def _pid(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]


def mode(conn: psycopg.Connection, kwargs: dict[str, Any]) -> tuple[str, int]:
    """(pooling mode, the server's pid for ``conn``) for a fresh autocommit connection that has set
    nothing yet; ``kwargs`` open another client connection to the same endpoint (for the probe)."""
    server_pid = _pid(conn)
    if server_pid == conn.info.backend_pid:
        return DIRECT, server_pid
    key = _key(kwargs)
    if key not in _MODES:
        _MODES[key] = _probe(conn, server_pid, kwargs)
    return _MODES[key], server_pid


# How long the probe's second client may wait for a server connection of the pool.
PROBE_WAIT_S = 10.0


def _probe(first: psycopg.Connection, first_pid: int, kwargs: dict[str, Any]) -> str:
    # The probe's own client sets nothing and only reads: whatever pool mode, it leaves no trace.
    kwargs = {**kwargs, "application_name": "dbtune pooler probe"}
    with psycopg.connect(autocommit=False, **kwargs) as second:
        # A full pool makes a client wait for a server (PgBouncer's query_wait_timeout is two
        # minutes, and it ignores a cancel request from a client still waiting): bound the wait
        # here by asking from a thread, and closing the connection under it when time is up.
        answer: list[int | psycopg.Error] = []

        def ask() -> None:
            try:
                answer.append(_pid(second))  # psycopg opens a transaction first
            except psycopg.Error as exc:
                answer.append(exc)

        thread = threading.Thread(target=ask, name="dbtune-pooler-probe", daemon=True)
        thread.start()
        thread.join(PROBE_WAIT_S)
        if not answer:
            second.close()
            thread.join(1.0)
            raise PoolBusy(f"a connection pooler is in front, and its pool had no free server connection "
                           f"within {PROBE_WAIT_S:g}s to tell its pooling mode")
        if isinstance(answer[0], psycopg.Error):
            # Every pooler error is 08P01 (protocol violation): only the pooler's own text tells
            # statement pooling apart from a pool that timed out the wait itself.
            if "statement pooling" in str(answer[0]):
                return STATEMENT
            raise PoolBusy(f"a connection pooler is in front, and it refused the probe that tells its pooling "
                           f"mode ({_first_line(answer[0])})")
        second_pid = answer[0]
        if second_pid == first_pid:
            return TRANSACTION
        # Under transaction pooling with servers handed out in turn, the first client's next
        # statements land on other servers; under session pooling never.
        for _ in range(5):
            if _pid(first) != first_pid:
                return TRANSACTION
        second.rollback()
    return SESSION


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PoolBusy(Exception):
    """The pooler's pool was full while the probe waited: the mode cannot be told now."""


def refusal(mode: str, where: str) -> str:
    """One line for a connection dbtune will not work through."""
    return (f"{where} goes through a connection pooler in {mode} pooling mode (PgBouncer's pool_mode = {mode}, "
            "or the like), where dbtune's session settings would stay behind on the application's server "
            "connections and its run lock would protect nothing: nothing was changed. Connect directly to "
            "PostgreSQL (the server's own host and port), or through a pool in session mode")


def forget() -> None:
    """Probe every endpoint again (a pooler's configuration can change between runs of one process)."""
    _MODES.clear()
