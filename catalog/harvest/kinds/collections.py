"""Reading OGC API / STAC collection documents (`/collections`), shared by the STAC and the
OGC API - Features kinds: both describe a dataset as a collection with id, title,
description, keywords, licence and extent, and page the list through `rel=next` links."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urljoin

from catalog.harvest import remote
from catalog.harvest.fetch import Fetcher, FetchError, check_url

MAX_PAGES = 20
SPDX_SPECIAL = {"proprietary", "other", "various"}  # STAC's words for "see the links"


def collections(fetcher: Fetcher, url: str, params: dict | None = None) -> Iterator[dict]:
    """Every collection document listed at `url` (following `next` links, bounded)."""
    page_url, seen = url, 0
    for _ in range(MAX_PAGES):
        document = fetcher.json(page_url, params)
        if not isinstance(document, dict) or not isinstance(document.get("collections"), list):
            raise FetchError(f"{page_url}: no 'collections' list", code="no_collections",
                             params={"url": page_url})
        for collection in document["collections"]:
            if isinstance(collection, dict) and isinstance(collection.get("id"), str):
                seen += 1
                if seen > remote.MAX_DATASETS:
                    return
                yield collection
        page_url = next_link(document, page_url)
        if page_url is None:
            return
        params = None  # the next link carries its own query


def next_link(document: dict, base: str) -> str | None:
    for link in links(document):
        if link.get("rel") == "next" and isinstance(link.get("href"), str):
            return check_url(urljoin(base, link["href"]))
    return None


def links(document: dict) -> list[dict]:
    found = document.get("links")
    return [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []


def landing_url(collection: dict, fallback: str) -> str:
    """The collection's HTML page when it links one, else its JSON document."""
    for wanted in ("text/html", None):
        for link in links(collection):
            href = link.get("href")
            if link.get("rel") in ("alternate", "self") and isinstance(href, str) and \
                    (wanted is None or link.get("type") == wanted) and \
                    href.startswith(("http://", "https://")):
                return href
    return fallback


def licence(collection: dict) -> str | None:
    """An SPDX id from `license`, else the https URL of a `license` link."""
    declared = remote.text(collection.get("license"), 100)
    if declared and declared.lower() not in SPDX_SPECIAL and " " not in declared:
        return declared
    for link in links(collection):
        href = link.get("href")
        if link.get("rel") == "license" and isinstance(href, str) and href.startswith("https://"):
            return href[:500]
    return None


def dataset(collection: dict, collection_url: str, **extra) -> remote.RemoteDataset:
    extent = collection.get("extent") if isinstance(collection.get("extent"), dict) else {}
    spatial = extent.get("spatial") if isinstance(extent.get("spatial"), dict) else {}
    temporal = extent.get("temporal") if isinstance(extent.get("temporal"), dict) else {}
    interval = temporal.get("interval")
    first = interval[0] if isinstance(interval, list) and interval and \
        isinstance(interval[0], list) and len(interval[0]) == 2 else [None, None]
    providers = collection.get("providers")
    publisher = next((remote.text(p.get("name"), 200) for p in providers
                      if isinstance(p, dict) and p.get("name")), None) \
        if isinstance(providers, list) else None
    return remote.RemoteDataset(
        remote_id=remote.text(collection["id"], 200),
        title=remote.text(collection.get("title"), remote.MAX_TITLE),
        description=remote.text(collection.get("description")),
        landing_url=landing_url(collection, collection_url),
        keywords=remote.keywords(collection.get("keywords")),
        licence=licence(collection),
        attribution=remote.text(collection.get("attribution"), 500) or None,
        bbox=remote.bbox(spatial.get("bbox")),
        start=remote.date(first[0]), end=remote.date(first[1]),
        publisher=publisher, extra=extra)
