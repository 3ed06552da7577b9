"""An OGC API - Records service: every record of its record collections (`itemType: record`)
is a dataset. The URL is the API's root (the one whose /collections lists them), as for OGC
API - Features; records are paged through `rel=next` links, bounded like collections."""

from __future__ import annotations

from collections.abc import Iterator

from catalog.harvest import remote
from catalog.harvest.fetch import Fetcher, FetchError
from catalog.harvest.kinds import collections
from catalog.harvest.remote import RemoteDataset

PAGE_SIZE = 100


class OgcApiRecordsKind:
    name = "ogcapi-records"

    def datasets(self, fetcher: Fetcher, url: str) -> Iterator[RemoteDataset]:
        base = url.rstrip("/")
        seen = 0
        for collection in collections.collections(fetcher, f"{base}/collections",
                                                  {"f": "json"}):
            if collection.get("itemType") != "record":
                continue
            items = f"{base}/collections/{collection['id']}/items"
            for record in _records(fetcher, items):
                seen += 1
                if seen > remote.MAX_DATASETS:
                    return
                yield _dataset(record, items)


def _records(fetcher: Fetcher, url: str) -> Iterator[dict]:
    page_url, params = url, {"f": "json", "limit": PAGE_SIZE}
    for _ in range(collections.MAX_PAGES):
        document = fetcher.json(page_url, params)
        if not isinstance(document, dict) or not isinstance(document.get("features"), list):
            raise FetchError(f"{page_url}: no 'features' list of records", code="no_records",
                             params={"url": page_url})
        yield from (record for record in document["features"]
                    if isinstance(record, dict) and isinstance(record.get("id"), str))
        page_url = collections.next_link(document, page_url)
        if page_url is None:
            return
        params = None  # the next link carries its own query


def _dataset(entry: dict, items_url: str) -> RemoteDataset:
    properties = entry.get("properties") if isinstance(entry.get("properties"), dict) else {}
    record_url = f"{items_url}/{entry['id']}"
    interval = (entry.get("time") or {}).get("interval") \
        if isinstance(entry.get("time"), dict) else None
    start, end = interval if isinstance(interval, list) and len(interval) == 2 else (None, None)
    contacts = properties.get("contacts")
    publisher = next((remote.text(c.get("organization") or c.get("name"), 200)
                      for c in contacts if isinstance(c, dict)
                      and (c.get("organization") or c.get("name"))), None) \
        if isinstance(contacts, list) else None
    return RemoteDataset(
        remote_id=remote.text(entry["id"], 200),
        title=remote.text(properties.get("title"), remote.MAX_TITLE),
        description=remote.text(properties.get("description")),
        landing_url=collections.landing_url(entry, record_url),
        keywords=remote.keywords(properties.get("keywords")),
        licence=collections.licence({"license": properties.get("license"),
                                     "links": entry.get("links")}),
        attribution=remote.text(properties.get("rights"), 500) or None,
        bbox=remote.bbox(_bounds(entry.get("geometry")) or entry.get("bbox")),
        start=remote.date(start), end=remote.date(end),
        publisher=publisher, extra={"kind": "ogcapi-records", "record": record_url})


def _bounds(geometry: object) -> list[float] | None:
    """[west, south, east, north] of a GeoJSON Polygon's outer ring (a record's footprint)."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        return None
    rings = geometry.get("coordinates")
    ring = rings[0] if isinstance(rings, list) and rings and isinstance(rings[0], list) else []
    points = [p for p in ring[:1000] if isinstance(p, list) and len(p) >= 2
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p[:2])]
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]
