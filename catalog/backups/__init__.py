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

# Each rule: a test on the path relative to the home, and why that path is left out. backup.json
# stores the reasons in English (`excluded`, `skipped`); `taza` says them in the operator's
# language at print time (texts.yml `reason.<code>`, codes in REASON_CODES).
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
# Files of the home that no rule leaves out and that are not copied either (backup.json
# `skipped`, with the *.key files).
SYMBOLIC_LINK = "a symbolic link: not followed"
NOT_REGULAR = "not a regular file"
# The reason as stored -> its text's code (texts.yml `reason.<code>`).
REASON_CODES = {
    EXCLUDED["cache/"]: "cache",
    EXCLUDED["run/"]: "run",
    EXCLUDED["publish.lock, stewards/locks/"]: "locks",
    EXCLUDED["stewards/tmp/"]: "uploads",
    EXCLUDED[".staging-*"]: "staging",
    EXCLUDED["*-wal, *-shm, *-journal"]: "sqlite_side_files",
    EXCLUDED[".<name>.<32 hex digits>"]: "atomic_temporary",
    EXCLUDED["*.key"]: "secrets",
    SYMBOLIC_LINK: "symbolic_link",
    NOT_REGULAR: "not_regular",
}
ATOMIC_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}$")
# The STAC index on PostgreSQL (pgstac and ours): derived from the releases, left out of a
# backup's dump and rebuilt by the first server after a restore. pgstac's functions also assume
# a search_path that pg_restore clears, so its schema in a dump does not restore
# (st_makeenvelope "does not exist").
DERIVED_SCHEMAS = ("pgstac", "taza_stac")
USER_DATA = (("datasets",), ("releases",), ("stewards", "drafts"))


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why (in English: the API's
    and the logs' words). `code` names its text in texts.yml (`error.<code>`, said with
    `params`: what `taza` prints, in the operator's language); empty for the few without."""

    def __init__(self, message: str, *, code: str = "", params: dict | None = None):
        super().__init__(message)
        self.code, self.params = code, dict(params or {})


class CodedText(str):
    """An English text, as it always was (stored, compared, logged, returned by the API),
    that also carries the code and params of its text in texts.yml, so that `taza` can say
    it in the operator's language (catalog/backups/texts.py `say_text`). A param may be
    another CodedText (said too) or a list of them (said and joined by "; ")."""

    code: str
    params: dict

    def __new__(cls, english: str, code: str = "", **params: object) -> CodedText:
        text = super().__new__(cls, english)
        text.code, text.params = code, params
        return text


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
        raise BackupError(f"the backup names an unsafe path {text!r}; refusing it",
                          code="unsafe_path", params={"path": repr(text)})
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
                          "(Debian: postgresql-client-15)", code="program_missing",
                          params={"program": name})
    return str(versions[-1])


def check_file(path: Path, entry: dict) -> CodedText | None:
    """What is wrong with a backed-up file against its entry (size, SHA-256); None: intact."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return CodedText("missing", "problem.missing")
    if not stat.S_ISREG(info.st_mode):
        return CodedText(NOT_REGULAR, "problem.not_regular")
    if info.st_size != entry["size"]:
        return CodedText(f"{info.st_size} bytes, recorded {entry['size']}", "problem.size",
                         size=info.st_size, recorded=entry["size"])
    if file_digest(path)[1] != entry["sha256"]:
        return CodedText("content differs from its recorded SHA-256", "problem.content")
    return None


def file_problem(where: str, problem: CodedText) -> CodedText:
    """'<where>: <problem>', a line of `taza restore --check`."""
    return CodedText(f"{where}: {problem}", "problem.at", path=where, problem=problem)


def file_digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in 1 MiB chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
