"""Crash-safe file writes shared by the store and the audit log: fsync, then rename."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def atomic_write(path: Path, text: str) -> None:
    """Replace path with text: readers see the old or the new file, never half of one."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_path(path.parent)


def fsync_tree(folder: Path) -> None:
    """Flush every file before the rename that publishes them (no torn files after a crash)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fsync_path(path)
    fsync_path(folder)


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's entry list is what a rename changes)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
