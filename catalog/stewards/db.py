"""The stewards' SQLite database: accounts, tokens, datasets, drafts and the audit log.

One file, TAZA_HOME/stewards/stewards.sqlite, in WAL mode so gunicorn workers and the `taza`
command read while one of them writes. Every statement takes parameters; none is built from
user input. The audit table is catalog.store.audit's (the release switch writes to it too).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from catalog.store import audit

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 15_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('steward', 'reviewer', 'admin')),
    organisation TEXT,
    email TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    secret_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drafts (
    id INTEGER PRIMARY KEY,
    dataset_id TEXT NOT NULL REFERENCES datasets(id),
    state TEXT NOT NULL CHECK (state IN
        ('draft', 'submitted', 'approved', 'rejected', 'published', 'discarded')),
    author_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    upload TEXT,
    comment TEXT,
    reviewed_by INTEGER REFERENCES users(id),
    approved_digest TEXT,
    published_version INTEGER,
    published_release INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_draft ON drafts(dataset_id)
    WHERE state IN ('draft', 'submitted', 'approved', 'rejected');
CREATE TABLE IF NOT EXISTS contributors (
    draft_id INTEGER NOT NULL REFERENCES drafts(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (draft_id, user_id)
);
"""


def stewards_dir(home: Path) -> Path:
    """Where the service keeps its database, drafts and uploads (never served as files)."""
    return Path(home) / "stewards"


@contextlib.contextmanager
def connect(home: Path, write: bool = True) -> Iterator[sqlite3.Connection]:
    """A connection for one unit of work; commits on success, rolls back on error.

    Writers take the write lock at BEGIN (IMMEDIATE), so a read-then-write never deadlocks;
    readers never wait for writers (WAL). Keep units short: never hold one across a scan.
    """
    folder = stewards_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(folder / "stewards.sqlite", timeout=BUSY_TIMEOUT_MS / 1000,
                                 isolation_level=None)  # explicit BEGIN/COMMIT below
    connection.row_factory = sqlite3.Row
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA foreign_keys = ON")
        _ensure_schema(connection)
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        if write:
            audit.advance_head(home, connection)
    finally:
        connection.close()


def _ensure_schema(connection: sqlite3.Connection) -> None:
    audit.ensure_schema(connection)
    if connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("BEGIN IMMEDIATE")
    for statement in _statements(SCHEMA):
        connection.execute(statement)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    connection.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """Split the schema into statements (triggers hold ';' inside BEGIN ... END)."""
    statements, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
