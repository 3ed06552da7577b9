"""pygeoapi configuration generated from the live release.

The base (server, metadata, logging) comes from config/pygeoapi.base.yml; each live raster
becomes a resource through our COG provider (OGC API Coverages), and the processes over the
live layers another. Providers and the job manager are plugins named by dotted path,
pygeoapi's documented way of extending it. Vector layers are not pygeoapi's: our own OGC API
Features serves them (catalog/features).
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import yaml

from catalog import settings
from catalog.core.assets import AssetLocator
from catalog.core.languages import LANGUAGES, LOCALES, PORTAL_ORDER
from catalog.core.record import Record
from catalog.manifest import licence_url
from catalog.processes import job_manager, process_resources
from catalog.store import CatalogStore

OGC_DIR = Path(__file__).resolve().parent
# Our templates for pygeoapi's HTML pages that have scripts (theirs are inline, which the
# Content-Security-Policy forbids: catalog/http_policy.py); the others fall back to pygeoapi's.
# Their scripts and styles are files in static/, served by pygeoapi's blueprint at /ogc/static.
TEMPLATES = {"path": str(OGC_DIR / "templates"), "static": str(OGC_DIR / "static")}
COG_PROVIDER = "catalog.ogc.providers.cog.CogProvider"
# The maps of the /ogc pages draw the relief basemap through this path (catalog/ogc/routes.py).
BASEMAP_PATH = "/basemap"
# GDAL's OGCAPI coverage reader asks for exactly this media type.
GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"


def build_config(store: CatalogStore, public_url: str, locale_dir: Path | None = None) -> dict:
    """The full pygeoapi config for the live release, with links based on public_url; the
    words of its HTML pages come from locale_dir (catalog/ogc/translations.py)."""
    base = yaml.safe_load((settings.CONFIG_DIR / "pygeoapi.base.yml").read_text("utf-8"))
    config = copy.deepcopy(base)
    config["server"]["url"] = public_url.rstrip("/") + "/ogc"
    # pygeoapi's first locale is its default (catalog.core.languages).
    config["server"]["languages"] = [LOCALES[lang] for lang in LANGUAGES]
    config["server"]["templates"] = dict(TEMPLATES)
    if locale_dir is not None:
        config["server"]["locale_dir"] = str(locale_dir)
    portal = public_url.rstrip("/") + "/"
    metadata = config["metadata"]
    metadata["identification"]["url"] = metadata["provider"]["url"] = portal
    metadata["contact"]["url"] = portal
    config["resources"] = {}
    records = store.current_records()
    # For our templates only (pygeoapi reads none of it): the portal, the language switch in
    # the portal's order, each dataset's title and licence (the landing page lists them).
    config["catalog"] = {
        "portal": portal,
        "languages": list(PORTAL_ORDER),
        "licences": {record.id: {"title": _languages(record.manifest.title),
                                 "name": record.manifest.licence,
                                 "url": licence_url(record.manifest.licence)}
                     for record in records},
    }
    # The maps on the /ogc pages draw the portal's relief tiles underneath (no other host),
    # through a path that stays the same from release to release (catalog/ogc/routes.py).
    config["server"]["map"]["url"] = f"/ogc{BASEMAP_PATH}/{{z}}/{{x}}/{{y}}.png" \
        if _relief_dataset() else ""
    # Coverages only: vector layers are served by our own OGC API Features (catalog/features).
    for record in records:
        if not record.is_vector:
            config["resources"][record.id] = resource(record, store.assets, public_url)
    # OGC API - Processes over the live layers, with jobs kept under the catalog home.
    config["resources"].update(process_resources(store, taken={r.id for r in records}))
    config["server"]["manager"] = job_manager(store.home)
    return config


def _relief_dataset() -> str | None:
    """The DEM whose relief the portal draws as its basemap (config/portal.yaml)."""
    return settings.portal_config().get("basemap", {}).get("relief")


def basemap_tiles(records: list[Record]) -> str:
    """The portal's relief tiles of the live DEM named in config/portal.yaml, or "" (no
    basemap) when that dataset is not published."""
    relief = _relief_dataset()
    for record in records:
        if record.id == relief and record.kind == "raster":
            return f"/tiles/{record.id}/{record.version}/relief/{{z}}/{{x}}/{{y}}.png"
    return ""


def resource(record: Record, assets: AssetLocator, public_url: str) -> dict:
    manifest = record.manifest
    extent = manifest.temporal_extent
    return {
        "type": "collection",
        "title": _languages(manifest.title),
        "description": _languages(manifest.description),
        "keywords": _languages(manifest.keywords),
        "links": _links(record, assets, public_url),
        "extents": {
            "spatial": {"bbox": list(record.bbox),
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
            # pygeoapi compares request datetimes with these: they must be datetimes, not text.
            "temporal": {"begin": _instant(extent.start), "end": _instant(extent.end)},
        },
        "providers": [_provider(record, assets)],
    }


def _provider(record: Record, assets: AssetLocator) -> dict:
    provider = {
        "type": "coverage",
        "name": COG_PROVIDER,
        "data": assets.gdal_path(record, record.coverage.asset),
        "options": {"DATA_ENCODING": "COG"},
        "format": {"name": "GTiff", "mimetype": GEOTIFF_MEDIA_TYPE},
    }
    # The manifest's class table (the one the portal and the tiles use): our provider writes
    # it into the CoverageJSON as categories, which the /ogc coverage page draws and lists.
    if classes := record.manifest.raster.get("classes"):
        provider["classes"] = copy.deepcopy(classes)
    return provider


def _links(record: Record, assets: AssetLocator, public_url: str) -> list[dict]:
    manifest = record.manifest
    licence = manifest.licence
    links = [{"type": "text/html", "rel": "license", "title": f"Licence: {licence}",
              "href": licence_url(licence)}]
    for asset in record.assets:
        links.append({
            "type": asset.media_type, "rel": "enclosure", "title": f"Download: {asset.title}",
            "href": assets.url(record, asset, public_url), "length": asset.size,
        })
    for ref in manifest.provenance.derived_from:
        links.append({"type": "text/html", "rel": "via", "title": f"Source: {ref.title}",
                      "href": ref.href})
    return links


def _instant(day: dt.date | None) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None


def _languages(texts: dict) -> dict | str:
    """pygeoapi picks the request's language from a {lang: text} mapping."""
    return {lang: texts[lang] for lang in LANGUAGES if lang in texts}
