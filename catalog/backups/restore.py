"""`taza restore SRC`: rebuild a catalog home from a backup, after checking every checksum.

Nothing in the target is touched until the whole backup has matched the sizes and SHA-256
recorded in its backup.json. The files are then copied into a hidden folder inside the target
(checked again as they are copied) and moved into place; only then, with `--force`, is what
the target held before removed. A target that is not empty is refused without `--force`.

A backup of the PostgreSQL profile also holds the database (DEST/database.dump): it is restored
with pg_restore into the database TAZA_DATABASE_URL names, before the home's files are moved
into place; a database that already holds a catalog (the schema `taza_state`) is refused
without `--force` (which drops and recreates what the dump holds).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import psycopg

from catalog.backups import (
    DATA_FOLDER,
    DATABASE_DUMP,
    FORMAT,
    MANIFEST,
    BackupError,
    file_digest,
    pg_program,
    safe_relative,
)

MAX_LISTED_PROBLEMS = 20


def read_manifest(source: Path) -> dict:
    """backup.json of a backup folder, checked for shape and safe paths."""
    path = Path(source) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} holds no {MANIFEST}: not a backup, or one that was "
                          "interrupted (never restore it)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BackupError(f"{path} is not readable JSON: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: expected a backup in format {FORMAT!r}")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(_well_formed(entry) for entry in files):
        raise BackupError(f"{path}: its file list is damaged")
    for entry in files:
        safe_relative(entry["path"])
    dump = manifest.get("database_dump")
    if dump is not None and (not _well_formed(dump) or dump["path"] != DATABASE_DUMP):
        raise BackupError(f"{path}: its database dump entry is damaged")
    return manifest


def verify(source: Path, manifest: dict) -> list[str]:
    """Every problem found comparing the backup's files with its manifest (empty: intact)."""
    problems = []
    for entry in manifest["files"]:
        path = Path(source) / DATA_FOLDER / safe_relative(entry["path"])
        problem = _check_file(path, entry)
        if problem:
            problems.append(f"{entry['path']}: {problem}")
    dump = manifest.get("database_dump")
    if dump is not None:
        problem = _check_file(Path(source) / DATABASE_DUMP, dump)
        if problem:
            problems.append(f"{DATABASE_DUMP}: {problem}")
    return problems


def restore(source: Path, home: Path, force: bool = False,
            database_url: str | None = None) -> dict:
    """Rebuild `home` (and, for a backup of the PostgreSQL profile, the database at
    `database_url`) from the backup in `source`; returns the backup's manifest."""
    source, home = Path(source).resolve(), Path(home).resolve()
    manifest = read_manifest(source)
    problems = verify(source, manifest)
    if problems:
        listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = len(problems) - MAX_LISTED_PROBLEMS
        raise BackupError(f"the backup does not match its checksums, nothing was restored: "
                          f"{listed}" + (f" (and {more} more)" if more > 0 else ""))
    home.mkdir(parents=True, exist_ok=True)
    previous = sorted(home.iterdir())
    if previous and not force:
        raise BackupError(f"{home} is not empty; restore into an empty folder, or replace "
                          "its contents with --force (stop the server first)")
    if manifest.get("database_dump") is not None:
        _restore_database(source / DATABASE_DUMP, database_url, force)
    staging = home / f".restoring-{uuid.uuid4().hex}"
    try:
        for entry in manifest["files"]:
            relative = safe_relative(entry["path"])
            _copy_checked(source / DATA_FOLDER / relative, staging / relative, entry)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in previous:
        _remove(old)
    for child in sorted(staging.iterdir()):
        os.rename(child, home / child.name)
    staging.rmdir()
    _fsync_dir(home)
    return manifest


def _restore_database(dump: Path, url: str | None, force: bool) -> None:
    """pg_restore the backup's dump into `url` (an empty database, or any with `force`)."""
    if not url:
        raise BackupError("this backup holds the PostgreSQL profile's database: set "
                          "TAZA_DATABASE_URL to the (empty) database to restore it into")
    try:
        with psycopg.connect(url, connect_timeout=10) as connection:
            holds = connection.execute(
                "SELECT to_regnamespace('taza_state') IS NOT NULL").fetchone()[0]
    except psycopg.Error as err:
        raise BackupError(f"cannot reach the database to restore into: {err}") from err
    if holds and not force:
        raise BackupError("the database TAZA_DATABASE_URL names already holds a catalog "
                          "(schema taza_state); restore into an empty database, or replace "
                          "it with --force (stop the servers first)")
    command = [pg_program("pg_restore"), "--no-owner", "--single-transaction",
               "--exit-on-error", f"--dbname={url}"]
    if holds:
        command += ["--clean", "--if-exists"]
    done = subprocess.run([*command, str(dump)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed, the database is unchanged and nothing was "
                          f"restored: {done.stderr.strip()[-2000:]}")


def _well_formed(entry: object) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("path"), str) and \
        isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)


def _check_file(path: Path, entry: dict) -> str | None:
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


def _copy_checked(source: Path, target: Path, entry: dict) -> None:
    """Copy one file, hashing it on the way (the backup may change after verify())."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    if digest.hexdigest() != entry["sha256"]:
        raise BackupError(f"{entry['path']}: changed while it was being restored; "
                          "nothing was restored")
    shutil.copystat(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def content_summary(manifest: dict) -> str:
    """One line saying what a backup holds."""
    live = manifest.get("live") or {}
    return (f"release {manifest.get('release')} ({len(live)} live datasets), "
            f"{manifest.get('files_total')} files, {manifest.get('bytes_total', 0):,} bytes, "
            f"databases: {', '.join(manifest.get('databases', [])) or 'none'}")
