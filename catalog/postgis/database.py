"""Connection pools, one per database URL and worker process.

A gunicorn worker is a fork: a pool made before the fork would share sockets between processes,
so pools are keyed by process id and made on first use. Connections carry no session state the
queries rely on (the SQL functions pin their own time zone) and never keep server-side prepared
statements (`prepare_threshold=None`), so a pgbouncer in transaction mode can sit in between.
Each connection is checked when it is taken from the pool, so a database restart costs a
reconnection, not a failed request. A pool that found no connection in time (the database was
down) is closed and made anew on the next request: the pool's own reconnection backs off
exponentially, a new pool connects at once. Threads that were waiting on the closed pool wait
on the new one, so every caller hears PoolTimeout, never psycopg_pool's PoolClosed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from catalog import settings
from catalog.core.errors import first_line

CONNECT_TIMEOUT_S = 10

_POOLS: dict[tuple[str, int], ConnectionPool] = {}
_LOCK = threading.Lock()


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
                timeout=settings.database_wait_seconds(), check=ConnectionPool.check_connection,
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
    stale.close(timeout=0)


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



__all__ = ["DatabaseError", "PoolTimeout", "close_pools", "connect", "connection", "pool"]
