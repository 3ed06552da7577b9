"""A STAC API (or a catalog's /stac): its collections are the datasets."""

from __future__ import annotations

from collections.abc import Iterator

from catalog.harvest import remote
from catalog.harvest.fetch import Fetcher
from catalog.harvest.kinds import collections
from catalog.harvest.remote import RemoteDataset


class StacKind:
    name = "stac"

    def datasets(self, fetcher: Fetcher, url: str) -> Iterator[RemoteDataset]:
        base = url.rstrip("/")
        for collection in collections.collections(fetcher, f"{base}/collections"):
            yield collections.dataset(
                collection, f"{base}/collections/{collection['id']}", kind="stac",
                stac_version=remote.text(collection.get("stac_version"), 20),
                items=f"{base}/collections/{collection['id']}/items")
