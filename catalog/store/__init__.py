"""The published catalog on disk: immutable dataset versions and an atomically switched release.

Layout under the catalog home (TAZA_HOME, default ./var):

    datasets/<id>/<N>/         version N of a dataset: its assets and record.json. Never
                               changed once renamed into place.
    datasets/<id>/.staging-*   a version being written; invisible to readers.
    releases/<R>/release.json  the catalog state R: which version of each dataset is live.
    releases/<R>/stac/         the static STAC catalog of that state.
    current.json               {"release": R}: replaced atomically (rename) to switch.
    publish.lock               serialises publishers (flock), across processes.

Readers only follow current.json, so a publish that fails or is killed at any point
leaves the previous release serving, and nothing half-written is reachable.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

STAGING_PREFIX = ".staging-"


class StoreBusy(Exception):
    """Another process holds the publish lock."""


@dataclass(frozen=True)
class Release:
    number: int
    datasets: dict[str, int]  # dataset id -> live version
    path: Path

    @property
    def stac_dir(self) -> Path:
        return self.path / "stac"


class CatalogStore:
    """Versions and releases of the published catalog, under one home folder."""

    def __init__(self, home: str | Path):
        self.home = Path(home).resolve()

    # -- reading -------------------------------------------------------------------------

    def current(self) -> Release | None:
        """The live release, or None before the first publish."""
        pointer = self.home / "current.json"
        if not pointer.exists():
            return None
        number = json.loads(pointer.read_text())["release"]
        return self.release(number)

    def release(self, number: int) -> Release:
        path = self.home / "releases" / str(number)
        state = json.loads((path / "release.json").read_text())
        return Release(number, dict(state["datasets"]), path)

    def version_dir(self, dataset_id: str, version: int) -> Path:
        return self.home / "datasets" / dataset_id / str(version)

    def record(self, dataset_id: str, version: int) -> dict:
        return json.loads((self.version_dir(dataset_id, version) / "record.json").read_text())

    def current_records(self) -> list[dict]:
        """Records of every live dataset version, ordered by dataset id."""
        release = self.current()
        if release is None:
            return []
        return [self.record(i, v) for i, v in sorted(release.datasets.items())]

    def versions(self, dataset_id: str) -> list[int]:
        folder = self.home / "datasets" / dataset_id
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    # -- writing (only while holding the lock) -------------------------------------------

    @contextlib.contextmanager
    def lock(self, wait: bool = True) -> Iterator[None]:
        """Serialise publishers; the OS drops the lock if the holder dies.

        With wait=False, raise StoreBusy at once when another publish holds the lock
        (the stewards' API answers 409 rather than queueing requests).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "publish.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as err:
                raise StoreBusy("another publish of this catalog is in progress") from err
            try:
                self._remove_debris()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def new_staging(self, dataset_id: str) -> Path:
        folder = self.home / "datasets" / dataset_id / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        return folder

    def commit_version(self, dataset_id: str, staging: Path) -> int:
        """Make a staged version permanent as the next version number."""
        _fsync_tree(staging)
        existing = self.versions(dataset_id)
        version = (existing[-1] + 1) if existing else 1
        target = self.version_dir(dataset_id, version)
        os.rename(staging, target)
        _fsync_dir(target.parent)
        return version

    def switch(self, datasets: dict[str, int], build_stac: Callable[[Path], None]) -> Release:
        """Write release R+1 with the given dataset versions and make it live atomically."""
        releases = self.home / "releases"
        releases.mkdir(parents=True, exist_ok=True)
        current = self.current()
        number = (current.number + 1) if current else 1
        staging = releases / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        state = {"release": number, "datasets": dict(sorted(datasets.items())),
                 "previous": current.number if current else None}
        (staging / "release.json").write_text(json.dumps(state, indent=2))
        build_stac(staging / "stac")
        _fsync_tree(staging)
        final = releases / str(number)
        os.rename(staging, final)
        _atomic_write(self.home / "current.json", json.dumps({"release": number}))
        return self.release(number)

    def _remove_debris(self) -> None:
        """Remove what an interrupted publish left: staging folders and unreleased versions."""
        referenced = self._versions_in_releases()
        for staging in self.home.glob(f"*/*/{STAGING_PREFIX}*"):
            shutil.rmtree(staging, ignore_errors=True)
        for staging in self.home.glob(f"releases/{STAGING_PREFIX}*"):
            shutil.rmtree(staging, ignore_errors=True)
        for folder in self.home.glob("datasets/*/*"):
            if folder.name.isdigit() and (folder.parent.name, int(folder.name)) not in referenced:
                shutil.rmtree(folder, ignore_errors=True)

    def _versions_in_releases(self) -> set[tuple[str, int]]:
        referenced = set()
        for path in self.home.glob("releases/*/release.json"):
            if path.parent.name.isdigit():
                referenced.update(json.loads(path.read_text())["datasets"].items())
        return referenced


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with temporary.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def _fsync_tree(folder: Path) -> None:
    """Flush every file before the rename that publishes them (no torn files after a crash)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
