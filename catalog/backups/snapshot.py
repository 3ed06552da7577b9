"""`taza backup DEST`: a consistent snapshot of a catalog home, taken while the server runs.

1. Copy passes without any lock: almost every byte is copied here (version files hard-linked
   or copied, databases through SQLite's online backup API, other files copied). A pass copies
   only what changed since the one before; passes stop when one finds nothing changed.
2. The final pass holds the publish lock and every dataset lock of the stewards' service, so no
   publish, rollback, withdraw, upload or review is half done: what changed since the last pass
   (a database whose file or write-ahead log changed, any other file whose size, time or inode
   changed) is copied again, files gone are removed, and the live release is read. Publishers
   arriving meanwhile get 409 from the API (or `taza publish` waits); the locks are held only
   for this pass.
3. Checksums of the copy and backup.json, after the locks are released.

On the PostgreSQL profile (TAZA_DATABASE_URL) the locks are the publisher's advisory locks in
the database (catalog/store/locks.py): there are no lock files to find, so the datasets are the
stewards' datasets in the database, the dataset folders and the live release's datasets. The
release records, the stewards' state, the audit log and the features are rows of that database:
while the locks are held the backup opens a read-only REPEATABLE READ transaction and exports
its snapshot, and after the locks are released `pg_dump --snapshot` writes exactly that state to
DEST/database.dump (custom format), without the STAC index's schemas (derived data, rebuilt
from the releases by the first server after a restore). Home and database are then one
consistent state: the release the dump says is live is the one whose versions the home holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.request import pathname2url

import psycopg

from catalog import __version__, settings
from catalog.backups import (
    DATA_FOLDER,
    DATABASE,
    DATABASE_DUMP,
    DERIVED_SCHEMAS,
    EXCLUDED,
    FORMAT,
    IMMUTABLE,
    MANIFEST,
    NOT_REGULAR,
    SYMBOLIC_LINK,
    BackupError,
    CodedText,
    excluded,
    file_digest,
    kind_of,
    pg_program,
)
from catalog.backups.bucket import BUCKET_FOLDER, copy_objects, referenced_objects
from catalog.postgis import database
from catalog.stewards.db import connect, stewards_dir
from catalog.stewards.errors import Conflict
from catalog.stewards.locks import dataset_lock
from catalog.store import CatalogStore, StoreBusy, audit

UNLOCKED_PASSES = 3  # at most; stops early when a pass finds nothing changed
FOLDER_RULES = {"cache/", "run/", "publish.lock, stewards/locks/", "stewards/tmp/", ".staging-*"}
CHUNK = 1 << 20  # bytes per read when copying
Log = Callable[[str], None]


@dataclass(frozen=True)
class Copied:
    kind: str
    signature: tuple  # size, mtime, inode of the source (and of its log) when copied


class Mirror:
    """The backup's copy of the home, brought up to date pass by pass."""

    def __init__(self, home: Path, target: Path, link: bool):
        self.home, self.target, self.link = home, target, link
        self.copied: dict[PurePosixPath, Copied] = {}
        self.skipped: dict[str, str] = {}

    def sync(self) -> int:
        """Copy what changed since the last pass, remove what disappeared; returns how many
        files changed. Databases are compared by their file and its write-ahead log."""
        changed, seen = 0, set()
        # The audit head file goes before the databases: an entry committed between the two
        # copies is then in the database copy and not yet in the head, never the other way
        # round (a head ahead of its database reads as a log cut short).
        head = audit.head_path(self.home)
        walked = sorted(self._walk(), key=lambda item: item[1] != head)  # stable otherwise
        for relative, path, info in walked:
            kind = kind_of(relative, path)
            signature = _database_signature(path, info) if kind == DATABASE else \
                _signature(info)
            known = self.copied.get(relative)
            if known and known.signature == signature:
                seen.add(relative)
                continue
            copied = self._backup_database(relative, path, signature) if kind == DATABASE \
                else self._copy(relative, path, kind)
            if copied is not None:
                self.copied[relative] = copied
                seen.add(relative)
                changed += 1
        for relative in set(self.copied) - seen:  # removed from the home since it was copied
            (self.target / relative).unlink(missing_ok=True)
            del self.copied[relative]
            changed += 1
        return changed

    def _walk(self) -> Iterator[tuple[PurePosixPath, Path, os.stat_result]]:
        for folder, folders, files in os.walk(self.home):
            base = PurePosixPath(Path(folder).relative_to(self.home).as_posix())
            for name in list(folders):
                relative = base / name
                if excluded(relative) in FOLDER_RULES:
                    folders.remove(name)
                elif os.path.islink(os.path.join(folder, name)):
                    self.skipped[str(relative)] = SYMBOLIC_LINK
            for name in files:
                relative, path = base / name, Path(folder) / name
                rule = excluded(relative)
                if rule is not None:
                    if rule == "*.key":
                        self.skipped[str(relative)] = EXCLUDED[rule]
                    continue
                try:
                    info = path.lstat()
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(info.st_mode):
                    self.skipped[str(relative)] = NOT_REGULAR
                    continue
                yield relative, path, info

    def _copy(self, relative: PurePosixPath, path: Path, kind: str) -> Copied | None:
        """Hard-link or copy one file; None when it disappeared meanwhile."""
        target = self.target / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == IMMUTABLE and self.link:
            try:
                info = path.stat()
                target.unlink(missing_ok=True)
                os.link(path, target)
                return Copied(kind, _signature(info))
            except FileNotFoundError:
                return None
            except OSError:  # another file system, or links not allowed: copy from now on
                self.link = False
        try:
            with path.open("rb") as source:
                info = os.fstat(source.fileno())  # the file as opened, even if replaced later
                partial = target.with_name(f"{target.name}.partial")
                with partial.open("wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
                    sink.flush()
                    os.fsync(sink.fileno())
        except FileNotFoundError:
            return None
        shutil.copystat(path, partial)
        os.replace(partial, target)
        return Copied(kind, _signature(info))

    def _backup_database(self, relative: PurePosixPath, path: Path,
                         signature: tuple) -> Copied | None:
        """A consistent copy of a live SQLite database (its online backup API, in one step).
        The signature was taken before: a change made while copying shows in the next pass."""
        target = self.target / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.partial")
        partial.unlink(missing_ok=True)
        try:
            source = sqlite3.connect(f"file:{pathname2url(str(path))}?mode=ro", uri=True,
                                     timeout=30)
        except sqlite3.OperationalError:
            return None if not path.exists() else _raise_unreadable(relative)
        try:
            with contextlib.closing(sqlite3.connect(partial)) as sink:
                source.backup(sink)
        except sqlite3.Error as err:
            raise BackupError(f"{relative}: SQLite could not back it up: {err}",
                              code="sqlite_backup",
                              params={"path": relative, "reason": str(err)}) from err
        finally:
            source.close()
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        shutil.copymode(path, partial)
        os.replace(partial, target)
        return Copied(DATABASE, signature)


def take_backup(home: Path, dest: Path, link: bool = True, lock_timeout: float = 600,
                log: Log = lambda message: None, previous: Path | None = None) -> dict:
    """Back up the home into dest (a new or empty folder), and with TAZA_ASSETS_URL the
    bucket's objects the backed-up state refers to (catalog/backups/bucket.py; `previous`: an
    earlier backup whose copies of the same objects are hard-linked); returns the manifest."""
    home, dest = Path(home).resolve(), Path(dest).resolve()
    _check_places(home, dest)
    started = _now()
    created = _make_folders(dest)
    try:
        mirror = Mirror(home, dest / DATA_FOLDER, link)
        passes = 0
        for _ in range(UNLOCKED_PASSES):
            passes += 1
            if not mirror.sync():
                break
        store = CatalogStore(home)
        url = store.database_url
        dumped = None
        with contextlib.ExitStack() as snapshot_held:
            with _catalog_at_rest(store, lock_timeout, log) as locked:
                mirror.sync()
                release = store.current()
                # The database as it is now, while nothing can change the catalog: the
                # snapshot stays open (and pg_dump reads it) after the locks are released.
                snapshot, connection = snapshot_held.enter_context(_database_snapshot(url)) \
                    if url else (None, None)
                # The bucket's objects that state refers to (named in the same snapshot).
                wanted = referenced_objects(connection, settings.assets_url(), mirror.target)
                locked_seconds = round(time.monotonic() - locked, 3)
            if snapshot is not None:
                dumped = _dump_database(url, snapshot, dest / DATABASE_DUMP)
        objects = copy_objects(wanted, dest, previous, log) if wanted else None
        manifest = _manifest(mirror, release, started, passes + 1, locked_seconds)
        if dumped is not None:
            manifest["database_dump"] = dumped
        if objects is not None:
            manifest["bucket"] = objects
        _write_manifest(dest, manifest)
    except BaseException as err:
        shutil.rmtree(dest / BUCKET_FOLDER, ignore_errors=True)
        shutil.rmtree(dest / DATA_FOLDER, ignore_errors=True)
        (dest / DATABASE_DUMP).unlink(missing_ok=True)
        (dest / MANIFEST).unlink(missing_ok=True)
        _remove_empty(created)
        if isinstance(err, OSError):
            raise _unwritten(dest, err) from err
        raise
    return manifest


def _make_folders(dest: Path) -> list[Path]:
    """Make dest and its missing parents; returns the folders made, outermost first, so that
    a failed backup removes them all and leaves the disk as it found it."""
    missing = [folder for folder in (dest, *dest.parents) if not folder.exists()][::-1]
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _remove_empty(missing)
        raise BackupError(f"{dest}: the backup folder cannot be created ({err.strerror})",
                          code="dest_unwritable",
                          params={"dest": dest, "reason": err.strerror}) from None
    return missing


def _remove_empty(made: list[Path]) -> None:
    """Remove the folders a backup made, deepest first; one that is not empty (something else
    wrote there meanwhile) stays, and the error the backup is reporting is not hidden."""
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _unwritten(dest: Path, err: OSError) -> BackupError:
    """A file the backup could not read or write (a full disk, a folder it may not enter)."""
    reason = f"{err.strerror}: {err.filename}" if err.filename else str(err)
    return BackupError(f"{dest}: the backup failed ({reason}); nothing of it was kept",
                       code="failed_io", params={"dest": dest, "reason": reason})


def _check_places(home: Path, dest: Path) -> None:
    if not home.is_dir():
        raise BackupError(f"no catalog home at {home}", code="no_home", params={"home": home})
    if dest == home or dest.is_relative_to(home) or home.is_relative_to(dest):
        raise BackupError(f"{dest}: a backup cannot be inside the home it backs up, nor hold "
                          "it; choose a folder elsewhere (another disk, ideally)",
                          code="dest_in_home", params={"dest": dest})
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty folder; each backup goes into "
                          "a new folder", code="dest_not_empty", params={"dest": dest})


@contextlib.contextmanager
def _catalog_at_rest(store: CatalogStore, timeout: float, log: Log) -> Iterator[float]:
    """Hold the publish lock and every dataset lock (never waiting while holding one);
    yields the monotonic time at which all were held."""
    deadline, told = time.monotonic() + timeout, False
    while True:
        try:
            with store.lock(wait=False):
                held = _hold_dataset_locks(store)
                if held is not None:
                    with held:
                        yield time.monotonic()
                    return
        except StoreBusy:
            pass
        if time.monotonic() > deadline:
            raise BackupError(f"the catalog stayed busy (publishes, uploads or reviews) for "
                              f"{timeout:.0f} s; nothing was backed up, try again later",
                              code="busy", params={"seconds": f"{timeout:.0f}"})
        if not told:
            log(CodedText("waiting for a publish, upload or review in progress to finish",
                          "progress.waiting"))
            told = True
        time.sleep(0.2)


def _hold_dataset_locks(store: CatalogStore) -> contextlib.ExitStack | None:
    """Every dataset's lock, or None (and none held) when one is busy."""
    stack, held = contextlib.ExitStack(), set()
    try:
        while names := _dataset_lock_names(store) - held:  # again: new datasets meanwhile
            for name in sorted(names):
                stack.enter_context(dataset_lock(store.home, name))
                held.add(name)
    except Conflict:
        stack.close()
        return None
    return stack


def _dataset_lock_names(store: CatalogStore) -> set[str]:
    """The datasets whose lock an operation may hold. Embedded: each lock is a file, made by
    its first holder. PostgreSQL: advisory locks leave no file; every dataset the stewards'
    service knows (a draft's dataset may have no version yet), has a version folder, or is
    live."""
    folder = stewards_dir(store.home) / "locks"
    names = {p.stem for p in folder.glob("*.lock")} if folder.is_dir() else set()
    if store.database_url:
        with connect(store.home, write=False) as connection:
            names |= {row[0] for row in connection.execute("SELECT id FROM datasets")}
        datasets = store.home / "datasets"
        if datasets.is_dir():
            names |= {p.name for p in datasets.iterdir() if p.is_dir()}
        release = store.current()
        names |= set(release.datasets) if release else set()
    return names


@contextlib.contextmanager
def _database_snapshot(url: str) -> Iterator[tuple[str, psycopg.Connection]]:
    """A read-only REPEATABLE READ transaction of its own, held open; yields its exported
    snapshot's name (for `pg_dump --snapshot`) and the connection (to read that state)."""
    connection = database.connect(url)
    try:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield connection.execute("SELECT pg_export_snapshot()").fetchone()[0], connection
        connection.execute("COMMIT")
    finally:
        connection.close()


def _dump_database(url: str, snapshot: str, target: Path) -> dict:
    """`pg_dump --snapshot` of the database but the STAC index into target (custom format);
    its entry for backup.json."""
    program = pg_program("pg_dump")
    partial = target.with_name(f".{target.name}.partial")
    done = subprocess.run([program, "--format=custom", f"--snapshot={snapshot}",
                           *(f"--exclude-schema={schema}" for schema in DERIVED_SCHEMAS),
                           f"--file={partial}", f"--dbname={url}"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        reason = done.stderr.strip()[-2000:]
        raise BackupError(f"pg_dump failed: {reason}", code="pg_dump",
                          params={"reason": reason})
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    size, digest = file_digest(target)
    return {"path": DATABASE_DUMP, "format": "pg_dump custom", "size": size, "sha256": digest}


def _manifest(mirror: Mirror, release, started: str, passes: int,
              locked_seconds: float) -> dict:
    files, contents = [], {}
    for relative, copied in sorted(mirror.copied.items()):
        size, digest = file_digest(mirror.target / relative)
        files.append({"path": str(relative), "kind": copied.kind, "size": size,
                      "sha256": digest})
        top = contents.setdefault(_content_name(relative), {"files": 0, "bytes": 0})
        top["files"] += 1
        top["bytes"] += size
    versions: dict[str, set[int]] = {}
    for entry in files:
        parts = PurePosixPath(entry["path"]).parts
        if parts[0] == "datasets" and entry["kind"] == IMMUTABLE:
            versions.setdefault(parts[1], set()).add(int(parts[2]))
    return {
        "format": FORMAT,
        "taza_version": __version__,
        "source_home": str(mirror.home),
        "started_at": started,
        "finished_at": _now(),
        "passes": passes,
        "locked_seconds": locked_seconds,
        "release": release.number if release else None,
        "live": dict(sorted(release.datasets.items())) if release else {},
        "versions": {d: sorted(v) for d, v in sorted(versions.items())},
        "releases": sorted({int(PurePosixPath(e["path"]).parts[1]) for e in files
                            if e["path"].startswith("releases/") and e["kind"] == IMMUTABLE}),
        "databases": [e["path"] for e in files if e["kind"] == DATABASE],
        "contents": contents,
        "files_total": len(files),
        "bytes_total": sum(e["size"] for e in files),
        "excluded": EXCLUDED,
        "skipped": dict(sorted(mirror.skipped.items())),
        "hard_linked": mirror.link,
        "files": files,
    }


def _content_name(relative: PurePosixPath) -> str:
    """Where a file belongs, for the manifest's summary: the top folder (two levels for the
    stewards' service, whose database and drafts differ in kind)."""
    parts = relative.parts
    if parts[0] == "stewards" and len(parts) > 2:
        return f"stewards/{parts[1]}/"
    return parts[0] + ("/" if len(parts) > 1 else "")


def _write_manifest(dest: Path, manifest: dict) -> None:
    partial = dest / f".{MANIFEST}.{uuid.uuid4().hex}"
    with partial.open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, dest / MANIFEST)
    descriptor = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _signature(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_size, info.st_mtime_ns, info.st_ino


def _database_signature(path: Path, info: os.stat_result) -> tuple:
    """What a commit changes: in rollback mode the file's change counter, in WAL mode the log
    (appending grows it; restarting it writes new salts into its header). File times alone
    could miss two writes within one clock tick. An empty log is no log: opening a database
    to copy it may create one."""
    log = path.with_name(path.name + "-wal")
    return _signature(info), _read(path, 24, 4), _size(log), _read(log, 0, 32)


def _read(path: Path, offset: int, length: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)
    except FileNotFoundError:
        return b""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _raise_unreadable(relative: PurePosixPath):
    raise BackupError(f"{relative}: SQLite cannot open this database for reading",
                      code="sqlite_unreadable", params={"path": relative})


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
