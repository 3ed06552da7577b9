"""The JSON documents of the /ogc service that describe it: landing page, conformance, the
collections (vector layers and the coverages pygeoapi serves), queryables and schemas.

Plain functions of the live release's records and the service's metadata, in the shapes OGC
API clients read (GDAL's OAPIF driver, QGIS, OWSLib) and with the link titles /ogc has always
given. Coverages are described here from their records too: their data routes
(/collections/<id>/coverage) belong to pygeoapi, but listing them is this service's job.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

from catalog import settings
from catalog.core.assets import AssetLocator
from catalog.core.field_titles import field_title
from catalog.core.languages import LANGUAGES, LOCALES
from catalog.core.record import Band, Record
from catalog.features.negotiate import (
    CSV_MEDIA_TYPE,
    HTML,
    JSON,
    JSONLD,
    MEDIA_TYPES,
    Negotiated,
    text,
)
from catalog.features.store import CRS84, LayerDescription
from catalog.manifest import licence_url

OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
# The CRSs items can be asked in (OGC API - Features Part 2); the first is the default.
# WGS 84 / UTM zones 42N and 43N (EPSG:32642, 32643) are the local projected CRSs that
# surveyors and engineers in Kyrgyzstan work in (the country spans 69-81 E: zones 42 to 44,
# nearly all of it in 42 and 43).
SUPPORTED_CRS = (CRS84, f"{EPSG}4326", f"{EPSG}3857", f"{EPSG}32642", f"{EPSG}32643")
GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"  # what GDAL's OGCAPI reader asks for
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
JSON_SCHEMA = "http://json-schema.org/draft/2019-09/schema"

COMMON = "http://www.opengis.net/spec/ogcapi-common"
FEATURES = "http://www.opengis.net/spec/ogcapi-features"
COVERAGES = "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf"
PROCESSES = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"
# What this server passes, by the kind of collection that brings it. No Features Part 4
# (the store is written by publishing only), no process callbacks (execute requests with a
# subscriber are refused: catalog/processes/web.py).
SERVER_CLASSES = [f"{COMMON}-1/1.0/conf/core", f"{COMMON}-2/1.0/conf/collections",
                  f"{COMMON}-1/1.0/conf/landing-page", f"{COMMON}-1/1.0/conf/json",
                  f"{COMMON}-1/1.0/conf/html", f"{COMMON}-1/1.0/conf/oas30"]
FEATURE_CLASSES = [f"{FEATURES}-1/1.0/conf/core", f"{FEATURES}-1/1.0/conf/oas30",
                   f"{FEATURES}-1/1.0/conf/html", f"{FEATURES}-1/1.0/conf/geojson",
                   f"{FEATURES}-2/1.0/conf/crs", f"{FEATURES}-3/1.0/conf/queryables",
                   f"{FEATURES}-3/1.0/conf/queryables-query-parameters",
                   f"{COMMON}-3/1.0/conf/schemas", f"{COMMON}-3/1.0/conf/advanced-property-roles"]
COVERAGE_CLASSES = [f"{COVERAGES}/{name}" for name in (
    "core", "oas30", "html", "geodata-coverage", "coverage-subset", "coverage-rangesubset",
    "coverage-bbox", "coverage-datetime")]
PROCESS_CLASSES = [f"{PROCESSES}/{name}" for name in (
    "ogc-process-description", "core", "json", "oas30")]
# CQL2 as the feature layers apply it (catalog/core/cql2.py), listed after the others.
FILTER_CLASSES = [
    f"{FEATURES}-3/1.0/conf/filter",
    f"{FEATURES}-3/1.0/conf/features-filter",
    f"{CQL2}/cql2-text",
    f"{CQL2}/cql2-json",
    f"{CQL2}/basic-cql2",
    f"{CQL2}/advanced-comparison-operators",
    f"{CQL2}/case-insensitive-comparison",
    f"{CQL2}/basic-spatial-functions",
    # The draft name of the same class; QGIS 3.28-3.42 look only for this one.
    f"{CQL2}/basic-spatial-operators",
    f"{CQL2}/basic-spatial-functions-plus-points",
    f"{CQL2}/spatial-functions",
]


@dataclass(frozen=True)
class Service:
    """The /ogc service: where it is and what it says about itself."""

    public_url: str  # the catalog's public URL, without a trailing slash
    metadata: dict  # identification, license, provider, contact ({language: text} values)
    limits: dict = field(default_factory=lambda: {"default_items": 10, "max_items": 10000,
                                                  "on_exceed": "error"})

    @classmethod
    def from_config(cls, public_url: str, path: Path | None = None) -> Service:
        """The service as config/pygeoapi.base.yml describes /ogc (its metadata and page
        size limits), its URLs pointing at the portal of `public_url`."""
        path = path or settings.CONFIG_DIR / "pygeoapi.base.yml"
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        public_url = public_url.rstrip("/")
        metadata = copy.deepcopy(config["metadata"])
        portal = public_url + "/"
        for section in ("identification", "provider", "contact"):
            metadata.setdefault(section, {})["url"] = portal
        return cls(public_url, metadata, dict(config["server"].get("limits", {})))

    @property
    def base_url(self) -> str:
        return f"{self.public_url}/ogc"

    @property
    def collections_url(self) -> str:
        return f"{self.base_url}/collections"

    def title(self, language: str) -> str:
        return text(self.metadata["identification"]["title"], language)


class ServiceExtension(Protocol):
    """Another blueprint's routes under /ogc (OGC API - Tiles: catalog/ogc_tiles; Records:
    catalog/discovery) that the
    documents of this service list: its conformance classes, landing-page and collection links.
    `blueprint` names it, so the Features routes leave its parts of feature collections alone."""

    blueprint: str

    def conformance(self, records: Sequence[Record]) -> list[str]: ...

    def landing_links(self, base_url: str) -> list[dict]: ...

    def collection_links(self, record: Record, collection_url: str) -> list[dict]: ...

    def other_collections(self, asked: Negotiated) -> list[dict]:
        """Collections of its own that the JSON /ogc/collections lists (the records)."""

def _link(rel: str, media: str, title: str, href: str, **extra) -> dict:
    return {"rel": rel, "type": media, "title": title, "href": href, **extra}


def document_links(url: str, asked: Negotiated, json_media: str = MEDIA_TYPES[JSON]) -> list[dict]:
    """This document as JSON, JSON-LD and HTML (the one asked for is `self`)."""
    return [
        {"type": json_media, "rel": asked.rel(JSON), "title": "This document as JSON",
         "href": f"{url}?f=json"},
        {"type": MEDIA_TYPES[JSONLD], "rel": asked.rel(JSONLD),
         "title": "This document as RDF (JSON-LD)", "href": f"{url}?f=jsonld"},
        {"type": MEDIA_TYPES[HTML], "rel": asked.rel(HTML), "title": "This document as HTML",
         "href": f"{url}?f=html"},
    ]


# -- landing page and conformance ----------------------------------------------------------

def landing_page(service: Service, asked: Negotiated,
                 extensions: Sequence[ServiceExtension] = ()) -> dict:
    base, language = service.base_url, asked.language
    identification = service.metadata["identification"]
    default = LOCALES[LANGUAGES[0]]
    document = {
        "links": [
            _link("about", "text/html", text(identification["title"], language),
                  identification["url"]),
            _link(asked.rel(JSON), MEDIA_TYPES[JSON], "This document as JSON", f"{base}?f=json"),
            _link(asked.rel(JSONLD), MEDIA_TYPES[JSONLD], "This document as RDF (JSON-LD)",
                  f"{base}?f=jsonld"),
            _link(asked.rel(HTML), MEDIA_TYPES[HTML], "This document as HTML", f"{base}?f=html",
                  hreflang=default),
            _link("service-desc", OPENAPI_MEDIA_TYPE, "The OpenAPI definition as JSON",
                  f"{base}/openapi"),
            _link("service-doc", MEDIA_TYPES[HTML], "The OpenAPI definition as HTML",
                  f"{base}/openapi?f=html", hreflang=default),
            _link("conformance", MEDIA_TYPES[JSON], "Conformance", f"{base}/conformance"),
            _link("data", MEDIA_TYPES[JSON], "Collections", service.collections_url),
            _link(f"{OGC_REL}/processes", MEDIA_TYPES[JSON], "Processes", f"{base}/processes"),
            _link(f"{OGC_REL}/job-list", MEDIA_TYPES[JSON], "Jobs", f"{base}/jobs"),
            _link(f"{OGC_REL}/job-list", MEDIA_TYPES[HTML], "Jobs", f"{base}/jobs?f=html"),
        ],
        "title": text(identification["title"], language),
        "description": text(identification["description"], language),
    }
    for extension in extensions:
        document["links"] += extension.landing_links(base)
    return document


def conformance(records: Sequence[Record], has_processes: bool,
                extensions: Sequence[ServiceExtension] = ()) -> dict:
    """The classes this server passes for what is live (the filter classes last)."""
    classes = set(SERVER_CLASSES)
    for extension in extensions:
        classes.update(extension.conformance(records))
    if any(r.is_vector for r in records):
        classes.update(FEATURE_CLASSES)
    if any(not r.is_vector for r in records):
        classes.update(COVERAGE_CLASSES)
    if has_processes:
        classes.update(PROCESS_CLASSES)
    filters = FILTER_CLASSES if any(r.is_vector for r in records) else []
    return {"conformsTo": sorted(classes) + filters}


# -- collections -----------------------------------------------------------------------------

def collections(service: Service, records: Sequence[Record], assets: AssetLocator,
                asked: Negotiated, extensions: Sequence[ServiceExtension] = ()) -> dict:
    url = service.collections_url
    return {
        "collections": [collection(service, record, assets, asked, extensions)
                        for record in records],
        "links": document_links(url, asked),
    }


def collection(service: Service, record: Record, assets: AssetLocator,
               asked: Negotiated, extensions: Sequence[ServiceExtension] = ()) -> dict:
    """One collection: a feature collection (vector layer) or a coverage (raster)."""
    language = asked.language
    manifest = record.manifest
    url = f"{service.collections_url}/{record.id}"
    data: dict = {
        "id": record.id,
        "links": _record_links(record, assets, service.public_url),
        "title": text(_languages(manifest.title), language),
        "description": text(_languages(manifest.description), language),
        "keywords": text(_languages(manifest.keywords), language),
        "extent": {"spatial": {"bbox": [list(record.bbox)], "crs": CRS84},
                   "temporal": {"interval": [list(temporal_interval(record))]}},
    }
    data["links"] += [
        {"type": MEDIA_TYPES[JSON], "rel": "root",
         "title": "The landing page of this server as JSON", "href": f"{service.base_url}?f=json"},
        {"type": MEDIA_TYPES[HTML], "rel": "root",
         "title": "The landing page of this server as HTML", "href": f"{service.base_url}?f=html"},
        *document_links(url, asked),
        {"type": "application/schema+json", "rel": f"{OGC_REL}/schema",
         "title": "Schema of collection in JSON", "href": f"{url}/schema?f=json"},
        {"type": MEDIA_TYPES[HTML], "rel": f"{OGC_REL}/schema",
         "title": "Schema of collection in HTML", "href": f"{url}/schema?f=html"},
        {"type": "application/schema+json", "rel": f"{OGC_REL}/queryables",
         "title": "Queryables for this collection as JSON", "href": f"{url}/queryables?f=json"},
        {"type": MEDIA_TYPES[HTML], "rel": f"{OGC_REL}/queryables",
         "title": "Queryables for this collection as HTML", "href": f"{url}/queryables?f=html"},
    ]
    for extension in extensions:
        data["links"] += extension.collection_links(record, url)
    if record.is_vector:
        data["itemType"] = "feature"
        data["links"] += [
            {"type": "application/geo+json", "rel": "items", "title": "Items as GeoJSON",
             "href": f"{url}/items?f=json"},
            {"type": MEDIA_TYPES[JSONLD], "rel": "items", "title": "Items as RDF (GeoJSON-LD)",
             "href": f"{url}/items?f=jsonld"},
            {"type": MEDIA_TYPES[HTML], "rel": "items", "title": "Items as HTML",
             "href": f"{url}/items?f=html"},
            {"type": CSV_MEDIA_TYPE, "rel": "items", "title": "Items as CSV",
             "href": f"{url}/items?f=csv"},
        ]
        data["crs"] = list(SUPPORTED_CRS)
        data["storageCrs"] = CRS84
        return data
    coverage = f"{OGC_REL}/coverage"
    data["links"] += [
        {"type": "application/prs.coverage+json", "rel": coverage, "title": "Coverage data",
         "href": f"{url}/coverage?f=json"},
        {"type": "text/html", "rel": coverage, "title": "Coverage data",
         "href": f"{url}/coverage?f=html"},
        {"type": GEOTIFF_MEDIA_TYPE, "rel": coverage, "title": "Coverage data as GTiff",
         "href": f"{url}/coverage?f=GTiff"},
    ]
    raster = record.coverage
    rows, columns = raster.shape
    data["extent"]["spatial"]["grid"] = [
        {"cellsCount": columns, "resolution": abs(raster.transform[0])},
        {"cellsCount": rows, "resolution": abs(raster.transform[4])},
    ]
    # GDAL's OAPIF driver opens every collection without this as a feature layer.
    data["layerDataType"] = "Coverage"
    return data


def collection_title(record: Record, language: str) -> str:
    return text(_languages(record.manifest.title), language)


def temporal_interval(record: Record) -> tuple[str | None, str | None]:
    """The dataset's time span as RFC 3339 instants (midnight UTC of its first and last day)."""
    extent = record.manifest.temporal_extent
    return _instant(extent.start), _instant(extent.end)


def _instant(day: dt.date | None) -> str | None:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).isoformat() if day else None


def _languages(texts: dict) -> dict:
    """Manifest texts in the catalog's language order (English first)."""
    return {lang: texts[lang] for lang in LANGUAGES if lang in texts}


def _record_links(record: Record, assets: AssetLocator, public_url: str) -> list[dict]:
    """Licence, downloads and sources of a dataset version."""
    manifest = record.manifest
    links = [{"type": "text/html", "rel": "license", "title": f"Licence: {manifest.licence}",
              "href": licence_url(manifest.licence)}]
    for asset in record.assets:
        links.append({"type": asset.media_type, "rel": "enclosure",
                      "title": f"Download: {asset.title}",
                      "href": assets.url(record, asset, public_url), "length": asset.size})
    for ref in manifest.provenance.derived_from:
        links.append({"type": "text/html", "rel": "via", "title": f"Source: {ref.title}",
                      "href": ref.href})
    return links


# -- queryables and schemas -------------------------------------------------------------------

def queryables(service: Service, record: Record, layer: LayerDescription | None,
               asked: Negotiated, query_string: str = "") -> dict:
    """The properties a filter may name (JSON Schema), also listed the pre-1.0 way
    ({"queryables": [{"id": ...}]}): GDAL 3.6 reads only that form to decide which
    properties it may put in a server-side CQL filter."""
    url = f"{service.collections_url}/{record.id}/queryables"
    document = {"type": "object",
                "title": text(_languages(record.manifest.title), asked.language),
                "properties": {}, "$schema": JSON_SCHEMA,
                "$id": f"{url}?{query_string}" if query_string else url}
    fields = _fields(record, layer)
    if fields:
        document["properties"]["geometry"] = {"format": "geometry-any",
                                              "x-ogc-role": "primary-geometry"}
    for name, schema in fields.items():
        # the field's title in the request's language (lang=, Accept-Language), else its name
        entry = {"title": field_title(name, asked.language) or name,
                 "type": _json_type(schema["type"])}
        if schema.get("format") is not None:
            entry["format"] = schema["format"]
        _add_roles(entry, name, layer)
        document["properties"][name] = entry
    document["queryables"] = [
        {"id": name, "type": entry.get("type", "geometry"), "title": entry.get("title", name)}
        for name, entry in document["properties"].items() if name != "geometry"]
    return document


def schema(service: Service, record: Record, layer: LayerDescription | None,
           asked: Negotiated) -> dict:
    """The collection's properties as JSON Schema (OGC API - Common Part 3), with roles."""
    document = {"type": "object",
                "title": text(_languages(record.manifest.title), asked.language),
                "properties": {}, "$schema": JSON_SCHEMA,
                "$id": f"{service.collections_url}/{record.id}/schema"}
    if record.is_vector:
        document["properties"]["geometry"] = {"format": "geometry-any",
                                              "x-ogc-role": "primary-geometry"}
    for name, field_schema in _fields(record, layer).items():
        entry = dict(field_schema, type=_json_type(field_schema["type"]))
        if entry.get("format") is None:
            entry.pop("format", None)
        _add_roles(entry, name, layer)
        document["properties"][name] = entry
    return document


def _fields(record: Record, layer: LayerDescription | None) -> dict[str, dict]:
    if record.is_vector:
        return layer.fields if layer is not None else {}
    return {str(index): _band_field(index, band)
            for index, band in enumerate(record.coverage.bands, start=1)}


def _band_field(index: int, band: Band) -> dict:
    """A band as a property, keyed by its number as coverage clients ask for it: titled with
    its name as the coverage's CoverageJSON names it (the file's band description, else
    band<N>), its data type (integers and floats named so, others as GDAL names them), its
    unit, and the band's metadata tags (none are written by publishing)."""
    kind = band.data_type
    if kind.startswith("float"):
        kind = "number"
    elif kind.startswith("int"):
        kind = "integer"
    field = {"title": band.name or f"band{index}", "type": kind, "_meta": {}}
    if band.unit:
        field["x-ogc-unit"] = band.unit
    return field


def _json_type(kind: str) -> str:
    return "number" if kind == "float" else kind


def _add_roles(entry: dict, name: str, layer: LayerDescription | None) -> None:
    if layer is None:
        return
    if name == layer.id_field:
        entry["x-ogc-role"] = "id"
    if name == layer.time_field:
        entry["x-ogc-role"] = "primary-instant"
