"""OGC API - Features routes over FeatureStores: a blueprint factory that owns its routes.

    create_features_blueprint(live, service, assets, render_page, offered_processes)

mounts, under /ogc: the landing page, conformance, the collections (vector layers and the
coverages, which pygeoapi serves), each collection, its queryables and schema, its items
(GET, and POST with a CQL2 JSON filter) and each item. Answers are GeoJSON/JSON, HTML
(`render_page`: the /ogc page templates), CSV and schema.org JSON-LD. The routes are thin:
checks in catalog/features/items.py, documents in documents.py and formats.py, features from
the live release's FeatureStores (release.py).

/collections/<id>/coverage, /processes, /jobs and /openapi are not here: pygeoapi's blueprint,
mounted after this one, answers them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from flask import Blueprint, Response, request

from catalog.core.assets import AssetLocator
from catalog.core.parse import ParameterError
from catalog.core.record import Record
from catalog.features import crs, documents, formats
from catalog.features.documents import Service, ServiceExtension
from catalog.features.formats import download_name
from catalog.features.items import (
    ITEM_PARAMETERS,
    ItemsRequest,
    check_parameters,
    first_values,
    items_request,
)
from catalog.features.negotiate import (
    CSV,
    CSV_MEDIA_TYPE,
    DEFAULT_LOCALE,
    HTML,
    JSON,
    JSONLD,
    MEDIA_TYPES,
    Negotiated,
    negotiate,
)
from catalog.features.problems import (
    ApiProblem,
    Refusal,
    bad_parameter,
    coded,
    not_found,
    refused,
)
from catalog.features.release import LiveRelease
from catalog.features.store import FeatureStore, FeatureStoreError
from catalog.manifest import licence_url

LOGGER = logging.getLogger(__name__)
PageRenderer = Callable[[str, dict, str], str]  # template, data, locale -> HTML
COMMON_PARAMETERS = frozenset({"f", "lang"})
QUERYABLES_PARAMETERS = COMMON_PARAMETERS | {"properties", "profile"}
DESCRIPTION_FORMATS = (JSON, HTML, JSONLD)
WRITES = ["PUT", "DELETE", "PATCH"]
COLLECTION_PART = re.compile(r"^/ogc/collections/(?P<id>[^/]+)/(?P<part>[^/]+)")


def create_features_blueprint(live: Callable[[], LiveRelease], service: Service,
                              assets: AssetLocator, render_page: PageRenderer,
                              offered_processes: Callable[[], Sequence[str]] = tuple,
                              name: str = "features",
                              extensions: Sequence[ServiceExtension] = ()) -> Blueprint:
    """The OGC API - Features routes under /ogc (see the module's docstring)."""
    blueprint = Blueprint(name, __name__, url_prefix="/ogc")
    answers = Answers(service, render_page)

    @blueprint.errorhandler(Refusal)
    def refusal(problem: Refusal) -> Response:
        return answers.problem(problem)

    @blueprint.before_app_request
    def refuse_other_parts_of_feature_collections() -> Response | None:
        """pygeoapi's routes under one of our feature collections (coverage, tiles, EDR
        queries) answer 400 saying where its features are: pygeoapi does not know these
        collections and would answer that they do not exist."""
        if request.blueprint in (None, name, *(e.blueprint for e in extensions)):
            return None
        match = COLLECTION_PART.match(request.path)
        record = live().record(match["id"]) if match else None
        if record is None or not record.is_vector:
            return None
        return answers.problem(ApiProblem(
            400, "NoApplicableCode", f"{record.id} is a feature collection: it has no "
            f"{match['part']!r}; its features are at /ogc/collections/{record.id}/items"))

    @blueprint.get("/")
    def landing_page() -> Response:
        asked = _description_request()
        release = live()
        data = documents.landing_page(service, asked, extensions)
        if asked.format == HTML:
            data.update({"collection": bool(release.records),
                         "process": bool(offered_processes()), "stac-collection": False,
                         "jobs": True})
            return answers.page("landing_page.html", data, asked)
        if asked.format == JSONLD:
            return answers.json(formats.data_catalog(service, asked.language), asked)
        return answers.json(data, asked)

    @blueprint.get("/conformance")
    def conformance() -> Response:
        asked = _description_request()
        data = documents.conformance(live().records, bool(offered_processes()), extensions)
        if asked.format == HTML:
            return answers.page("conformance.html", data, asked)
        return answers.json(data, asked)

    @blueprint.get("/collections")
    def collections() -> Response:
        asked = _description_request()
        records = live().records
        data = documents.collections(service, records, assets, asked, extensions)
        if asked.format == HTML:
            data.update(base_url=service.base_url, collections_path=service.collections_url)
            return answers.page("collections/index.html", data, asked)
        if asked.format == JSONLD:
            catalog = formats.data_catalog(service, asked.language)
            catalog["dataset"] = [formats.dataset(service, described, _licence(record))
                                  for described, record in zip(data["collections"], records,
                                                               strict=True)]
            return answers.json(catalog, asked)
        for extension in extensions:
            data["collections"] += extension.other_collections(asked)
        return answers.json(data, asked)

    @blueprint.get("/collections/<path:collection_id>")
    def collection(collection_id: str) -> Response:
        asked = _description_request()
        record = _record(live(), collection_id)
        data = documents.collection(service, record, assets, asked, extensions)
        if asked.format == HTML:
            data.update(base_url=service.base_url, collections_path=service.collections_url)
            return answers.page("collections/collection.html", data, asked)
        if asked.format == JSONLD:
            catalog = formats.data_catalog(service, asked.language)
            catalog["dataset"] = formats.dataset(service, data, _licence(record))
            return answers.json(catalog, asked)
        return answers.json(data, asked)

    @blueprint.get("/collections/<path:collection_id>/queryables")
    def queryables(collection_id: str) -> Response:
        asked = _description_request(QUERYABLES_PARAMETERS)
        release = live()
        record = _record(release, collection_id)
        layer = _layer(release, record)
        data = documents.queryables(service, record, layer, asked,
                                    _query_string(request.args.items(multi=True)))
        selected = [name for name in request.args.get("properties", "").split(",") if name]
        if "properties" in request.args:
            fields = set(data["properties"]) - {"geometry"}
            if set(selected) - fields:
                raise bad_parameter("unknown properties specified")
            _keep_properties(data, selected)
        if asked.format == HTML:
            del data["queryables"]  # the pre-1.0 list is for GDAL's JSON reader
            data.update(collections_path=service.collections_url,
                        dataset_path=f"{service.collections_url}/{collection_id}")
            return answers.page("collections/queryables.html", data, asked)
        return answers.json(data, asked, _schema_media_type(legacy=True))

    @blueprint.get("/collections/<path:collection_id>/schema")
    def schema(collection_id: str) -> Response:
        asked = _description_request()
        release = live()
        record = _record(release, collection_id)
        data = documents.schema(service, record, _layer(release, record), asked)
        if asked.format == HTML:
            data.update(collections_path=service.collections_url,
                        dataset_path=f"{service.collections_url}/{collection_id}")
            return answers.page("collections/schema.html", data, asked)
        return answers.json(data, asked, _schema_media_type(legacy=False))

    # Collection ids as pygeoapi's routes take them (<path:...>): same rules, and ours, being
    # registered first, answer.
    @blueprint.route("/collections/<path:collection_id>/items",
                     methods=["GET", "POST", *WRITES])
    def items(collection_id: str) -> Response:
        started = time.perf_counter()
        _refuse_writes()
        release = live()
        record = release.record(collection_id)
        layer = _layer(release, record) if record is not None else None
        fields = None if record is None else (layer.fields if layer is not None else {})
        checked = check_parameters(list(request.args.items(multi=True)), request.method,
                                   request.mimetype, request.get_data(), fields, request.path)
        asked = negotiate(first_values(checked.args), request.headers,
                          {CSV: CSV_MEDIA_TYPE})
        if record is None:
            raise not_found("Collection not found")
        wanted = items_request(service, record, layer, checked, asked)
        store = _store(release, record)
        return answers.items(store, record, wanted, asked, started)

    @blueprint.route("/collections/<path:collection_id>/items/<path:item_id>",
                     methods=["GET", *WRITES])
    def item(collection_id: str, item_id: str) -> Response:
        _refuse_writes()
        asked = _description_request(ITEM_PARAMETERS)
        release = live()
        record = _record(release, collection_id)
        if not record.is_vector:
            raise bad_parameter("Invalid provider type")
        output_crs = request.args.get("crs")
        if output_crs is not None and output_crs not in documents.SUPPORTED_CRS:
            raise bad_parameter(crs.not_supported(output_crs, documents.SUPPORTED_CRS))
        return answers.item(_store(release, record), record, item_id, output_crs, asked)

    return blueprint


# -- the request -------------------------------------------------------------------------------

def _description_request(allowed: frozenset[str] = COMMON_PARAMETERS) -> Negotiated:
    """Unknown parameters refused, then the format: JSON, HTML or JSON-LD."""
    for name in request.args:
        if name not in allowed:
            raise refused(f"unknown query parameter {name!r} for {request.path}; "
                          f"allowed: {', '.join(sorted(allowed))}",
                          message_code="unknown_parameter", params={"name": name})
    asked = negotiate(request.args, request.headers)
    if asked.format is not None and asked.format not in DESCRIPTION_FORMATS:
        raise bad_parameter("Invalid format requested")
    return asked


def _refuse_writes() -> None:
    """No transactions (OGC API - Features Part 4): the store changes only by publishing."""
    creates = request.method == "POST" and request.mimetype == "application/geo+json"
    if request.method in WRITES or creates:
        raise refused(f"{request.method} is not supported here: data is published through "
                      "the stewards' API (/api)", 405, "MethodNotAllowed")


def _record(release: LiveRelease, collection_id: str) -> Record:
    record = release.record(collection_id)
    if record is None:
        raise not_found("Collection not found")
    return record


def _layer(release: LiveRelease, record: Record):
    if not record.is_vector:
        return None
    return _store(release, record).describe()


def _store(release: LiveRelease, record: Record) -> FeatureStore:
    store = release.store(record.id)
    if store is None:  # it failed to open: logged when the release was loaded
        raise FeatureStoreError(f"{record.id}: its features cannot be served")
    return store


def _licence(record: Record) -> str:
    """The dataset's own licence (schema.org `license`): a URL naming it."""
    return licence_url(record.manifest.licence)


def _query_string(args) -> str:
    return urllib.parse.urlencode(list(args))


def _keep_properties(data: dict, selected: list[str]) -> None:
    data["properties"] = {name: value for name, value in data["properties"].items()
                          if name == "geometry" or name in selected}
    data["queryables"] = [entry for entry in data["queryables"] if entry["id"] in selected]


def _schema_media_type(legacy: bool) -> str:
    """application/schema+json; for queryables, application/json to clients that accept JSON
    but not JSON Schema (GDAL rejects the document otherwise): it is the same JSON."""
    if legacy:
        accepted = {value.split(";")[0].strip() for value, _ in request.accept_mimetypes}
        if "application/schema+json" not in accepted and "application/json" in accepted:
            return "application/json"
    return "application/schema+json"


# -- the answers ---------------------------------------------------------------------------------

class Answers:
    """Responses in the formats a request asked for."""

    def __init__(self, service: Service, render_page: PageRenderer):
        self.service = service
        self.render_page = render_page

    def json(self, data: Any, asked: Negotiated, media_type: str | None = None,
             headers: dict[str, str] | None = None) -> Response:
        media_type = media_type or MEDIA_TYPES.get(asked.format or JSON, MEDIA_TYPES[JSON])
        body = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
        return self._response(body, media_type, asked.locale, headers)

    def page(self, template: str, data: dict, asked: Negotiated, status: int = 200,
             headers: dict[str, str] | None = None, locale: str | None = None) -> Response:
        html = self.render_page(template, data, locale or asked.locale)
        return self._response(html.encode("utf-8"), MEDIA_TYPES[HTML], locale or asked.locale,
                              headers, status)

    def problem(self, problem: Refusal) -> Response:
        if not isinstance(problem, ApiProblem):
            body = orjson.dumps(problem.body())
            return Response(body, problem.status, content_type=MEDIA_TYPES[JSON])
        exception = {"code": problem.code, "type": problem.code, **problem.body()}
        asked = negotiate(request.args, request.headers)
        if asked.format == HTML:
            return self.page("exception.html", exception, asked, problem.status,
                             problem.headers, DEFAULT_LOCALE)
        media_type = MEDIA_TYPES.get(asked.format or JSON, MEDIA_TYPES[JSON])
        return self._response(orjson.dumps(exception), media_type, DEFAULT_LOCALE,
                              problem.headers, problem.status)

    @staticmethod
    def _response(body: bytes, media_type: str, locale: str, headers: dict[str, str] | None,
                  status: int = 200) -> Response:
        response = Response(body, status, content_type=media_type)
        response.headers["Content-Language"] = locale
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    # -- items ---------------------------------------------------------------------------------

    def items(self, store: FeatureStore, record: Record, wanted: ItemsRequest,
              asked: Negotiated, started: float) -> Response:
        headers = {"Content-Crs": wanted.content_crs}
        try:
            if wanted.hits:
                matched, features, source = store.count(wanted.query), [], "count"
            elif wanted.format in (None, JSON) and wanted.crs in (None, documents.CRS84):
                page = store.page_json(wanted.query)
                matched, features, source = page.matched, page.features, page.source
            else:
                page = store.page(wanted.query)
                matched, features, source = page.matched, page.features, "GeoPackage rows"
                crs.transform_features(features, crs.output_transformer(wanted.crs))
        except ParameterError as err:  # what the store cannot apply, named
            raise bad_parameter(str(err), "InvalidQuery", headers, **coded(err)) from None
        content = {"type": "FeatureCollection", "features": features, "numberMatched": matched,
                   "numberReturned": len(features),
                   "links": self._items_links(record, wanted, asked, matched, len(features)),
                   "timeStamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        elapsed = (time.perf_counter() - started) * 1000
        headers["Server-Timing"] = f'items;desc="features, {source}";dur={elapsed:.2f}'
        items_url = f"{self.service.collections_url}/{record.id}/items"
        if wanted.format == HTML:
            content.update(itemtype="feature", items_path=items_url,
                           dataset_path=items_url.rsplit("/", 1)[0],
                           collections_path=self.service.collections_url,
                           offset=wanted.query.offset, id_field=store.describe().id_field)
            return self.page("collections/items/index.html", content, asked, headers=headers)
        if wanted.format == CSV:
            headers["Content-Disposition"] = download_name("attachment", f"{record.id}.csv")
            return self._response(formats.csv_bytes(features), CSV_MEDIA_TYPE, asked.locale,
                                  headers)
        if wanted.format == JSONLD:
            return self.json(formats.item_list(items_url.rsplit("/", 1)[0], features), asked,
                             headers=headers)
        if wanted.format in (None, JSON):
            headers["Content-Disposition"] = download_name("inline", f"{record.id}.geojson")
        return self.json(content, asked, headers=headers)

    def _items_links(self, record: Record, wanted: ItemsRequest, asked: Negotiated,
                     matched: int, returned: int) -> list[dict]:
        url = f"{self.service.collections_url}/{record.id}/items"
        carried = wanted.link_query
        links = [
            {"type": "application/geo+json", "rel": asked.rel(JSON),
             "title": "This document as GeoJSON", "href": f"{url}?f=json{carried}"},
            {"rel": asked.rel(JSONLD), "type": MEDIA_TYPES[JSONLD],
             "title": "This document as RDF (JSON-LD)", "href": f"{url}?f=jsonld{carried}"},
            {"type": MEDIA_TYPES[HTML], "rel": asked.rel(HTML),
             "title": "This document as HTML", "href": f"{url}?f=html{carried}"},
            {"type": CSV_MEDIA_TYPE, "rel": "alternate", "title": "This document as CSV",
             "href": f"{url}?f=csv{carried}"},
        ]
        offset, limit = wanted.query.offset, wanted.query.limit
        asked_format = "" if asked.format is None else f"f={asked.format}&"
        if offset > 0:
            links.append({"type": "application/geo+json", "rel": "prev", "title": "Items (prev)",
                          "href": f"{url}?{asked_format}offset={max(0, offset - limit)}{carried}"})
        if matched > limit + offset or returned == limit:
            links.append({"type": "application/geo+json", "rel": "next", "title": "Items (next)",
                          "href": f"{url}?{asked_format}offset={offset + limit}{carried}"})
        links.append({"type": MEDIA_TYPES[JSON],
                      "title": documents.collection_title(record, asked.language),
                      "rel": "collection", "href": url.rsplit("/", 1)[0]})
        return links

    # -- one item --------------------------------------------------------------------------------

    def item(self, store: FeatureStore, record: Record, item_id: str, output_crs: str | None,
             asked: Negotiated) -> Response:
        headers = {"Content-Crs": f"<{output_crs or documents.CRS84}>"}
        feature = store.get(item_id)
        if feature is None:
            raise not_found(f"item {item_id} not found", headers)
        crs.transform_features([feature], crs.output_transformer(output_crs))
        collection_url = f"{self.service.collections_url}/{record.id}"
        uri = f"{collection_url}/items/{item_id}"
        base = self.service.base_url
        feature["links"] = [
            {"type": MEDIA_TYPES[JSON], "rel": "root",
             "title": "The landing page of this server as JSON", "href": f"{base}?f=json"},
            {"type": MEDIA_TYPES[HTML], "rel": "root",
             "title": "The landing page of this server as HTML", "href": f"{base}?f=html"},
            *documents.document_links(uri, asked, json_media="application/geo+json"),
            {"rel": "collection", "type": MEDIA_TYPES[JSON],
             "title": documents.collection_title(record, asked.language), "href": collection_url},
        ]
        if asked.format == HTML:
            feature.update(title=documents.collection_title(record, asked.language),
                           id_field=store.describe().id_field,
                           collections_path=self.service.collections_url)
            return self.page("collections/items/item.html", feature, asked, headers=headers)
        if asked.format == JSONLD:
            return self.json(formats.place(feature, uri), asked, headers=headers)
        return self.json(feature, asked, headers=headers)

