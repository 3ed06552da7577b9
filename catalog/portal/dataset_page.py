"""What a dataset page shows: metadata in one language, versions, extents, downloads, URLs."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from catalog.core.assets import AssetLocator
from catalog.core.languages import FALLBACK_LANGUAGE
from catalog.core.record import Record
from catalog.metadata.links import CatalogUrls
from catalog.portal import clip
from catalog.portal.i18n import pick
from catalog.portal.layers import time_steps
from catalog.store import CatalogStore

MAX_ITEMS = 10_000  # the OGC API's page limit (config/pygeoapi.base.yml limits.max_items)
SPDX_URL = "https://spdx.org/licenses/{}.html"


def build(store: CatalogStore, dataset_id: str, language: str, public_url: str) -> dict | None:
    """The page's content, or None when the dataset is not in the live release."""
    release = store.current()
    if release is None or dataset_id not in release.datasets:
        return None
    record = store.record(dataset_id, release.datasets[dataset_id])
    manifest = record.manifest
    page = {
        "id": dataset_id,
        "record": record,
        "kind": record.kind,
        "title": pick(manifest.title, language),
        "description": pick(manifest.description, language),
        "keywords": _keywords(manifest.keywords, language),
        "nature": manifest.nature,
        "limitations": manifest.provenance.limitations,
        "licence": _licence(manifest.licence),
        "versions": _versions(store, record),
        "temporal": manifest.temporal_extent.as_json(),
        "bbox": list(record.bbox),
        "downloads": _downloads(record, store.assets),
        "public_url": public_url,
        "ogc_url": f"{public_url}/ogc",
        "collection_url": f"{public_url}/ogc/collections/{dataset_id}",
        "stac_url": _stac_url(store.stac_paths(release), release.stac_dir, dataset_id,
                              public_url),
        "map_link": _map_link(record, language),
        "metadata": _metadata_links(dataset_id, public_url),
    }
    if record.kind == "raster":
        page["clip"] = _clip_choices(store, record, language)
    if record.is_vector:
        page["csv"] = _csv_download(record)
        page["subset_example"] = _subset_example(record, public_url)
    return page


def regions_path(store: CatalogStore) -> str | None:
    """The GeoPackage of the live dataset with role `regions` (the oblasts), if any."""
    regions = next((r for r in store.current_records() if r.role == "regions"), None)
    return None if regions is None else store.assets.gdal_path(regions,
                                                               regions.asset("geopackage"))


def _clip_choices(store: CatalogStore, record: Record, language: str) -> dict:
    """What the clip form offers (catalog.portal.clip): the regions by name in the page's
    language, and a time series' steps."""
    regions = [{"code": r["code"], "name": r["name"]} for r in clip_regions(store, language)]
    return {"regions": regions, "steps": time_steps(record),
            "href": f"/portal/clip/{record.id}",
            "draw_link": _map_link(record, language) + f"&clip={record.id}"}


def clip_regions(store: CatalogStore, language: str) -> list[dict]:
    """The regions a raster clip can be cut to, by name in the page's language (sorted), with
    their ISO 3166-2 code and bounding box in WGS 84 degrees (west, south, east, north)."""
    path = regions_path(store)
    outlines = clip.region_outlines(path) if path else {}
    return sorted(({"code": code, "name": names[language],
                    "bbox": [round(v, 5) for v in outline.bounds]}
                   for code, (names, outline) in outlines.items()), key=lambda r: r["name"])


def _keywords(keywords: dict | list | None, language: str) -> list[str]:
    if isinstance(keywords, dict):
        return list(keywords.get(language) or keywords.get(FALLBACK_LANGUAGE) or [])
    return list(keywords or [])


def _licence(licence: str) -> dict:
    if licence.startswith(("http://", "https://")):
        return {"name": urllib.parse.urlparse(licence).netloc, "url": licence}
    return {"name": licence, "url": SPDX_URL.format(licence)}


def _versions(store: CatalogStore, live: Record) -> list[dict]:
    """Only the live version is public: earlier ones were taken down by a rollback (their
    stewards still reach them through /api)."""
    return [{"number": live.version, "published_at": live.published, "live": True,
             "files": [{"file": asset.file, "href": store.assets.url(live, asset)}
                       for asset in live.assets]}]


def _downloads(record: Record, assets: AssetLocator) -> list[dict]:
    return [{"title": asset.title, "file": asset.file, "href": assets.url(record, asset),
             "size": asset.size, "media_type": asset.media_type,
             "checksum": asset.checksum} for asset in record.assets]


def _csv_download(record: Record) -> dict:
    count = record.vector.feature_count
    limit = max(1, min(count, MAX_ITEMS))
    return {"href": f"/ogc/collections/{record.id}/items?f=csv&limit={limit}",
            "capped": count > MAX_ITEMS, "limit": limit}


def _subset_example(record: Record, public_url: str) -> dict:
    """A filtered-subset URL built from the layer's first numeric (else text) field."""
    fields = record.vector.fields
    numeric = [name for name, kind in fields.items() if kind.startswith(("int", "float"))]
    text = [name for name, kind in fields.items() if kind.startswith("str")]
    if numeric:
        expression = f"{numeric[0]} > 0"
    elif text:
        expression = f"{text[0]} IS NOT NULL"
    else:
        expression = "1 = 1"
    query = urllib.parse.urlencode({"filter": expression, "limit": 100})
    base = f"{public_url}/ogc/collections/{record.id}/items"
    return {"expression": expression, "json": f"{base}?f=json&{query}",
            "csv": f"{base}?f=csv&{query}"}


def _metadata_links(dataset_id: str, public_url: str) -> dict:
    """The dataset's metadata for other catalogues (catalog/discovery serves them)."""
    urls = CatalogUrls(public_url)
    return {"dcat": urls.dataset_dcat(dataset_id), "iso": urls.dataset_iso(dataset_id),
            "record": urls.record(dataset_id)}


def _stac_url(kept: list[str] | None, stac_dir: Path, dataset_id: str,
             public_url: str) -> str | None:
    """The collection in the STAC API (docs/stac-api.md), if the static tree has it (the
    database's copy of the tree when it keeps one, else the release's folder)."""
    if kept is not None:
        found = any(len(parts) == 3 and parts[1:] == [dataset_id, "collection.json"]
                    for parts in (path.split("/") for path in kept))
    else:
        found = any(stac_dir.glob(f"*/{dataset_id}/collection.json"))
    return f"{public_url}/stac/collections/{dataset_id}" if found else None


def _map_link(record: Record, language: str) -> str:
    """The map, in the page's language, centred on the dataset with its layer on."""
    west, south, east, north = record.bbox
    return (f"/?lang={language}#map=6/{(south + north) / 2:.4f}/{(west + east) / 2:.4f}"
            f"&layers={record.id}")
