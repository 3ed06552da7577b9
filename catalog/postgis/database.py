"""Connection pools, one per database URL and worker process.

A gunicorn worker is a fork: a pool made before the fork would share sockets between processes,
so pools are keyed by process id and made on first use. Connections carry no session state the
queries rely on (the SQL functions pin their own time zone) and never keep server-side prepared
statements (`prepare_threshold=None`), so a pgbouncer in transaction mode can sit in between.
Each connection is checked when it is taken from the pool, so a database restart costs a
reconnection, not a failed request: by a zero-timeout poll of its socket, which a restart, a
crashed backend or a pgbouncer closing it makes readable (its FATAL message, then end of
file); only then, or when it is not idle, by psycopg_pool's round trip. A pool that found no
connection in time (the database was down) is closed and made anew on the next request: the
pool's own reconnection backs off exponentially, a new pool connects at once. Threads that
were waiting on the closed pool wait on the new one, so every caller hears PoolTimeout, never
psycopg_pool's PoolClosed.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from catalog import settings
from catalog.core.errors import first_line

CONNECT_TIMEOUT_S = 10

_POOLS: dict[tuple[str, int], ConnectionPool] = {}
_LOCK = threading.Lock()


class _FirstLineOfEachAttempt(logging.Filter):
    """psycopg_pool warns of each failed connection attempt with libpq's hints on more lines
    ("Is the server running on that host...?", once per address tried): while a database is
    down, a log line per attempt is enough (taza's own line says what could not be done)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "\n" in text:
            record.msg, record.args = text.split("\n", 1)[0], ()
        return True


logging.getLogger("psycopg.pool").addFilter(_FirstLineOfEachAttempt())


class DatabaseDownInOneLine(logging.Filter):
    """For a service's log handler: a record whose exception is (or was caused by) a database
    that cannot be reached is said in one line, the message and the connection's error, not a
    traceback. Libraries log one per retry (procrastinate's worker, its listener, its stalled
    job checks): while the database is down the traceback says nothing new each time. Other
    errors keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        unreachable = _unreachable_in(record.exc_info[1] if record.exc_info else None)
        if unreachable is not None:
            record.msg, record.args = f"{record.getMessage()}: {first_line(unreachable)}", ()
            record.exc_info, record.exc_text = None, None
        return True


def _unreachable_in(err: BaseException | None) -> psycopg.OperationalError | None:
    """The error in `err`'s chain of causes that says the database cannot be reached: no
    connection came (the client's own errors and PoolTimeout carry no SQLSTATE), the
    connection failed (class 08) or the server is shutting down (57P); not a statement the
    server cancelled or refused, whose traceback is worth its lines."""
    seen = 0
    while err is not None and seen < 10:  # a chain of causes, bounded
        if isinstance(err, psycopg.OperationalError) and (
                err.sqlstate is None or err.sqlstate.startswith(("08", "57P"))):
            return err
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def check_if_in_doubt(conn: psycopg.Connection) -> None:
    """The pool's check of a connection it hands out: raises when the connection is gone.

    psycopg_pool's own check is a round trip to the server: half of a bbox page's round trips
    once the page is one statement. A healthy idle connection has nothing to read: the server
    writes to it unasked only to end it (a restart, a terminated backend: FATAL, then end of
    file) or to say a setting changed. So a poll of its socket, without waiting, decides;
    the round trip is made only for a connection with something to read or not idle."""
    if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE \
            or _readable(conn.fileno()):
        ConnectionPool.check_connection(conn)


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


class DatabaseError(RuntimeError):
    """The database cannot be reached or refused a statement."""


def pool(url: str) -> ConnectionPool:
    """This process's pool of `url`: TAZA_DATABASE_POOL_SIZE connections at most, a request
    waiting TAZA_DATABASE_WAIT_SECONDS at most for one."""
    key = (url, os.getpid())
    found = _POOLS.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _POOLS.get(key)
        if found is None:
            found = ConnectionPool(
                url, min_size=1, max_size=settings.database_pool_size(), open=True,
                timeout=settings.database_wait_seconds(), check=check_if_in_doubt,
                name=f"taza-{os.getpid()}",
                kwargs={"autocommit": True, "prepare_threshold": None,
                        "connect_timeout": CONNECT_TIMEOUT_S,
                        "application_name": "taza-koom"})
            _POOLS[key] = found
    return found


@contextmanager
def connection(url: str) -> Iterator[psycopg.Connection]:
    """A connection of this process's pool of `url`; PoolTimeout when none came in time."""
    current, conn = _take(url)
    try:
        with conn:
            yield conn
    finally:
        current.putconn(conn)


def _take(url: str) -> tuple[ConnectionPool, psycopg.Connection]:
    current = pool(url)
    try:
        return current, _wait_for(url, current)
    except PoolClosed:
        # Another thread waited in vain on this pool and closed it while this one waited too
        # (the database is down, or was): wait on the pool that replaced it, as a new request.
        current = pool(url)
        try:
            return current, _wait_for(url, current)
        except PoolClosed as err:
            raise PoolTimeout(f"no connection to the database ({err})") from err


def _wait_for(url: str, current: ConnectionPool) -> psycopg.Connection:
    try:
        return current.getconn()
    except PoolTimeout:
        _discard(url, current)
        raise


def _discard(url: str, stale: ConnectionPool) -> None:
    with _LOCK:
        if _POOLS.get((url, os.getpid())) is stale:
            del _POOLS[(url, os.getpid())]
    # Its threads may be in a connection attempt (up to CONNECT_TIMEOUT_S): wait for them
    # aside, not in the request, and without the pool's warning of threads left running.
    threading.Thread(target=stale.close, kwargs={"timeout": CONNECT_TIMEOUT_S + 1},
                     name=f"{stale.name}-close", daemon=True).start()


def connect(url: str) -> psycopg.Connection:
    """A connection of its own (for publishing: one transaction per loaded version)."""
    try:
        return psycopg.connect(url, autocommit=True, prepare_threshold=None,
                               connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="taza-koom publish")
    except psycopg.OperationalError as err:
        raise DatabaseError(f"cannot connect to the database: {first_line(err)}") from err


def close_pools() -> None:
    """Close this process's pools (tests, shutdown)."""
    with _LOCK:
        for key in [k for k in _POOLS if k[1] == os.getpid()]:
            _POOLS.pop(key).close()



__all__ = ["DatabaseDownInOneLine", "DatabaseError", "PoolTimeout", "check_if_in_doubt",
           "close_pools", "connect", "connection", "pool"]
