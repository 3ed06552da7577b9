"""Read-only connections to published GeoPackages: one per file and thread, reused.

Published files never change in place (catalog/store), so they are opened ``immutable=1``
(SQLite then skips locking and change detection); a replaced file shows up as a new
`file_version` (inode, mtime, size), which gets a fresh connection. Each connection has the
library's SQL functions (catalog/gpkg/functions.py) and, when present, the stored feature text
attached as the schema `feature_text` (catalog/gpkg/feature_text.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import urllib.parse
from pathlib import Path

from catalog.gpkg import feature_text
from catalog.gpkg.errors import GeoPackageError
from catalog.gpkg.functions import register_functions

LOGGER = logging.getLogger(__name__)
FileVersion = tuple  # (inode, mtime_ns, size, feature text's (inode, mtime_ns, size) or None)

_LOCAL = threading.local()


def sqlite_uri(path: str | Path, immutable: bool = True) -> str:
    """A read-only SQLite URI for `path` (immutable: the file never changes while open)."""
    suffix = "&immutable=1" if immutable else ""
    return f"file:{urllib.parse.quote(str(path))}?mode=ro{suffix}"


def file_version(path: str) -> FileVersion:
    """Identity of the GeoPackage and of its stored feature text (either may be replaced)."""
    try:
        stat = os.stat(path)
    except OSError as err:
        raise GeoPackageError(f"cannot open GeoPackage {path}: {err}") from err
    try:
        side = os.stat(feature_text.path_for(path))
        side_version = (side.st_ino, side.st_mtime_ns, side.st_size)
    except OSError:
        side_version = None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size, side_version


def open_published(path: str) -> sqlite3.Connection:
    """A new read-only connection to a published GeoPackage, with the library's SQL
    functions and the stored feature text attached when there is one."""
    try:
        conn = sqlite3.connect(sqlite_uri(path), uri=True)
        conn.execute("SELECT 1 FROM gpkg_contents LIMIT 1")
    except sqlite3.Error as err:
        raise GeoPackageError(f"cannot open GeoPackage {path}: {err}") from err
    register_functions(conn)
    side = feature_text.path_for(path)
    if os.path.exists(side):
        try:
            conn.execute(f"ATTACH DATABASE ? AS {feature_text.SCHEMA}", (sqlite_uri(side),))
        except sqlite3.Error as err:  # serve without it rather than fail
            LOGGER.warning("%s: stored feature text not attached: %s", side, err)
    return conn


def connection(path: str, version: FileVersion) -> sqlite3.Connection:
    """This thread's connection to `path` as of `version` (opened once, then reused)."""
    conns: dict[str, tuple[FileVersion, sqlite3.Connection]] = \
        _LOCAL.__dict__.setdefault("conns", {})
    entry = conns.get(path)
    if entry is not None and entry[0] == version:
        return entry[1]
    if entry is not None:
        entry[1].close()
    conn = open_published(path)
    conns[path] = (version, conn)
    return conn
