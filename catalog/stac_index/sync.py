"""Keep the STAC index in step with the live release, touching only what changed.

The release is the source of truth; the index is derived data. `apply_release` runs right after a
publish switches the release (catalog.publish) and re-indexes only the datasets whose live
version differs from what the index holds. If it did not run (an index created later, a crash
between the switch and the update), `ensure_current` does the same on the API's first request.
"""

from __future__ import annotations

import logging
from pathlib import Path

from catalog import settings
from catalog.core.operator_texts import OperatorTexts, warn_operator
from catalog.stac_index.backend import StacBackend
from catalog.stac_index.documents import dataset_documents
from catalog.stac_index.pgstac_backend import PgstacBackend
from catalog.stac_index.sqlite_backend import SqliteBackend
from catalog.store import CatalogStore, Release

INDEX_FILE = "stac-index.sqlite"
LOGGER = logging.getLogger(__name__)
SAY = OperatorTexts(Path(__file__).with_name("texts.yml"))


def index_path(store: CatalogStore) -> Path:
    return store.home / INDEX_FILE


def open_index(store: CatalogStore) -> StacBackend:
    """pgstac in TAZA_DATABASE_URL's database when set (its schema installed or upgraded on
    first use in this process), else the SQLite file in the catalog's home."""
    url = settings.database_url()
    return PgstacBackend(url) if url else SqliteBackend(index_path(store))


def update(store: CatalogStore, backend: StacBackend, release: Release | None) -> bool:
    """Bring the index to `release` (None: empty). Returns whether anything was written."""
    number = release.number if release else 0
    for _ in range(3):  # another process may move the index meanwhile: re-read and retry
        indexed = backend.indexed_release()
        if indexed == number:
            return False
        live = release.datasets if release else {}
        held = backend.indexed_versions()
        changed = sorted(d for d, v in live.items() if held.get(d) != v)
        removed = sorted(set(held) - set(live))
        upserts = [(d, live[d], *dataset_documents(store.record(d, live[d]), store.assets))
                   for d in changed]
        if backend.apply(number, upserts, removed, expected_release=indexed):
            return True
    raise RuntimeError("the STAC index kept changing under this update")


def apply_release(store: CatalogStore, release: Release) -> None:
    """After a release switch: index what changed. Never fails the publish (the release is
    already live; the API catches up on its next request), but says so on stderr."""
    try:
        update(store, open_index(store), release)
    except Exception as err:  # derived data: report, do not undo a published release
        warn_operator(SAY, "index_not_updated", LOGGER, reason=err)
        LOGGER.debug("STAC index update failed", exc_info=True)


def scrub(store: CatalogStore) -> None:
    """After a purge: nothing of the purged version may remain readable in the index file."""
    open_index(store).scrub()


def ensure_current(store: CatalogStore, backend: StacBackend, release: Release | None) -> None:
    """Catch up with `release` (the live one) if the index is behind (or ahead, after a
    restore)."""
    if backend.indexed_release() != (release.number if release else 0):
        update(store, backend, release)
