"""`taza restore SRC`: rebuild a catalog home from a backup, after checking every checksum.

Nothing in the target is touched until the whole backup has matched the sizes and SHA-256
recorded in its backup.json. The files are then copied into a hidden folder inside the target
(checked again as they are copied) and moved into place; only then, with `--force`, is what
the target held before removed. A target that is not empty is refused without `--force`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from pathlib import Path

from catalog.backups import DATA_FOLDER, FORMAT, MANIFEST, BackupError, file_digest, safe_relative

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
    return manifest


def verify(source: Path, manifest: dict) -> list[str]:
    """Every problem found comparing the backup's files with its manifest (empty: intact)."""
    problems = []
    for entry in manifest["files"]:
        path = Path(source) / DATA_FOLDER / safe_relative(entry["path"])
        problem = _check_file(path, entry)
        if problem:
            problems.append(f"{entry['path']}: {problem}")
    return problems


def restore(source: Path, home: Path, force: bool = False) -> dict:
    """Rebuild `home` from the backup in `source`; returns the backup's manifest."""
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
