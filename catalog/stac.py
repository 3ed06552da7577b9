"""STAC objects from published dataset records, built with pystac.

Tree (served at /stac): catalog.json -> one catalog per theme -> one collection per dataset
-> its items. Asset hrefs are relative links to the immutable, versioned asset URLs
(/assets/<dataset>/<version>/<file>), so the static catalog works under any host or prefix.

Extensions (one fixed set, checked in tests): projection v1.1.0, raster v1.1.0, file v2.1.0,
version v1.2.0, processing v1.2.0, table v1.2.0, classification v2.0.0 (class rasters).
Russian and Kyrgyz texts go in `taza:translations` (see docs/metadata.md), the English ones in
the core fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.raster import RasterBand, RasterExtension, Statistics
from pystac.extensions.version import VersionExtension

from catalog import __version__
from catalog.core.assets import AssetLocator
from catalog.core.languages import FALLBACK_LANGUAGE
from catalog.core.record import (
    Asset,
    Band,
    PublishedManifest,
    RasterFacts,
    Record,
    provenance_json,
)
from catalog.manifest import licence_url

PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
PROJECTION_SCHEMA = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
TABLE_SCHEMA = "https://stac-extensions.github.io/table/v1.2.0/schema.json"
HOST = pystac.Provider("Taza Koom open geodata catalog", roles=[pystac.ProviderRole.HOST])
ROOT_ID = "taza-koom"
# Where the static tree and the assets sit relative to each other in URL space.
VIRTUAL_ROOT = Path("/taza-virtual")


def build_catalog(records: list[Record], themes: dict, assets: AssetLocator) -> pystac.Catalog:
    """The root catalog over every live dataset, grouped by theme."""
    root = pystac.Catalog(
        ROOT_ID,
        "Open spatial data of the Kyrgyz Republic for investment decisions: land, "
        "infrastructure and connectivity coverage, published by the Taza Koom programme.",
        title="Taza Koom open geodata catalog",
    )
    for theme_id, theme in themes.items():
        theme_catalog = pystac.Catalog(
            theme_id, _text(theme["description"]), title=_text(theme["title"]),
            extra_fields={"taza:translations": _theme_translations(theme)},
        )
        if theme.get("sources"):
            theme_catalog.extra_fields["taza:sources"] = theme["sources"]
        for record in records:
            if record.manifest.theme == theme_id:
                theme_catalog.add_child(build_collection(record, assets))
        root.add_child(theme_catalog)
    return root


def write_static_catalog(catalog: pystac.Catalog, target: Path) -> None:
    """Save the tree self-contained (relative links) into target, which is served at /stac."""
    catalog.normalize_hrefs(str(VIRTUAL_ROOT / "stac"))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED, dest_href=str(target))


def build_collection(record: Record, assets: AssetLocator) -> pystac.Collection:
    manifest = record.manifest
    items = ([_vector_item(record, assets)] if record.is_vector else
             _raster_items(record, assets))
    bbox = _union([item.bbox for item in items])
    extent = manifest.temporal_extent
    start = _date(extent.start)
    end = _date(extent.end, True) if extent.end else None
    collection = pystac.Collection(
        id=record.id,
        description=manifest.description[FALLBACK_LANGUAGE],
        title=manifest.title[FALLBACK_LANGUAGE],
        keywords=list(manifest.keywords[FALLBACK_LANGUAGE]),
        license=_licence_id(manifest.licence),
        providers=_providers(manifest),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[start, end]])),
        extra_fields={
            "taza:translations": _translations(manifest.title, manifest.description,
                                               manifest.keywords),
            "taza:theme": manifest.theme,
            "taza:nature": manifest.nature,
            "taza:attribution": manifest.attribution,
            "taza:steward": dataclasses.asdict(manifest.steward),
            "taza:update_frequency": manifest.update_frequency,
            "taza:provenance": provenance_json(manifest.provenance),
        },
    )
    collection.add_link(_licence_link(manifest.licence))
    _add_version(collection, record)
    _add_api_links(collection, record)
    collection.add_items(items)
    return collection


# -- items -----------------------------------------------------------------------------------


def _vector_item(record: Record, assets: AssetLocator) -> pystac.Item:
    facts = record.vector
    item = _item(record, record.id, facts.bbox)
    item.stac_extensions.append(TABLE_SCHEMA)
    item.properties["table:row_count"] = facts.feature_count
    item.properties["table:columns"] = [
        {"name": name, "type": kind} for name, kind in facts.fields.items()
    ]
    for asset in record.assets:
        _add_asset(item, record, asset, assets)
    return item


def _raster_items(record: Record, assets: AssetLocator) -> list[pystac.Item]:
    items = []
    for facts in record.rasters:
        items.append(_raster_item(record, facts, assets))
    return items


def _raster_item(record: Record, facts: RasterFacts, assets: AssetLocator) -> pystac.Item:
    item = _item(record, facts.item_id, facts.bbox)
    if facts.start is not None and facts.end is not None:  # a step of a time series
        item.common_metadata.start_datetime = _date(facts.start)
        item.common_metadata.end_datetime = _date(facts.end, end_of_day=True)
    # Projection v1.1.0 (proj:epsg), not pystac's v2.0.0 (proj:code, which drops proj:epsg):
    # GDAL 3.6's STACIT driver (Debian 12) skips assets without proj:epsg. docs/metadata.md
    item.stac_extensions.append(PROJECTION_SCHEMA)
    item.properties["proj:epsg"] = facts.epsg or None
    if not facts.epsg:
        item.properties["proj:wkt2"] = facts.crs_wkt
    item.properties["proj:shape"] = list(facts.shape)
    item.properties["proj:transform"] = list(facts.transform)
    asset = _add_asset(item, record, facts.asset, assets)
    bands = [_raster_band(band) for band in facts.bands]
    RasterExtension.ext(asset, add_if_missing=True).bands = bands
    if record.manifest.raster.get("classes"):
        _add_classes(asset, record.manifest.raster["classes"], facts.bands[0].nodata)
    return item


def _add_classes(asset: pystac.Asset, classes: list[dict], nodata: float | None) -> None:
    """The class table of a categorical raster (classification extension v2.0.0); Russian and
    Kyrgyz class titles are in the collection's record and the portal (docs/metadata.md)."""
    table = [Classification.create(value=c["value"], name=c["name"], title=c["title"]["en"],
                                   color_hint=c["colour"].lstrip("#").upper())
             for c in classes]
    if nodata is not None:
        table.append(Classification.create(value=int(nodata), name="nodata", nodata=True,
                                           title="No data (outside the country or no value)"))
    ClassificationExtension.ext(asset, add_if_missing=True).classes = table


def _item(record: Record, item_id: str, bbox: tuple[float, ...]) -> pystac.Item:
    manifest = record.manifest
    extent = manifest.temporal_extent
    # An open-ended extent is described as far as this version: up to its publication.
    end = _date(extent.end, end_of_day=True) if extent.end else record.published_at
    item = pystac.Item(
        id=item_id,
        geometry=_box(bbox),
        bbox=list(bbox),
        datetime=None,
        start_datetime=_date(extent.start),
        end_datetime=end,
        properties={
            "title": manifest.title[FALLBACK_LANGUAGE],
            "description": manifest.description[FALLBACK_LANGUAGE],
            "license": _licence_id(manifest.licence),
            "created": record.published,
            "processing:lineage": manifest.provenance.method,
            "processing:software": {"taza-catalog": __version__},
            "processing:datetime": record.published,
        },
    )
    item.stac_extensions.append(PROCESSING_SCHEMA)
    _add_version(item, record)
    return item


def _add_asset(item: pystac.Item, record: Record, asset: Asset,
               assets: AssetLocator) -> pystac.Asset:
    # The served URL under the virtual root: relative links once the tree is saved.
    href = f"{VIRTUAL_ROOT}{assets.url(record, asset)}"
    stac_asset = pystac.Asset(href, title=asset.title, media_type=asset.media_type,
                              roles=list(asset.roles))
    item.add_asset(asset.key, stac_asset)
    file_ext = FileExtension.ext(stac_asset, add_if_missing=True)
    file_ext.size = asset.size
    file_ext.checksum = asset.checksum
    return stac_asset


def _raster_band(band: Band) -> RasterBand:
    stats = band.statistics
    return RasterBand.create(
        nodata=band.nodata,
        data_type=band.data_type,
        unit=band.unit,
        spatial_resolution=band.spatial_resolution,
        statistics=Statistics.create(**dataclasses.asdict(stats)) if stats else None,
    )


# -- shared pieces ---------------------------------------------------------------------------


def _add_version(stac_object: pystac.Collection | pystac.Item, record: Record) -> None:
    version = VersionExtension.ext(stac_object, add_if_missing=True)
    version.version = str(record.version)
    version.deprecated = False


def _add_api_links(collection: pystac.Collection, record: Record) -> None:
    """Point from STAC to the same data through OGC API (relative, like everything here)."""
    kind = "items" if record.is_vector else "coverage"
    api_href = VIRTUAL_ROOT / "ogc" / "collections" / record.id
    collection.add_link(pystac.Link("alternate", str(api_href), "application/json",
                                    "OGC API collection"))
    media = "application/geo+json" if kind == "items" else "image/tiff; application=geotiff"
    collection.add_link(pystac.Link(kind, str(api_href / kind), media, f"OGC API {kind}"))


def _providers(manifest: PublishedManifest) -> list[pystac.Provider]:
    providers = [
        pystac.Provider(ref.title, url=ref.href,
                        roles=[pystac.ProviderRole.LICENSOR, pystac.ProviderRole.PRODUCER])
        for ref in manifest.provenance.derived_from
    ]
    providers.append(pystac.Provider(manifest.steward.organisation,
                                     roles=[pystac.ProviderRole.PROCESSOR]))
    providers.append(HOST)
    return providers


def _licence_id(licence: str) -> str:
    return "other" if licence.startswith(("https://", "http://")) else licence


def _licence_link(licence: str) -> pystac.Link:
    return pystac.Link("license", licence_url(licence), "text/html", "Licence")


def _translations(title: dict | None, description: dict | None,
                  keywords: dict | None) -> dict:
    """{"ru": {"title": ..., "description": ..., "keywords": [...]}, "ky": {...}}: every
    language but the fallback, whose texts are the core fields."""
    translations: dict[str, dict] = {}
    for field, texts in (("title", title), ("description", description),
                         ("keywords", keywords)):
        for lang, text in (texts or {}).items():
            if lang != FALLBACK_LANGUAGE:
                translations.setdefault(lang, {})[field] = text
    return translations


def _theme_translations(theme: dict) -> dict:
    return _translations(theme.get("title"), theme.get("description"), theme.get("keywords"))


def _text(texts: dict | str) -> str:
    return texts if isinstance(texts, str) else texts[FALLBACK_LANGUAGE]


def _date(value: dt.date, end_of_day: bool = False) -> dt.datetime:
    """A manifest date as a UTC instant: its first second, or its last for the end of a range."""
    moment = dt.time(23, 59, 59) if end_of_day else dt.time()
    return dt.datetime.combine(value, moment, tzinfo=dt.UTC)


def _box(bbox: list[float]) -> dict:
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _union(boxes: list[list[float]]) -> list[float]:
    return [min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes)]
