"""The live release as the feature services see it: its records and a FeatureStore for each
vector layer, one instance per worker, swapped when a new release goes live.

A published version never changes, so a store is opened once per (dataset, version) and kept
while that version is live: nothing is re-read per request. `LiveFeatures()` asks the worker's
release watch (catalog/store/watch.py: current.json read at most once a second for every
service) and, on a new release, builds the next `LiveRelease`, reusing the stores of versions
that stayed live.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from catalog.core.assets import AssetLocator
from catalog.core.record import Record
from catalog.features.geopackage import GeoPackageFeatureStore
from catalog.features.store import FeatureStore, FeatureStoreError
from catalog.store import CatalogStore
from catalog.store.watch import ReleaseWatch

LOGGER = logging.getLogger(__name__)
StoreOpener = Callable[[Record, AssetLocator], FeatureStore]


@dataclass(frozen=True)
class LiveRelease:
    """One release: every live record (in release order) and the vector layers' stores."""

    number: int | None
    records: tuple[Record, ...] = ()
    stores: Mapping[str, FeatureStore] = field(default_factory=dict)

    def record(self, dataset_id: str) -> Record | None:
        return next((r for r in self.records if r.id == dataset_id), None)

    def store(self, dataset_id: str) -> FeatureStore | None:
        """The FeatureStore of a live vector layer (None for rasters and unknown ids)."""
        return self.stores.get(dataset_id)


class LiveFeatures:
    """Callable: the LiveRelease of the live release, as the release watch reports it."""

    def __init__(self, catalog: CatalogStore,
                 open_store: StoreOpener = GeoPackageFeatureStore.for_record,
                 watch: ReleaseWatch | None = None):
        self.catalog = catalog
        self.open_store = open_store
        self.watch = watch or catalog.watch
        self._live = LiveRelease(None)
        self._built = False
        self._lock = threading.Lock()

    def __call__(self, fresh: bool = False) -> LiveRelease:
        """`fresh`: read current.json now, for a caller that has just seen a new release and
        must describe the same one (the /ogc OpenAPI document)."""
        number = self.watch.number(fresh)
        if self._built and number == self._live.number:
            return self._live
        with self._lock:
            if not self._built or number != self._live.number:
                self._live = self._build(number)
                self._built = True
        return self._live

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
                    continue
            stores[record.id] = store
        LOGGER.info("release %s: %d feature stores", number, len(stores))
        return LiveRelease(number, records, stores)
