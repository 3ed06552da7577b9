"""The stewards' database: accounts, tokens, sessions, datasets, drafts and the audit log.

One implementation per engine, chosen by TAZA_DATABASE_URL: SQLite in the catalog home
(catalog.stewards.db_sqlite, the embedded default) or PostgreSQL (catalog.stewards.db_postgresql,
shared by every app node). Both hand out a connection for one unit of work whose `execute`
takes the same statements, committed on success and rolled back on error, with the audit
chain's head advanced after a write.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from catalog import settings
from catalog.stewards import db_postgresql, db_sqlite
from catalog.stewards.config import stewards_dir

__all__ = ["connect", "stewards_dir"]


@contextlib.contextmanager
def connect(home: Path, write: bool = True) -> Iterator[sqlite3.Connection]:
    """A connection for one unit of work on the profile's engine (see the module's note)."""
    url = settings.database_url()
    engine = db_postgresql.connect(url, home, write) if url else db_sqlite.connect(home, write)
    with engine as connection:
        yield connection
