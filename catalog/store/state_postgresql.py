"""The catalog's state (the audit log and the stewards' tables) in PostgreSQL (TAZA_DATABASE_URL).

The embedded profile keeps that state in TAZA_HOME/stewards/stewards.sqlite. With a database
URL the same tables live in the schema `taza_state` of that database, so several app nodes on
several machines share accounts, sessions, drafts and one audit chain.

The code above writes its SQL once, in the subset both engines speak (`?` and `:name`
parameters, `ON CONFLICT DO NOTHING`, `RETURNING`); `StateConnection` binds those parameters
the way psycopg expects (values always bound, never spliced) and answers rows that read like
sqlite3.Row (by position, by name, `dict(row)`).

Writers take one transaction-scoped advisory lock, as SQLite's `BEGIN IMMEDIATE` takes its
write lock: read-then-write units (the next audit seq, one open draft per dataset) stay
serial across processes and machines. The lock is released at COMMIT or ROLLBACK, so it is
safe behind pgbouncer in transaction mode.

The schema is made and upgraded by versioned migrations, recorded per component in
`taza_state.migrations`; each component (the audit log here, the stewards' tables in
catalog.stewards.db_postgresql) lists its own steps, run once, in order, under a lock of their
own (MIGRATION_LOCK).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from catalog.postgis import database

SCHEMA = "taza_state"
# pg_advisory_xact_lock key of the state's writers ("taza" in ASCII).
WRITE_LOCK = 0x74617A61
# The key of the schema's migrations ("tazm"): not the writers', since a process's first unit
# on a component's tables may run inside another unit that holds the writers' lock (a steward's
# write that reads the release records: drafts.create_dataset), and waiting there for the
# writers' lock would wait for itself. Migrations only need each other excluded: a step on an
# existing table takes that table's own lock.
MIGRATION_LOCK = 0x74617A6D

_PARAMETER = re.compile(r"\?|(?<![:\w]):([A-Za-z_]\w*)")
_MIGRATED: set[tuple[str, str]] = set()


class Row:
    """One result row, read by position, by column name or as a mapping (like sqlite3.Row)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: Sequence[str], values: Sequence):
        self._names, self._values = tuple(names), tuple(values)

    def __getitem__(self, key: int | str):
        if isinstance(key, str):
            return self._values[self._names.index(key)]
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


class StateCursor:
    """The result of one statement: rows, and `lastrowid` for an INSERT into a table with an
    `id` (or `rowid`) column."""

    def __init__(self, cursor: psycopg.Cursor, added_returning: bool):
        self._cursor, self.lastrowid, self._rows = cursor, None, None
        self.rowcount = cursor.rowcount
        if added_returning:
            returned = self._fetch()
            if returned:
                row = returned[0]
                names = row.keys()
                self.lastrowid = row["id"] if "id" in names else row["rowid"] \
                    if "rowid" in names else None
            self._rows = []

    def _fetch(self) -> list[Row]:
        if self._cursor.description is None:
            return []
        names = [column.name for column in self._cursor.description]
        return [Row(names, values) for values in self._cursor.fetchall()]

    def fetchall(self) -> list[Row]:
        if self._rows is None:
            self._rows = self._fetch()
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> Row | None:
        if self._rows is None:
            self._rows = self._fetch()
        return self._rows.pop(0) if self._rows else None

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class StateConnection:
    """A unit of work on the state schema that takes the statements written for sqlite3."""

    def __init__(self, connection: psycopg.Connection, home: Path):
        self.connection, self.home = connection, Path(home)

    def execute(self, statement: str, parameters: Sequence | dict = ()) -> StateCursor:
        text, added_returning = translate(statement)
        cursor = self.connection.cursor()
        cursor.execute(text, parameters if parameters else None)
        return StateCursor(cursor, added_returning)

    def executemany(self, statement: str, rows: Sequence) -> None:
        text, _ = translate(statement, returning=False)
        self.connection.cursor().executemany(text, rows)


def translate(statement: str, returning: bool = True) -> tuple[str, bool]:
    """sqlite3's placeholders as psycopg's (`?` -> `%s`, `:name` -> `%(name)s`); an INSERT
    without RETURNING returns its row, so the caller can read `lastrowid`. The statements are
    the program's own constants: parameters only ever carry values."""
    text = _PARAMETER.sub(lambda match: f"%({match.group(1)})s" if match.group(1) else "%s",
                          statement.replace("%", "%%"))
    add = returning and text.lstrip().upper().startswith("INSERT") \
        and "RETURNING" not in text.upper()
    return (text + " RETURNING *" if add else text), add


@contextlib.contextmanager
def connect(url: str, home: Path, write: bool = True,
            migrations: Sequence[tuple[str, Sequence[str]]] = ()) -> Iterator[StateConnection]:
    """A unit of work: commits on success, rolls back on error. `migrations` are the
    (component, steps) the caller's tables need; they run once per process and database.
    DatabaseError when no connection came in time (the message says the database is down)."""
    try:
        with database.connection(url) as connection:
            _migrate_once(connection, url, migrations)
            with connection.transaction():
                connection.execute(sql.SQL("SET LOCAL search_path TO {}, public")
                                   .format(sql.Identifier(SCHEMA)))
                if write:
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield StateConnection(connection, home)
    except database.PoolTimeout as err:
        raise database.DatabaseError(f"cannot connect to the database ({err})") from err


def query_one(url: str, home: Path, statement: str,
              migrations: Sequence[tuple[str, Sequence[str]]] = (),
              parameters: Sequence = ()) -> Row | None:
    """One read-only statement (its tables named with the schema), sent alone: no
    transaction, no `search_path`, one round trip after the pool's check of the connection.
    For the hot reads of every request; anything that reads twice or writes uses `connect`."""
    try:
        with database.connection(url) as connection:
            _migrate_once(connection, url, migrations)
            cursor = connection.execute(statement, parameters or None)
            values = cursor.fetchone()
            names = [column.name for column in cursor.description or ()]
    except database.PoolTimeout as err:
        raise database.DatabaseError(f"cannot connect to the database ({err})") from err
    return None if values is None else Row(names, values)


def _migrate_once(connection: psycopg.Connection, url: str,
                  migrations: Sequence[tuple[str, Sequence[str]]]) -> None:
    for component, steps in migrations:
        if (url, component) not in _MIGRATED:
            migrate(connection, component, steps)
            _MIGRATED.add((url, component))


def migrate(connection: psycopg.Connection, component: str, steps: Sequence[str]) -> int:
    """Bring `component`'s tables to len(steps): run the steps not yet recorded, in order, in
    one transaction under the migrations' lock. Returns the version reached; refuses a schema
    newer than this program."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(SCHEMA)))
        connection.execute(sql.SQL("SET LOCAL search_path TO {}, public")
                           .format(sql.Identifier(SCHEMA)))
        connection.execute("CREATE TABLE IF NOT EXISTS migrations (component TEXT NOT NULL, "
                           "version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL "
                           "DEFAULT now(), PRIMARY KEY (component, version))")
        done = connection.execute("SELECT COALESCE(MAX(version), 0) FROM migrations "
                                  "WHERE component = %s", (component,)).fetchone()[0]
        if done > len(steps):
            raise RuntimeError(f"the database's {component} schema has version {done}; this "
                               f"program knows versions up to {len(steps)}")
        for version, step in enumerate(steps[done:], start=done + 1):
            connection.execute(step)
            connection.execute("INSERT INTO migrations (component, version) VALUES (%s, %s)",
                               (component, version))
    return len(steps)

