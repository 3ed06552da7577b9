"""An OGC API - Features service: its feature collections are the datasets (coverages and
other collections it lists are left to other kinds)."""

from __future__ import annotations

from collections.abc import Iterator

from catalog.harvest.fetch import Fetcher
from catalog.harvest.kinds import collections
from catalog.harvest.remote import RemoteDataset


class OgcApiFeaturesKind:
    name = "ogcapi-features"

    def datasets(self, fetcher: Fetcher, url: str) -> Iterator[RemoteDataset]:
        base = url.rstrip("/")
        for collection in collections.collections(fetcher, f"{base}/collections",
                                                  {"f": "json"}):
            if collection.get("itemType", "feature") != "feature" or \
                    collection.get("layerDataType") in ("Raster", "Coverage"):
                continue
            items = f"{base}/collections/{collection['id']}/items"
            yield collections.dataset(collection, f"{base}/collections/{collection['id']}",
                                      kind="ogcapi-features", items=items)
