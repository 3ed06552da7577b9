"""Locks that hold across processes: one publisher at a time, one operation per dataset.

Embedded profile: a flock on a file of the home. PostgreSQL profile (TAZA_DATABASE_URL): an
advisory lock in the database, so nodes that share no disk exclude each other too. Either way
the lock goes with its holder: the OS drops a dead process's flock, and PostgreSQL ends a dead
client's session and with it the lock.

The advisory lock is transaction-scoped (`pg_advisory_xact_lock`) and held by an open
transaction on a connection of its own: it then also works behind pgbouncer in transaction mode,
which keeps a server connection for a transaction's whole length. Keep
`idle_in_transaction_session_timeout` above the longest publish.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path

from catalog.postgis import database

_NAMESPACE = b"taza-koom lock "


class LockHeld(Exception):
    """Another holder has the lock (only raised when not waiting)."""


@contextlib.contextmanager
def held_lock(path: Path, name: str, wait: bool, database_url: str | None) -> Iterator[None]:
    """Hold the lock `name` (the file `path` in the embedded profile); LockHeld at once when
    another holder has it and `wait` is False."""
    lock = _advisory_lock(database_url, name, wait) if database_url else _file_lock(path, wait)
    with lock:
        yield


@contextlib.contextmanager
def _file_lock(path: Path, wait: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Each call opens its own file description, so threads of one process exclude each other.
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as err:
            raise LockHeld(str(path)) from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(url: str, name: str, wait: bool) -> Iterator[None]:
    key = advisory_key(name)
    # A connection of its own: one of the pool would go back to it still holding the lock.
    with database.connect(url) as connection, connection.transaction():
        if wait:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        elif not connection.execute("SELECT pg_try_advisory_xact_lock(%s)",
                                    (key,)).fetchone()[0]:
            raise LockHeld(name)
        yield


def advisory_key(name: str) -> int:
    """The 64-bit advisory lock key of a lock's name (a hash: names are dataset ids)."""
    digest = hashlib.blake2b(_NAMESPACE + name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
