"""Backups of a catalog home taken while it serves (`taza backup`), and restoring them
(`taza restore`). See docs/operations.md.

A backup is a folder:

    DEST/backup.json   what it holds: every file with its size and SHA-256, the databases, the
                       live release, the versions, what was left out and why. Written last: a
                       folder without it is an interrupted backup and is never restored.
    DEST/home/...      the home's files, at the same relative paths.
    DEST/database.dump the PostgreSQL profile's database (pg_dump, custom format), taken at
                       the same instant as the home's copy (catalog/backups/snapshot.py).
    DEST/bucket/<bucket>/<key>
                       with TAZA_ASSETS_URL, the bucket's objects that state refers to
                       (catalog/backups/bucket.py).

What is copied is decided by rules over the whole home, not by a list of known files, so tables,
files and folders added later are backed up without a change here:

- version folders `datasets/<id>/<N>/` and release folders `releases/<R>/` never change once
  renamed into place: hard-linked when DEST is on the same file system (else copied);
- every other SQLite file (the STAC index, the stewards' database, the jobs, and any database
  added later) is a live database: copied through SQLite's online backup API, a consistent
  snapshot even while the server writes, never as a file;
- SQLite files inside user-data folders (a GeoPackage in a version, an upload in a draft) are
  files written once and renamed into place: copied as files, never opened;
- everything else is copied as a file.

Left out (EXCLUDED, named in backup.json): derived and runtime state, locks, work in progress,
and secrets (`*.key`: keep keys apart from the data they protect, docs/operations.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from pathlib import Path, PurePosixPath

FORMAT = "taza-backup/1"
MANIFEST = "backup.json"
DATA_FOLDER = "home"
DATABASE_DUMP = "database.dump"
SQLITE_HEADER = b"SQLite format 3\x00"

# Each rule: a test on the path relative to the home, and why that path is left out.
EXCLUDED = {
    "cache/": "derived data (rendered map tiles): rebuilt on demand",
    "run/": "runtime files of the server's workers",
    "publish.lock, stewards/locks/": "locks: held by running processes, empty",
    "stewards/tmp/": "uploads still arriving: not part of any draft",
    ".staging-*": "a publish in progress: removed by the next publish",
    "*-wal, *-shm, *-journal": "SQLite's side files: each database is copied whole through "
                               "its backup API",
    ".<name>.<32 hex digits>": "a file being replaced by an atomic rename",
    "*.key": "secrets (the audit key): keep and back them up apart from the data",
}
ATOMIC_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}$")
# The STAC index on PostgreSQL (pgstac and ours): derived from the releases, left out of a
# backup's dump and rebuilt by the first server after a restore. pgstac's functions also assume
# a search_path that pg_restore clears, so its schema in a dump does not restore
# (st_makeenvelope "does not exist").
DERIVED_SCHEMAS = ("pgstac", "taza_stac")
USER_DATA = (("datasets",), ("releases",), ("stewards", "drafts"))


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


# How a file is copied:
IMMUTABLE = "immutable"  # a version or release folder's file: hard link, or copy
DATABASE = "database"  # a live SQLite database: SQLite's online backup API
FILE = "file"  # copied as it is


def excluded(relative: PurePosixPath) -> str | None:
    """The EXCLUDED rule that leaves this path out, or None when it is backed up."""
    parts, name = relative.parts, relative.name
    rules = (
        ("cache/", parts[0] == "cache"),
        ("run/", parts[0] == "run"),
        ("publish.lock, stewards/locks/", parts in (("publish.lock",),)
         or parts[:2] == ("stewards", "locks")),
        ("stewards/tmp/", parts[:2] == ("stewards", "tmp")),
        (".staging-*", any(p.startswith(".staging-") for p in parts)),
        ("*-wal, *-shm, *-journal", name.endswith(("-wal", "-shm", "-journal"))),
        (".<name>.<32 hex digits>", bool(ATOMIC_TEMPORARY.match(name))),
        ("*.key", name.endswith(".key")),
    )
    return next((rule for rule, matches in rules if matches), None)


def kind_of(relative: PurePosixPath, path: Path) -> str:
    """How a backed-up file is copied (see the module's docstring)."""
    parts = relative.parts
    if (len(parts) > 3 and parts[0] == "datasets" and parts[2].isdigit()) or \
            (len(parts) > 2 and parts[0] == "releases" and parts[1].isdigit()):
        return IMMUTABLE
    if any(parts[:len(prefix)] == prefix for prefix in USER_DATA):
        return FILE
    return DATABASE if _is_sqlite(path) else FILE


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def safe_relative(text: str) -> PurePosixPath:
    """A path from a backup's manifest, refused unless it stays inside the home."""
    path = PurePosixPath(text)
    if not text or "\x00" in text or "\\" in text or path.is_absolute() or \
            any(part in ("", ".", "..") for part in text.split("/")):
        raise BackupError(f"the backup names an unsafe path {text!r}; refusing it")
    return path


def pg_program(name: str) -> str:
    """A PostgreSQL client program (pg_dump, pg_restore): PG_BINDIR's, else the one on PATH
    (Debian's wrapper picks the newest installed), else the newest under /usr/lib/postgresql."""
    if os.environ.get("PG_BINDIR"):
        return str(Path(os.environ["PG_BINDIR"]) / name)
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    if not versions:
        raise BackupError(f"{name} is missing: install PostgreSQL's client programs "
                          "(Debian: postgresql-client-15)")
    return str(versions[-1])


def check_file(path: Path, entry: dict) -> str | None:
    """What is wrong with a backed-up file against its entry (size, SHA-256); None: intact."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size != entry["size"]:
        return f"{info.st_size} bytes, recorded {entry['size']}"
    if file_digest(path)[1] != entry["sha256"]:
        return "content differs from its recorded SHA-256"
    return None


def file_digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in 1 MiB chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
