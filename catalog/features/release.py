"""The live release as the feature services see it: its records and a FeatureStore for each
vector layer, one instance per worker, swapped when a new release goes live.

A published version never changes, so a store is opened once per (dataset, version) and kept
while that version is live: nothing is re-read per request. `LiveFeatures()` asks the worker's
release watch (catalog/store/watch.py: current.json read at most once a second for every
service) and, on a new release, builds the next `LiveRelease`, reusing the stores of versions
that stayed live.

Which store serves a version follows the settings (`default_opener`): its PostGIS table when
TAZA_DATABASE_URL is set (catalog/features/postgis.py), else its GeoPackage.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from catalog import settings
from catalog.core.assets import AssetLocator
from catalog.core.record import Record
from catalog.features.geopackage import GeoPackageFeatureStore
from catalog.features.postgis import PostgisFeatureStore
from catalog.features.store import FeatureStore, FeatureStoreError
from catalog.store import CatalogStore
from catalog.store.release_records import RecordsUnavailable, ReleaseMissing
from catalog.store.watch import ReleaseWatch

LOGGER = logging.getLogger(__name__)
COLUMN_CACHE = "columns"  # below the node's cache folder
StoreOpener = Callable[[Record, AssetLocator], FeatureStore]


def default_opener(column_cache: Path | None = None) -> StoreOpener:
    """PostGIS tables with TAZA_DATABASE_URL, the GeoPackages without; large layers of either
    keep their column arrays below `column_cache`, in a folder per version
    (`column_folder`), shared by the workers (catalog/core/columns.py)."""
    url = settings.database_url()
    if url:
        return lambda record, _assets: PostgisFeatureStore.for_record(
            record, url, column_folder(column_cache, record))
    return lambda record, assets: GeoPackageFeatureStore.for_record(
        record, assets, column_folder(column_cache, record))


def column_folder(column_cache: Path | None, record: Record) -> Path | None:
    """`<column_cache>/<dataset>/<version>`: where the arrays of one version's large layer
    are kept, so those of versions no longer live can be found and removed."""
    return None if column_cache is None else column_cache / record.id / str(record.version)


def prune_column_cache(column_cache: Path, keep: Iterable[tuple[str, int]]) -> list[Path]:
    """Remove every folder below `column_cache` that holds no version of `keep` (dataset id,
    version): versions no longer live, datasets withdrawn, folders of the older flat layout.
    A worker still serving a removed version keeps its memory-mapped arrays (the pages stay
    until it unmaps them), and a worker that needs them again reads them from the engine."""
    kept = {(dataset, str(version)) for dataset, version in keep}
    live_datasets = {dataset for dataset, _ in kept}
    removed = []
    for entry in _entries(column_cache):
        if entry.name not in live_datasets or not entry.is_dir():
            removed.append(entry)
            continue
        removed += [v for v in _entries(entry) if (entry.name, v.name) not in kept]
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return removed


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:  # not made yet, or removed by another worker meanwhile
        return []


@dataclass(frozen=True)
class LiveRelease:
    """One release: every live record (in release order) and the vector layers' stores."""

    number: int | None
    records: tuple[Record, ...] = ()
    stores: Mapping[str, FeatureStore] = field(default_factory=dict)
    unopened: tuple[str, ...] = ()  # vector layers whose store failed to open (tried again)

    def record(self, dataset_id: str) -> Record | None:
        return next((r for r in self.records if r.id == dataset_id), None)

    def store(self, dataset_id: str) -> FeatureStore | None:
        """The FeatureStore of a live vector layer (None for rasters and unknown ids)."""
        return self.stores.get(dataset_id)


class LiveFeatures:
    """Callable: the LiveRelease of the live release, as the release watch reports it."""

    def __init__(self, catalog: CatalogStore,
                 open_store: StoreOpener | None = None,
                 watch: ReleaseWatch | None = None):
        self.catalog = catalog
        # The node's column arrays, pruned of versions no longer live each time this worker
        # moves to a new release (None with a caller's own opener: nothing is pruned).
        self.column_cache = None if open_store else \
            settings.cache_dir(catalog.home) / COLUMN_CACHE
        self.open_store = open_store or default_opener(self.column_cache)
        self.pruning: threading.Thread | None = None  # the last prune (tests join it)
        self.watch = watch or catalog.watch
        self._live = LiveRelease(None)
        self._built = False
        self._built_at = 0.0
        self._lock = threading.Lock()

    def __call__(self, fresh: bool = False) -> LiveRelease:
        """`fresh`: read current.json now, for a caller that has just seen a new release and
        must describe the same one (the /ogc OpenAPI document)."""
        number = self.watch.number(fresh)
        if self._built and number == self._live.number and not self._retry_due():
            return self._live
        with self._lock:
            if not self._built or number != self._live.number or self._retry_due():
                moved = not self._built or number != self._live.number
                self._live = self._build(number)
                self._built = True
                self._built_at = time.monotonic()
                if moved:
                    self._prune_in_background(self._live)
        return self._live

    def _prune_in_background(self, built: LiveRelease) -> None:
        """Remove the column arrays of versions live neither in `built` nor in the release
        live now (read again: another worker may be a release ahead), in a thread: a
        10-million-row layer's folder is about 950 MB, and no request waits for its unlink."""
        if self.column_cache is None or built.number is None:
            return

        def prune() -> None:
            try:
                keep = {(r.id, r.version) for r in (*built.records,
                                                     *self.catalog.current_records())}
            except (RecordsUnavailable, ReleaseMissing, OSError) as err:
                LOGGER.warning("column cache not pruned: %s", err)  # next release, again
                return
            removed = prune_column_cache(self.column_cache, keep)
            if removed:
                LOGGER.info("column cache: removed %s", ", ".join(
                    str(p.relative_to(self.column_cache)) for p in removed))

        self.pruning = threading.Thread(target=prune, name="taza-column-prune", daemon=True)
        self.pruning.start()

    def _retry_due(self) -> bool:
        """Stores that failed to open (a database not up yet) are tried again once per watch
        interval, not on every request."""
        return bool(self._live.unopened) and \
            time.monotonic() - self._built_at >= self.watch.interval

    def store_of(self, record: Record) -> FeatureStore:
        """The store of a vector record: the live one when that version is live, else a new
        one (a version taken down is not served, but callers may hold its record)."""
        live = self().stores.get(record.id)
        if live is not None and self._versions.get(record.id) == record.version:
            return live
        return self.open_store(record, self.catalog.assets)

    @property
    def _versions(self) -> dict[str, int]:
        return {r.id: r.version for r in self._live.records}

    def _build(self, number: int | None) -> LiveRelease:
        records = tuple(self.catalog.current_records()) if number is not None else ()
        previous = {(r.id, r.version): self._live.stores.get(r.id)
                    for r in self._live.records}
        stores: dict[str, FeatureStore] = {}
        unopened: list[str] = []
        for record in records:
            if not record.is_vector:
                continue
            store = previous.get((record.id, record.version))
            if store is None:
                try:
                    store = self.open_store(record, self.catalog.assets)
                except FeatureStoreError as err:  # its routes answer 500 and say so in the log
                    LOGGER.error("%s version %s cannot be served: %s", record.id,
                                 record.version, err)
                    unopened.append(record.id)
                    continue
            stores[record.id] = store
        LOGGER.info("release %s: %d feature stores", number, len(stores))
        return LiveRelease(number, records, stores, tuple(unopened))
