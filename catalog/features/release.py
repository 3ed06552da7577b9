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

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from catalog import settings
from catalog.core.assets import AssetLocator
from catalog.core.record import Record
from catalog.features.geopackage import GeoPackageFeatureStore
from catalog.features.postgis import PostgisFeatureStore
from catalog.features.store import FeatureStore, FeatureStoreError
from catalog.store import CatalogStore
from catalog.store.watch import ReleaseWatch

LOGGER = logging.getLogger(__name__)
COLUMN_CACHE = "columns"  # below the node's cache folder
StoreOpener = Callable[[Record, AssetLocator], FeatureStore]


def default_opener(column_cache: Path | None = None) -> StoreOpener:
    """PostGIS tables with TAZA_DATABASE_URL, the GeoPackages without; large layers of either
    keep their column arrays below `column_cache`, shared by the workers
    (catalog/core/columns.py)."""
    url = settings.database_url()
    if url:
        return PostgisFeatureStore.opener(url, column_cache)
    return lambda record, assets: GeoPackageFeatureStore.for_record(record, assets, column_cache)


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
        self.open_store = open_store or default_opener(
            settings.cache_dir(catalog.home) / COLUMN_CACHE)
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
                self._live = self._build(number)
                self._built = True
                self._built_at = time.monotonic()
        return self._live

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
