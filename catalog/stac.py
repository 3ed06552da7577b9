"""STAC objects from published dataset records, built with pystac.

Tree (served at /stac): catalog.json -> one catalog per theme -> one collection per dataset
-> its items. Asset hrefs are relative links to the immutable, versioned asset URLs
(/assets/<dataset>/<version>/<file>), so the static catalog works under any host or prefix.

Extensions (one fixed set, checked in tests): projection v1.1.0, raster v1.1.0, file v2.1.0,
version v1.2.0, processing v1.2.0, table v1.2.0. Russian and Kyrgyz texts go in
`taza:translations` (see docs/metadata.md), the English ones in the core fields.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pystac
from pystac.extensions.file import FileExtension
from pystac.extensions.raster import RasterBand, RasterExtension, Statistics
from pystac.extensions.version import VersionExtension

from catalog import __version__
from catalog.manifest import licence_url

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
PROJECTION_SCHEMA = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
TABLE_SCHEMA = "https://stac-extensions.github.io/table/v1.2.0/schema.json"
HOST = pystac.Provider("Taza Koom open geodata catalog", roles=[pystac.ProviderRole.HOST])
ROOT_ID = "taza-koom"
# Where the static tree and the assets sit relative to each other in URL space.
VIRTUAL_ROOT = Path("/taza-virtual")


def build_catalog(records: list[dict], themes: dict) -> pystac.Catalog:
    """The root catalog over every live dataset, grouped by theme."""
    root = pystac.Catalog(
        ROOT_ID,
        "Open spatial data of the Kyrgyz Republic for investment decisions: land, "
        "infrastructure and connectivity coverage, published by the Taza Koom programme.",
        title="Taza Koom open geodata catalog",
    )
    for theme_id, theme in themes.items():
        theme_catalog = pystac.Catalog(
            theme_id, _text(theme["description"], "en"), title=_text(theme["title"], "en"),
            extra_fields={"taza:translations": _translations(theme)},
        )
        if theme.get("sources"):
            theme_catalog.extra_fields["taza:sources"] = theme["sources"]
        for record in records:
            if record["manifest"]["theme"] == theme_id:
                theme_catalog.add_child(build_collection(record))
        root.add_child(theme_catalog)
    return root


def write_static_catalog(catalog: pystac.Catalog, target: Path) -> None:
    """Save the tree self-contained (relative links) into target, which is served at /stac."""
    catalog.normalize_hrefs(str(VIRTUAL_ROOT / "stac"))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED, dest_href=str(target))


def build_collection(record: dict) -> pystac.Collection:
    manifest = record["manifest"]
    items = [_vector_item(record)] if record["kind"] == "vector" else _raster_items(record)
    bbox = _union([item.bbox for item in items])
    start = _date(manifest["temporal_extent"]["start"])
    end = manifest["temporal_extent"]["end"]
    collection = pystac.Collection(
        id=record["id"],
        description=manifest["description"]["en"],
        title=manifest["title"]["en"],
        keywords=manifest["keywords"]["en"],
        license=_licence_id(manifest["licence"]),
        providers=_providers(manifest),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]),
                             pystac.TemporalExtent([[start, _date(end, True) if end else None]])),
        extra_fields={
            "taza:translations": _translations(manifest),
            "taza:theme": manifest["theme"],
            "taza:nature": manifest["nature"],
            "taza:attribution": manifest["attribution"],
            "taza:steward": manifest["steward"],
            "taza:update_frequency": manifest["update_frequency"],
            "taza:provenance": manifest["provenance"],
        },
    )
    collection.add_link(_licence_link(manifest["licence"]))
    _add_version(collection, record)
    _add_api_links(collection, record)
    collection.add_items(items)
    return collection


# -- items -----------------------------------------------------------------------------------


def _vector_item(record: dict) -> pystac.Item:
    facts = record["vector"]
    item = _item(record, record["id"], facts["bbox"])
    item.stac_extensions.append(TABLE_SCHEMA)
    item.properties["table:row_count"] = facts["feature_count"]
    item.properties["table:columns"] = [
        {"name": name, "type": kind} for name, kind in facts["fields"].items()
    ]
    for asset in record["assets"]:
        _add_asset(item, record, asset)
    return item


def _raster_items(record: dict) -> list[pystac.Item]:
    items = []
    for facts in record["rasters"]:
        item = _item(record, facts["item_id"], facts["bbox"])
        # Projection v1.1.0 (proj:epsg), not pystac's v2.0.0 (proj:code, which drops proj:epsg):
        # GDAL 3.6's STACIT driver (Debian 12) skips assets without proj:epsg. docs/metadata.md
        item.stac_extensions.append(PROJECTION_SCHEMA)
        item.properties["proj:epsg"] = facts["epsg"] or None
        if not facts["epsg"]:
            item.properties["proj:wkt2"] = facts["crs_wkt"]
        item.properties["proj:shape"] = list(facts["shape"])
        item.properties["proj:transform"] = list(facts["transform"])
        asset = _add_asset(item, record, facts["asset"])
        bands = [_raster_band(band) for band in facts["bands"]]
        RasterExtension.ext(asset, add_if_missing=True).bands = bands
        items.append(item)
    return items


def _item(record: dict, item_id: str, bbox: list[float]) -> pystac.Item:
    manifest = record["manifest"]
    published = dt.datetime.fromisoformat(record["published_at"])
    extent = manifest["temporal_extent"]
    # An open-ended extent is described as far as this version: up to its publication.
    end = _date(extent["end"], end_of_day=True) if extent["end"] else published
    item = pystac.Item(
        id=item_id,
        geometry=_box(bbox),
        bbox=list(bbox),
        datetime=None,
        start_datetime=_date(extent["start"]),
        end_datetime=end,
        properties={
            "title": manifest["title"]["en"],
            "description": manifest["description"]["en"],
            "license": _licence_id(manifest["licence"]),
            "created": record["published_at"],
            "processing:lineage": manifest["provenance"]["method"],
            "processing:software": {"taza-catalog": __version__},
            "processing:datetime": record["published_at"],
        },
    )
    item.stac_extensions.append(PROCESSING_SCHEMA)
    _add_version(item, record)
    return item


def _add_asset(item: pystac.Item, record: dict, asset: dict) -> pystac.Asset:
    href = VIRTUAL_ROOT / "assets" / record["id"] / str(record["version"]) / asset["file"]
    stac_asset = pystac.Asset(str(href), title=asset["title"], media_type=asset["media_type"],
                              roles=list(asset["roles"]))
    item.add_asset(asset["key"], stac_asset)
    file_ext = FileExtension.ext(stac_asset, add_if_missing=True)
    file_ext.size = asset["size"]
    file_ext.checksum = asset["checksum"]
    return stac_asset


def _raster_band(band: dict) -> RasterBand:
    stats = band.get("statistics") or {}
    return RasterBand.create(
        nodata=band.get("nodata"),
        data_type=band["data_type"],
        unit=band.get("unit"),
        spatial_resolution=band.get("spatial_resolution"),
        statistics=Statistics.create(**stats) if stats else None,
    )


# -- shared pieces ---------------------------------------------------------------------------


def _add_version(stac_object: pystac.Collection | pystac.Item, record: dict) -> None:
    version = VersionExtension.ext(stac_object, add_if_missing=True)
    version.version = str(record["version"])
    version.deprecated = False


def _add_api_links(collection: pystac.Collection, record: dict) -> None:
    """Point from STAC to the same data through OGC API (relative, like everything here)."""
    kind = "items" if record["kind"] == "vector" else "coverage"
    api_href = VIRTUAL_ROOT / "ogc" / "collections" / record["id"]
    collection.add_link(pystac.Link("alternate", str(api_href), "application/json",
                                    "OGC API collection"))
    media = "application/geo+json" if kind == "items" else "image/tiff; application=geotiff"
    collection.add_link(pystac.Link(kind, str(api_href / kind), media, f"OGC API {kind}"))


def _providers(manifest: dict) -> list[pystac.Provider]:
    providers = [
        pystac.Provider(ref["title"], url=ref["href"],
                        roles=[pystac.ProviderRole.LICENSOR, pystac.ProviderRole.PRODUCER])
        for ref in manifest["provenance"]["derived_from"]
    ]
    steward = manifest["steward"]
    providers.append(pystac.Provider(steward["organisation"],
                                     roles=[pystac.ProviderRole.PROCESSOR]))
    providers.append(HOST)
    return providers


def _licence_id(licence: str) -> str:
    return "other" if licence.startswith(("https://", "http://")) else licence


def _licence_link(licence: str) -> pystac.Link:
    return pystac.Link("license", licence_url(licence), "text/html", "Licence")


def _translations(block: dict) -> dict:
    """{"ru": {"title": ..., "description": ..., "keywords": [...]}, "ky": {...}}"""
    translations: dict[str, dict] = {}
    for field in ("title", "description", "keywords"):
        for lang, text in (block.get(field) or {}).items():
            if lang != "en":
                translations.setdefault(lang, {})[field] = text
    return translations


def _text(texts: dict | str, lang: str) -> str:
    return texts if isinstance(texts, str) else texts.get(lang) or texts["en"]


def _date(value: str, end_of_day: bool = False) -> dt.datetime:
    """A manifest date as a UTC instant: its first second, or its last for the end of a range."""
    moment = dt.time(23, 59, 59) if end_of_day else dt.time()
    return dt.datetime.combine(dt.date.fromisoformat(value), moment, tzinfo=dt.UTC)


def _box(bbox: list[float]) -> dict:
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _union(boxes: list[list[float]]) -> list[float]:
    return [min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes)]
