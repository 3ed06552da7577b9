"""GeoJSON items pages written straight from the GeoPackage, past pygeoapi's response pipeline.

pygeoapi answers ``GET /collections/{id}/items`` by building every feature as Python dicts,
adding links, then serialising with ``json``: about 3 ms of a worker's time for a page of 100
parcels, most of it outside the query (bench/results/features-*). For the plain GeoJSON answer
of a collection served by our GeoPackage provider, this module does the same work with the same
parts (pygeoapi's own validators and link rules, the same provider query) but writes the page as
text. Whole features are copied from the GeoJSON text stored beside the GeoPackage at publish
time (catalog/gpkg/feature_text.py); pages with `properties` or `skipGeometry`, or layers
published without stored text, are written from the rows: orjson in C, coordinates straight
from shapely's arrays.

pygeoapi keeps everything else, and `answer` returns None to hand it over:
- other formats (HTML, JSON-LD, CSV) and anything but GET;
- ``crs``, ``bbox-crs`` and ``filter-crs`` (pygeoapi's CRS transforms);
- any request pygeoapi or the provider would refuse: errors keep one source of messages.

``TAZA_DIRECT_ITEMS=0`` turns the direct answer off (tests compare the two answers).
Direct answers carry a ``Server-Timing`` header naming this writer and its time.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson
from flask import Response, request
from pygeoapi import l10n
from pygeoapi.api import (
    SYSTEM_LOCALE,
    APIRequest,
    apply_gzip,
    evaluate_limit,
    validate_datetime,
)
from pygeoapi.crs import set_content_crs_header
from pygeoapi.formats import F_HTML, F_JSON, F_JSONLD, FORMAT_TYPES
from pygeoapi.plugin import load_plugin
from pygeoapi.provider import get_provider_by_type
from pygeoapi.provider.base import ProviderGenericError
from pygeoapi.util import get_dataset_formatters, str2bool

from catalog import settings
from catalog.core.parse import BBox
from catalog.ogc import adapters
from catalog.ogc.config import GEOPACKAGE_PROVIDER
from catalog.ogc.providers.geopackage import GeoPackageProvider

LOGGER = logging.getLogger(__name__)

# pygeoapi's reserved items parameters; any other known name is a property equality filter.
RESERVED = {"bbox", "bbox-crs", "crs", "f", "lang", "limit", "offset", "resulttype", "datetime",
            "sortby", "properties", "skipGeometry", "q", "filter", "filter-lang", "filter-crs"}
LEFT_TO_PYGEOAPI = ("crs", "bbox-crs", "filter-crs")
FILTER_LANGUAGES = (None, "cql-json", "cql-text", "cql2-text", "cql2-json")


class Declined(Exception):
    """pygeoapi answers this request (other format, CRS transform, or an error to report)."""


@dataclass(frozen=True)
class Collection:
    """What a direct answer needs of one collection, built once per release."""

    id: str
    resource: dict
    provider_def: dict
    provider: GeoPackageProvider
    formatters: dict  # pygeoapi formatter plugins by name (CSV)
    titles: dict = field(default_factory=dict)  # the title per locale, as translated


@dataclass(frozen=True)
class ItemsQuery:
    """The provider arguments of a request, parsed the way pygeoapi parses them."""

    offset: int
    limit: int
    resulttype: str
    bbox: list
    datetime_: str | None
    properties: list[tuple[str, str]]
    sortby: list[dict]
    select_properties: list[str]
    skip_geometry: bool
    q: str | None
    filterq: Any


class DirectItems:
    """Answers plain GeoJSON items requests of GeoPackage collections for the live release."""

    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.enabled = settings.direct_items()
        self._lock = threading.Lock()
        self._config: dict | None = None
        self._collections: dict[str, Collection] = {}

    def answer(self, collection_id: str) -> Response | None:
        """The items page as a Flask response, or None when pygeoapi should answer."""
        if not self.enabled or request.method != "GET":
            return None
        started = time.perf_counter()
        collection = self._collection(collection_id)
        if collection is None:
            return None
        api = self.runtime.api()
        try:
            return self._respond(api, collection, started)
        except Declined as reason:
            LOGGER.debug("items of %s left to pygeoapi: %s", collection_id, reason)
            return None

    # per-release state --------------------------------------------------------------------------

    def _collection(self, collection_id: str) -> Collection | None:
        config = self.runtime.config
        if config is not self._config:
            with self._lock:
                if config is not self._config:
                    self._collections = _collections(config)
                    self._config = config
        return self._collections.get(collection_id)

    # the answer ---------------------------------------------------------------------------------

    def _respond(self, api: Any, collection: Collection, started: float) -> Response:
        api_request = APIRequest.from_flask(adapters.pygeoapi_request(), api.locales)
        # Headers are made before the format is negotiated again below, as pygeoapi does.
        headers = api_request.get_response_headers(SYSTEM_LOCALE, **api.api_headers)
        if collection.formatters:
            extra = {f.f: f.mimetype for f in collection.formatters.values()}
            api_request._format = api_request._get_format(api_request.headers, extra)
        if api_request.format not in (None, F_JSON):
            raise Declined(f"format {api_request.format}")
        params = api_request.params
        if any(name in params for name in LEFT_TO_PYGEOAPI):
            raise Declined("CRS parameters")
        query = parse_query(params, api_request.data, api, collection)
        provider = collection.provider
        try:
            page = provider.select(**vars(query), stored_text=True)
            if page.text:
                features = [orjson.Fragment(row[0]) for row in page.rows]
            else:
                features = provider.orjson_features(page)
        except ProviderGenericError as err:
            raise Declined(f"provider refused: {err}") from None
        links = items_links(api, api_request, collection, query, page.matched, len(features))
        set_content_crs_header(headers, collection.provider_def, None)
        provider_locale = l10n.get_plugin_locale(collection.provider_def,
                                                 api_request.raw_locale)
        l10n.set_response_language(headers, provider_locale, api_request.locale)
        try:
            body = orjson.dumps({
                "type": "FeatureCollection", "features": features,
                "numberMatched": page.matched, "numberReturned": len(features),
                "links": links,
                "timeStamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as err:  # a value JSON cannot hold: pygeoapi's encoder decides
            raise Declined(f"not serialisable: {err}") from None
        body = apply_gzip(headers, body)
        elapsed_ms = (time.perf_counter() - started) * 1000
        source = "stored feature text" if page.text else "GeoPackage rows"
        headers["Server-Timing"] = \
            f'items;desc="direct GeoJSON writer, {source}";dur={elapsed_ms:.2f}'
        return Response(body, status=200, headers=headers)


def _collections(config: dict) -> dict[str, Collection]:
    out = {}
    for collection_id, resource in config.get("resources", {}).items():
        if resource.get("type") != "collection":
            continue
        providers = [p for p in resource.get("providers", []) if p.get("type") == "feature"]
        if not providers or providers[0].get("name") != GEOPACKAGE_PROVIDER:
            continue
        provider_def = get_provider_by_type(resource["providers"], "feature")
        try:
            provider = load_plugin("provider", provider_def)
        except ProviderGenericError as err:  # pygeoapi will report it on the request
            LOGGER.warning("%s: provider not loaded for direct answers: %s", collection_id, err)
            continue
        out[collection_id] = Collection(collection_id, resource, provider_def, provider,
                                        get_dataset_formatters(resource))
    return out


def parse_query(params: Any, data: bytes, api: Any, collection: Collection) -> ItemsQuery:
    """Provider arguments from the query string, by pygeoapi's rules; Declined where pygeoapi
    would answer an error."""
    provider = collection.provider
    resource = collection.resource
    try:
        offset = int(params.get("offset", 0))
        limit = evaluate_limit(params.get("limit"), api.config["server"].get("limits", {}),
                               resource.get("limits", {}))
        # pygeoapi's own check, run to know whether pygeoapi would refuse the request (a time
        # outside the collection's extent); the provider reads the interval itself.
        datetime_ = validate_datetime(resource["extents"], params.get("datetime"))
    except (ValueError, TypeError) as err:
        raise Declined(str(err)) from None
    bbox = _bbox(params)
    if offset < 0:
        raise Declined("negative offset")
    fields = provider.fields
    properties = [(k, v) for k, v in params.items() if k not in RESERVED and k in fields]
    sortby = []
    if "sortby" in params:
        for key in params["sortby"].split(","):
            order, name = (key[0], key[1:]) if key[:1] in ("+", "-") else ("+", key)
            if name not in fields:
                raise Declined(f"sortby {name}")
            sortby.append({"property": name, "order": order})
    select = params["properties"].split(",") if "properties" in params else []
    if set(select) - (set(provider.properties) | set(fields)):
        raise Declined("unknown properties")
    skip_geometry = str2bool(params["skipGeometry"]) if "skipGeometry" in params else False
    if params.get("filter-lang") not in FILTER_LANGUAGES:
        raise Declined("filter-lang")
    return ItemsQuery(offset, limit, params.get("resulttype") or "results", bbox, datetime_,
                      properties, sortby, select, skip_geometry, params.get("q") or None,
                      _filter(params.get("filter"), data))


def _bbox(params: Any) -> list:
    """The bbox as pygeoapi's validate_bbox gives it (4 or 6 numbers), parsed by the edge."""
    if "bbox" not in params:
        return []
    box = adapters.parsed_bbox()
    if not isinstance(box, BBox):
        raise Declined("bbox not checked")
    return box.as_list()


def _filter(cql_text: str | None, data: bytes) -> Any:
    """The CQL2 filter the edge parsed (adapters.invalid_parameter_error; parsed once per
    request): text from the query string, or JSON from the body (where
    adapters.normalise_request puts a GET filter-lang=cql2-json filter, as pygeoapi reads it).
    Filter and storage CRS are both CRS84 here (filter-crs is left to pygeoapi), so pygeoapi's
    modify_pygeofilter would transform nothing and name no other geometry column."""
    if cql_text is None and not data:
        return None
    tree = adapters.parsed_filter("query" if cql_text is not None else "body")
    if tree is None or tree is adapters.NOT_CHECKED:
        raise Declined("filter not checked")
    return tree


_TRANSLATIONS: dict[tuple[str, str], str] = {}


def _translate(text: str, locale: Any) -> str:
    """pygeoapi's gettext translation of a fixed link title, looked up once per language."""
    key = (text, str(locale))
    translated = _TRANSLATIONS.get(key)
    if translated is None:
        translated = _TRANSLATIONS[key] = l10n.translate(text, locale)
    return translated


def _title(collection: Collection, locale: Any) -> str:
    key = str(locale)
    if key not in collection.titles:
        collection.titles[key] = l10n.translate(collection.resource["title"], locale)
    return collection.titles[key]


def items_links(api: Any, api_request: APIRequest, collection: Collection, query: ItemsQuery,
                matched: int, returned: int) -> list[dict]:
    """The links pygeoapi puts on an items page: formats, paging, collection."""
    locale = api_request.locale
    uri = f"{api.get_collections_url()}/{collection.id}/items"
    carried = "".join(
        f"&{urllib.parse.quote(k, safe='')}={urllib.parse.quote(str(v), safe=',')}"
        for k, v in api_request.params.items() if k not in ("f", "offset")
    )
    links = [
        {"type": "application/geo+json", "rel": api_request.get_linkrel(F_JSON),
         "title": _translate("This document as GeoJSON", locale),
         "href": f"{uri}?f={F_JSON}{carried}"},
        {"rel": api_request.get_linkrel(F_JSONLD), "type": FORMAT_TYPES[F_JSONLD],
         "title": _translate("This document as RDF (JSON-LD)", locale),
         "href": f"{uri}?f={F_JSONLD}{carried}"},
        {"type": FORMAT_TYPES[F_HTML], "rel": api_request.get_linkrel(F_HTML),
         "title": _translate("This document as HTML", locale),
         "href": f"{uri}?f={F_HTML}{carried}"},
    ]
    links += [{"type": formatter.mimetype, "rel": "alternate", "title": f"This document as {key}",
               "href": f"{uri}?f={formatter.name}{carried}"}
              for key, formatter in collection.formatters.items()]
    fmt = "" if api_request.format is None else f"f={api_request.format}&"
    offset, limit = query.offset, query.limit
    if offset > 0:
        links.append({"type": "application/geo+json", "rel": "prev",
                      "title": _translate("Items (prev)", locale),
                      "href": f"{uri}?{fmt}offset={max(0, offset - limit)}{carried}"})
    if matched > limit + offset or returned == limit:
        links.append({"type": "application/geo+json", "rel": "next",
                      "title": _translate("Items (next)", locale),
                      "href": f"{uri}?{fmt}offset={offset + limit}{carried}"})
    links.append({"type": FORMAT_TYPES[F_JSON],
                  "title": _title(collection, locale),
                  "rel": "collection", "href": uri.rsplit("/", 1)[0]})
    return links

