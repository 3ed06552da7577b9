"""The stewards' SQLite database (the embedded profile): accounts, tokens, sessions, datasets,
drafts and the audit log. catalog.stewards.db chooses it when TAZA_DATABASE_URL is unset.

One file, TAZA_HOME/stewards/stewards.sqlite, in WAL mode so gunicorn workers and the `taza`
command read while one of them writes. Every statement takes parameters; none is built from
user input. The audit table is catalog.store.audit's (the release switch writes to it too).

Schema versions (PRAGMA user_version), each reached from the one before in place:
1. accounts, tokens, datasets, drafts, contributors, audit;
2. passwords (argon2id), one-time password links, sessions, sign-in failures (the rate limit
   all workers share), token expiry and labels, and the upload size of each draft (quotas).
   Tokens that existed before get an expiry counted from the migration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from catalog.stewards.config import StewardSettings, stewards_dir
from catalog.store import audit

SCHEMA_VERSION = 2
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

# Version 1 -> 2. Times the code compares are epoch seconds (REAL); tokens keep ISO text like
# the rest of the version 1 tables.
MIGRATION_2 = """
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
ALTER TABLE tokens ADD COLUMN label TEXT;
ALTER TABLE drafts ADD COLUMN upload_bytes INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS password_links (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    secret_sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    used REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    secret_sha256 TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS signin_failures (
    scope TEXT NOT NULL CHECK (scope IN ('account', 'address')),
    subject TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS signin_failures_by_subject ON signin_failures(scope, subject, at);
"""


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
        _ensure_schema(connection, folder)
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


def _ensure_schema(connection: sqlite3.Connection, folder: Path) -> None:
    audit.ensure_schema(connection)
    if _version(connection) == SCHEMA_VERSION:
        return
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have created or migrated it while this one waited for the lock.
        version = _version(connection)
        if version == 0:
            _run(connection, SCHEMA)
            _run(connection, MIGRATION_2)
        elif version == 1:
            _run(connection, MIGRATION_2)
            _backfill_2(connection, folder)
        elif version > SCHEMA_VERSION:
            raise RuntimeError(f"{folder / 'stewards.sqlite'} has schema version {version}; "
                               f"this program knows versions up to {SCHEMA_VERSION}")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _version(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA user_version").fetchone()[0]


def _run(connection: sqlite3.Connection, script: str) -> None:
    for statement in audit.sqlite_statements(script):
        connection.execute(statement)


def _backfill_2(connection: sqlite3.Connection, folder: Path) -> None:
    """Existing tokens expire one lifetime after the migration; open drafts count the size of
    their upload (from upload.json) against their organisation's quota."""
    lifetime = StewardSettings.from_environment().token_lifetime_seconds
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime)
    connection.execute("UPDATE tokens SET expires_at = ? WHERE expires_at IS NULL",
                       (expires.isoformat(timespec="milliseconds"),))
    for row in connection.execute("SELECT id FROM drafts WHERE state IN "
                                  "('draft', 'submitted', 'approved', 'rejected')").fetchall():
        meta = folder / "drafts" / str(row[0]) / "upload" / "upload.json"
        if meta.exists():
            size = int(json.loads(meta.read_text()).get("size", 0))
            connection.execute("UPDATE drafts SET upload_bytes = ? WHERE id = ?", (size, row[0]))
