"""The published catalog on disk: immutable dataset versions and an atomically switched release.

Layout under the catalog home (TAZA_HOME, default ./var):

    datasets/<id>/<N>/         version N of a dataset: its assets and record.json. Never
                               changed once renamed into place; removed only by a purge.
    datasets/<id>/.staging-*   a version being written; invisible to readers.
    datasets/<id>/purged.json  versions purged (legal takedown): their numbers are never reused.
    releases/<R>/release.json  the catalog state R: which version of each dataset is live, the
                               release before it, and the audit chain's head at its intent.
    releases/<R>/stac/         the static STAC catalog of that state.
    current.json               {"release": R}: replaced atomically (rename) to switch.
    publish.lock               serialises publishers (flock), across processes.

With TAZA_DATABASE_URL the release records and the pointer are rows of PostgreSQL instead
(catalog/store/release_records.py) and the publish lock is an advisory lock
(catalog/store/locks.py): app nodes share no disk to learn what is live. Each version's
record.json and objects.json and each release's static STAC tree are rows of the same database
too (written as the version is committed and as the release goes live), so with the files in a
bucket (TAZA_ASSETS_URL) a node's home is only its cache and scratch: a version published by
another node is read from the database, its files from the bucket, and a GeoPackage that must
be read as SQLite is downloaded once into the node's cache (`<cache>/versions/`).

Readers only follow current.json, so an operation that fails or is killed at any point leaves
the previous release serving, and nothing half-written is reachable. A release went live only
if it is current or an ancestor of current (each release.json names the live release it
replaced): a release left behind by a crash before current.json was replaced never went live,
and neither did the versions only it references.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from catalog import settings
from catalog.core.assets import AssetUnavailable
from catalog.core.record import RECORD_FILE, Record, read_record
from catalog.store.assets import OBJECTS_FILE, StoreAssets, assets_for
from catalog.store.files import atomic_write, fsync_path, fsync_tree
from catalog.store.locks import LockHeld, held_lock
from catalog.store.release_records import (
    ReleaseMissing,
    ReleaseRecords,
    StacDocument,
    release_records,
)
from catalog.store.watch import ReleaseWatch

STAGING_PREFIX = ".staging-"
PURGING_PREFIX = ".purging-"
PURGED_FILE = "purged.json"


class StoreBusy(Exception):
    """Another process holds the publish lock."""


class StoreRefused(Exception):
    """An operation the store will not carry out as asked (the message says why)."""


@dataclass(frozen=True)
class Release:
    number: int
    datasets: dict[str, int]  # dataset id -> live version
    path: Path
    previous: int | None = None  # the release that was live when this one was made
    audit: dict | None = None  # the audit chain's head ({"seq", "mac"}) at this switch's intent

    @property
    def stac_dir(self) -> Path:
        return self.path / "stac"


class CatalogStore:
    """Versions and releases of the published catalog, under one home folder."""

    def __init__(self, home: str | Path, assets_url: str | None = None,
                 database_url: str | None = None):
        self.home = Path(home).resolve()
        self.database_url = database_url or settings.database_url()
        # Which release is live and what each holds: files of the home, or PostgreSQL rows.
        self.records: ReleaseRecords = release_records(self.home, self.database_url)
        # Versions are immutable: what the database said of one is kept in memory.
        self._kept: dict[tuple[str, int], tuple[Record, dict | None]] = {}
        self._kept_lock = threading.Lock()
        # A version's files, for clients (URLs) and the server (paths, byte ranges): in the
        # version folders, or in the bucket TAZA_ASSETS_URL names.
        self.assets: StoreAssets = assets_for(
            assets_url or settings.assets_url(), self.version_dir, objects=self.version_objects,
            cache_dir=self.versions_cache if self.database_url else None)

    # -- reading -------------------------------------------------------------------------

    @functools.cached_property
    def watch(self) -> ReleaseWatch:
        """The live release as this process's services see it, read at most once a second
        (catalog/store/watch.py); `current()` reads it now."""
        return ReleaseWatch(self.current)

    def current(self) -> Release | None:
        """The live release, or None before the first publish."""
        found = self.records.live_state()  # one read: one statement on PostgreSQL
        if found is None:
            return None
        return self._release_of(*found)

    def release(self, number: int) -> Release:
        """Release `number`; ReleaseMissing if there is no record of it."""
        return self._release_of(number, self.records.read(number))

    def _release_of(self, number: int, state: dict) -> Release:
        return Release(number, dict(state["datasets"]), self.home / "releases" / str(number),
                       state.get("previous"), state.get("audit"))

    def live_releases(self) -> list[Release]:
        """Every release that went live, newest first: current, then each one it replaced."""
        chain: list[Release] = []
        release = self.current()
        while release is not None and release.number not in {r.number for r in chain}:
            chain.append(release)
            if release.previous is None:
                break
            try:
                release = self.release(release.previous)
            except ReleaseMissing:
                break
        return chain

    def release_numbers(self) -> list[int]:
        """Numbers of the recorded releases, live or not."""
        return self.records.numbers()

    def _release_folders(self) -> list[int]:
        """Numbers of the release folders on disk (with a record or not)."""
        folder = self.home / "releases"
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    def version_dir(self, dataset_id: str, version: int) -> Path:
        """A version's folder (the store's layout: others reach its files through `assets`)."""
        return self.home / "datasets" / dataset_id / str(version)

    def has_version_folder(self, dataset_id: str, version: int) -> bool:
        """Whether the version exists: its folder, or (PostgreSQL) its row."""
        return (self.version_dir(dataset_id, version).exists()
                or version in self.records.version_numbers(dataset_id)[0])

    @property
    def versions_cache(self) -> Path:
        """Where this node keeps local copies of other nodes' GeoPackages (PostgreSQL profile
        with a bucket)."""
        return settings.cache_dir(self.home) / "versions"

    def record(self, dataset_id: str, version: int) -> Record:
        """The version's record (catalog.core.record); FileNotFoundError if there is none.
        On PostgreSQL it is the version's row (a version published before the database was
        configured and not migrated yet: its folder)."""
        kept = self._kept_version(dataset_id, version)
        if kept is not None:
            return kept[0]
        return read_record(self.version_dir(dataset_id, version) / RECORD_FILE)

    def version_objects(self, dataset_id: str, version: int) -> tuple[str, str] | None:
        """(bucket, key prefix) of a version's files, or None for files in its folder."""
        kept = self._kept_version(dataset_id, version)
        where = kept[1] if kept is not None else None
        if where is None:
            try:
                where = json.loads((self.version_dir(dataset_id, version) /
                                    OBJECTS_FILE).read_text())
            except FileNotFoundError:
                return None
        return where["bucket"], where["prefix"]

    def _kept_version(self, dataset_id: str, version: int) -> tuple[Record, dict | None] | None:
        key = (dataset_id, version)
        with self._kept_lock:
            kept = self._kept.get(key)
        if kept is not None:
            return kept
        row = self.records.version(dataset_id, version)
        if row is None:
            return None
        kept = (Record.from_json(row[0]), row[1])
        with self._kept_lock:
            if len(self._kept) > 10_000:
                self._kept.clear()
            self._kept[key] = kept
        return kept

    def stac_document(self, release: Release, path: str) -> StacDocument | None:
        """A document of a release's static STAC tree as the database holds it; None: it is
        in the release's folder (`release.stac_dir`). FileNotFoundError if there is none."""
        return self.records.stac_file(release.number, path)

    def stac_paths(self, release: Release) -> list[str] | None:
        """The documents of a release's static STAC tree as the database holds them; None:
        they are in the release's folder."""
        return self.records.stac_paths(release.number)

    def current_records(self) -> list[Record]:
        """Records of every live dataset version, ordered by dataset id."""
        release = self.current()
        if release is None:
            return []
        return [self.record(i, v) for i, v in sorted(release.datasets.items())]

    def live_version(self, dataset_id: str) -> int | None:
        release = self.current()
        return release.datasets.get(dataset_id) if release else None

    def versions(self, dataset_id: str) -> list[int]:
        """Versions committed (released or not): folders on disk, and rows on PostgreSQL."""
        folder = self.home / "datasets" / dataset_id
        recorded = self.records.version_numbers(dataset_id)[0]
        if not folder.is_dir():
            return sorted(recorded)
        return sorted(recorded | {int(p.name) for p in folder.iterdir() if p.name.isdigit()})

    def version_folders(self) -> list[Path]:
        """Every version folder on disk, dataset by dataset (released or not)."""
        folder = self.home / "datasets"
        datasets = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        return [self.version_dir(dataset_id, version)
                for dataset_id in datasets for version in self.versions(dataset_id)]

    def released_versions(self, dataset_id: str) -> list[int]:
        """Versions that went live at some point and were not purged since."""
        purged = self.purged_versions(dataset_id)
        on_disk = set(self.versions(dataset_id))
        versions = {r.datasets[dataset_id] for r in self.live_releases()
                    if dataset_id in r.datasets}
        return sorted(v for v in versions if v in on_disk and v not in purged)

    def purged_versions(self, dataset_id: str) -> set[int]:
        path = self.home / "datasets" / dataset_id / PURGED_FILE
        recorded = self.records.version_numbers(dataset_id)[1]
        if not path.exists():
            return recorded
        return recorded | {int(v) for v in json.loads(path.read_text())["versions"]}

    # -- writing (only while holding the lock) -------------------------------------------

    @contextlib.contextmanager
    def lock(self, wait: bool = True) -> Iterator[None]:
        """Serialise publishers; the OS drops the lock if the holder dies.

        With wait=False, raise StoreBusy at once when another publish holds the lock
        (the stewards' API answers 409 rather than queueing requests).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(held_lock(self.home / "publish.lock", "publish", wait,
                                             self.database_url))
            except LockHeld as err:
                raise StoreBusy("another publish of this catalog is in progress") from err
            self._remove_debris()
            yield

    def new_staging(self, dataset_id: str) -> Path:
        folder = self.home / "datasets" / dataset_id / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        return folder

    def next_version(self, dataset_id: str) -> int:
        """The number a new version gets: above every folder and every purged number."""
        taken = set(self.versions(dataset_id)) | self.purged_versions(dataset_id)
        return max(taken, default=0) + 1

    def commit_version(self, dataset_id: str, staging: Path) -> int:
        """Make a staged version permanent as the next version number (its files put where
        they are served from first: a failure there commits nothing)."""
        self.assets.store_staged(staging)
        fsync_tree(staging)
        version = self.next_version(dataset_id)
        # PostgreSQL: the record is kept in the database, before any release can name it.
        self.records.add_version(dataset_id, version, staging)
        target = self.version_dir(dataset_id, version)
        os.rename(staging, target)
        fsync_path(target.parent)
        return version

    def next_release_number(self) -> int:
        """Above every release recorded and every release folder on disk, so a folder a
        crash left is never in the way."""
        current = self.current()
        return max([*self.release_numbers(), *self._release_folders(),
                    current.number if current else 0]) + 1

    def switch(self, datasets: dict[str, int], build_stac: Callable[[Path], None],
               number: int | None = None, audit_head: dict | None = None) -> Release:
        """Write a new release with the given dataset versions and make it live atomically.

        audit_head, the audit chain's head at this switch's intent entry, is kept in
        release.json, outside the audit database, so a truncated chain shows.
        """
        releases = self.home / "releases"
        releases.mkdir(parents=True, exist_ok=True)
        current = self.current()
        number = number or self.next_release_number()
        staging = releases / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        state = {"release": number, "datasets": dict(sorted(datasets.items())),
                 "previous": current.number if current else None}
        if audit_head is not None:
            state["audit"] = audit_head
        self.records.prepare(staging, state)
        build_stac(staging / "stac")
        fsync_tree(staging)
        final = releases / str(number)
        os.rename(staging, final)  # refuses to replace a folder: numbers are never reused
        fsync_path(releases)
        self.records.go_live(number, state)
        return Release(number, state["datasets"], final, state["previous"], audit_head)

    def purge_version(self, dataset_id: str, version: int) -> dict:
        """Remove every file and reference of a version that is not live (a legal takedown).

        The version is marked purged first, so it counts as gone even if this is interrupted,
        and running it again finishes the job. Returns what was removed.
        """
        self.check_purgeable(dataset_id, version)
        where = self.version_objects(dataset_id, version)
        self._mark_purged(dataset_id, version)
        with self._kept_lock:
            self._kept.pop((dataset_id, version), None)
        releases = self._remove_release_references(dataset_id, version)
        files, size = self._remove_version_folder(dataset_id, version)
        if where is not None and self.database_url:
            # Published from another node's home: its objects by the database's prefix, and
            # this node's cached copy.
            files += self.assets.remove_prefix(*where)
            shutil.rmtree(self.versions_cache / dataset_id / str(version), ignore_errors=True)
        return {"files": files, "bytes": size, "releases_rewritten": releases}

    def check_purgeable(self, dataset_id: str, version: int) -> None:
        """Raise StoreRefused unless the version exists (or a purge of it was interrupted)
        and is not live."""
        if version == self.live_version(dataset_id):
            raise StoreRefused(f"version {version} of {dataset_id} is live: withdraw the "
                               "dataset or roll back to another version first")
        known = (version in self.versions(dataset_id) or
                 version in self.purged_versions(dataset_id) or
                 any(self.release(n).datasets.get(dataset_id) == version
                     for n in self.release_numbers()))
        if not known:
            raise StoreRefused(f"{dataset_id} has no version {version}")

    def _mark_purged(self, dataset_id: str, version: int) -> None:
        if self.database_url:
            self.records.mark_purged(dataset_id, version)
            return
        purged = self.purged_versions(dataset_id) | {version}
        atomic_write(self.home / "datasets" / dataset_id / PURGED_FILE,
                     json.dumps({"versions": sorted(purged)}))

    def _remove_release_references(self, dataset_id: str, version: int) -> list[int]:
        """Drop the version from every release.json and static STAC tree that holds it, so
        nothing lists it and nothing can roll back to it."""
        rewritten = []
        self.records.purge_stac(dataset_id, version)
        for number in self.release_numbers():
            folder = self.home / "releases" / str(number)
            state = self.records.read(number)
            if state["datasets"].get(dataset_id) == version:
                del state["datasets"][dataset_id]
                state.setdefault("purged", []).append({"dataset": dataset_id,
                                                       "version": version})
                self.records.rewrite(number, state)
                rewritten.append(number)
            for collection in folder.glob(f"stac/*/{dataset_id}/collection.json"):
                if json.loads(collection.read_text()).get("version") == str(version):
                    _unlink_stac_child(collection.parent.parent / "catalog.json", dataset_id)
                    shutil.rmtree(collection.parent)
        return rewritten

    def _remove_version_folder(self, dataset_id: str, version: int) -> tuple[int, int]:
        folder = self.version_dir(dataset_id, version)
        if not folder.exists():
            return 0, 0
        files = [p for p in folder.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        self.assets.remove_objects(folder)  # before the folder that says where they are
        # Renamed away first: readers stop finding it at once; a crash leaves debris only.
        doomed = folder.with_name(f"{PURGING_PREFIX}{version}-{uuid.uuid4().hex}")
        os.rename(folder, doomed)
        fsync_path(folder.parent)
        shutil.rmtree(doomed)
        return len(files), size

    def _remove_debris(self) -> None:
        """Remove what an interrupted operation left: staging folders, temporary files,
        releases that never went live and versions only they referenced. Never anything
        that went live: that is for a purge alone."""
        current = self.current()  # raises if current.json names a missing release: stop
        for pattern in (f"datasets/*/{STAGING_PREFIX}*", f"releases/{STAGING_PREFIX}*",
                        f"datasets/*/{PURGING_PREFIX}*"):
            for folder in self.home.glob(pattern):
                self._remove_debris_folder(folder)
        for temporary in self.home.glob(".current.json.*"):
            temporary.unlink(missing_ok=True)
        for number in self._orphan_releases(current):
            shutil.rmtree(self.home / "releases" / str(number), ignore_errors=True)
        referenced = self._versions_in_releases()
        for folder in self.home.glob("datasets/*/*"):
            dataset_id = folder.parent.name
            # Only above every referenced version: how a crash between a version's commit
            # and its release leaves one. Anything else is left alone, whatever it is.
            if folder.name.isdigit() and int(folder.name) > max(referenced.get(dataset_id,
                                                                               {0})):
                self._remove_debris_folder(folder)
        # PostgreSQL: a version committed (from any home) but never released is debris too,
        # as its folder is: its number is used again, its objects go.
        for dataset_id in self.records.version_datasets():
            recorded = self.records.version_numbers(dataset_id)[0]
            for version in sorted(recorded):
                if version > max(referenced.get(dataset_id, {0})):
                    self._remove_debris_version(dataset_id, version)

    def _remove_debris_folder(self, folder: Path) -> None:
        """A folder that never went live, and its uploads where they are elsewhere (kept,
        invisible, if the object store does not answer now)."""
        with contextlib.suppress(AssetUnavailable):
            self.assets.remove_objects(folder)
        shutil.rmtree(folder, ignore_errors=True)

    def _remove_debris_version(self, dataset_id: str, version: int) -> None:
        """A version's row that no release names (a publish killed between its commit and
        its switch), and its uploads (kept, invisible, if the store does not answer now)."""
        where = self.version_objects(dataset_id, version)
        if where is not None:
            with contextlib.suppress(AssetUnavailable):
                self.assets.remove_prefix(*where)
        self.records.remove_version(dataset_id, version)
        with self._kept_lock:
            self._kept.pop((dataset_id, version), None)

    def _orphan_releases(self, current: Release | None) -> list[int]:
        """Release folders made on top of the current one that never became current: with
        no record (the database records a release only as it goes live), or recorded on top
        of the live one (a crash between release.json and current.json)."""
        live = current.number if current else None
        recorded = set(self.release_numbers())
        return [number for number in self._release_folders()
                if number > (live or 0)
                and (number not in recorded or self.release(number).previous == live)]

    def _versions_in_releases(self) -> dict[str, set[int]]:
        referenced: dict[str, set[int]] = {}
        for number in self.release_numbers():
            for dataset_id, version in self.release(number).datasets.items():
                referenced.setdefault(dataset_id, set()).add(version)
        return referenced


def _unlink_stac_child(catalog_path: Path, dataset_id: str) -> None:
    """Drop a dataset's child link from a theme catalog of a static STAC tree."""
    catalog = json.loads(catalog_path.read_text())
    target = f"./{dataset_id}/collection.json"
    links = [link for link in catalog["links"]
             if not (link.get("rel") == "child" and link.get("href") == target)]
    if len(links) != len(catalog["links"]):
        catalog["links"] = links
        atomic_write(catalog_path, json.dumps(catalog, indent=2, ensure_ascii=False))
