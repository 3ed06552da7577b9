"""The catalog's metadata for other catalogs: DCAT-AP 3 at /dcat (and per dataset) and ISO 19139
per dataset, as a Flask blueprint over catalog/metadata's writers.

    /dcat                             the whole catalog (Turtle, RDF/XML, JSON-LD)
    /datasets/<id>/dcat               one dataset
    /datasets/<id>/metadata.xml       one dataset as ISO 19139
    /ogc/collections/metadata/...     OGC API - Records (collection, items, queryables,
                                      sortables; JSON, and HTML pages for people)
    /csw                              CSW 2.0.2 and 3.0 through pycsw (csw.py)

The form comes from `f` (ttl, rdf, jsonld; anything else is 400) or else from Accept (Turtle
when Accept names none of them). Documents are built once per live release and form.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, jsonify, request

from catalog import settings
from catalog.core.cql2 import parse_filter
from catalog.core.languages import FALLBACK_LANGUAGE
from catalog.core.parse import (
    BBoxRules,
    ParameterError,
    parse_bbox,
    parse_datetime,
    whole_number,
)
from catalog.core.record import Record
from catalog.discovery import csw, records
from catalog.features.api import PageRenderer
from catalog.features.negotiate import HTML, JSON, Negotiated, choices, negotiate
from catalog.metadata import dcat
from catalog.metadata.iso19139 import iso19139_xml
from catalog.metadata.links import RECORDS_COLLECTION, CatalogInfo, CatalogUrls
from catalog.store import CatalogStore

FORMS = {form.name: form for form in dcat.FORMS}
BY_MEDIA_TYPE = {form.media_type: form for form in dcat.FORMS}
ISO_MEDIA_TYPE = "application/vnd.iso.19139+xml"
CACHE_CONTROL = "public, max-age=60"  # follows a new release within a minute


class ReleaseCache:
    """Documents of the live release, built once per release and key (thread-safe)."""

    def __init__(self, store: CatalogStore):
        self.store = store
        self.lock = threading.Lock()
        self.release: int | None = None
        self.documents: dict[tuple, bytes] = {}

    def get(self, key: tuple, build: Callable[[], bytes]) -> bytes:
        current = self.store.current()
        number = current.number if current else None
        with self.lock:
            if number != self.release:
                self.release, self.documents = number, {}
            if key in self.documents:
                return self.documents[key]
        document = build()
        with self.lock:
            if number == self.release:
                self.documents[key] = document
        return document


def create_blueprint(store: CatalogStore, public_url: str,
                     render_page: PageRenderer) -> Blueprint:
    """`render_page` renders the Records HTML pages with the /ogc templates
    (catalog/ogc/templates/records)."""
    blueprint = Blueprint("discovery", __name__)
    urls = CatalogUrls(public_url.rstrip("/"))
    info = CatalogInfo.from_config()
    cache = ReleaseCache(store)

    @blueprint.get("/dcat")
    def catalog_dcat() -> Response:
        form = _rdf_form()
        body = cache.get(("dcat", form.name), lambda: dcat.serialize(
            dcat.catalog_graph(store.current_records(), urls, store.assets, info), form))
        return _answer(body, form.media_type)

    @blueprint.get("/datasets/<dataset_id>/dcat")
    def dataset_dcat(dataset_id: str) -> Response:
        form = _rdf_form()
        record = _live_record(store, dataset_id)
        body = cache.get(("dcat", form.name, dataset_id), lambda: dcat.serialize(
            dcat.dataset_graph(record, urls, store.assets), form))
        return _answer(body, form.media_type)

    @blueprint.get("/datasets/<dataset_id>/metadata.xml")
    def dataset_iso(dataset_id: str) -> Response:
        _only_parameters()
        record = _live_record(store, dataset_id)
        body = cache.get(("iso", dataset_id), lambda: iso19139_xml(record, urls, store.assets))
        return _answer(body, ISO_MEDIA_TYPE)

    add_records_routes(blueprint, store, urls, info, render_page)

    @blueprint.route("/csw", methods=["GET", "POST"])
    def catalogue_service() -> Response:
        """CSW through pycsw (catalog/discovery/csw.py)."""
        refused = sorted(name for name in request.args
                         if name.lower() in csw.REFUSED_PARAMETERS)
        if refused:
            abort(400, description=f"{refused[0]}: not a CSW parameter")
        try:
            csw.ensure_repository(store, urls.base)
            status, media_type, body = csw.forward(
                store.home, request.method, request.query_string.decode("latin-1"),
                request.get_data() if request.method == "POST" else None,
                request.headers.get("Content-Type"))
        except csw.CswUnavailable as err:
            abort(503, description=f"CSW is not available: {err}")
        return Response(body, status=status, content_type=media_type)

    return blueprint


def _rdf_form() -> dcat.RdfForm:
    """The serialisation asked for: `f` first, else Accept, else Turtle."""
    _only_parameters("f")
    if "f" in request.args:
        name = request.args["f"]
        if name not in FORMS:
            abort(400, description=f"f: {name!r} is not a format of this document; "
                                   f"use one of {', '.join(FORMS)}")
        return FORMS[name]
    for media_type in choices(request.headers.get("Accept")):
        if media_type in BY_MEDIA_TYPE:
            return BY_MEDIA_TYPE[media_type]
    return FORMS["ttl"]


def _only_parameters(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        abort(400, description=f"unknown query parameter(s) {unknown}; "
                               f"allowed: {list(allowed)}")
    repeated = [name for name in allowed if len(request.args.getlist(name)) > 1]
    if repeated:
        abort(400, description=f"{repeated[0]}: give it once")


def _live_record(store: CatalogStore, dataset_id: str) -> Record:
    version = store.live_version(dataset_id)
    if version is None:
        abort(404, description=f"no published dataset {dataset_id!r}")
    return store.record(dataset_id, version)


def _answer(body: bytes, media_type: str) -> Response:
    response = Response(body, mimetype=media_type)
    if media_type.startswith("text/") or media_type.endswith("xml"):
        response.headers["Content-Type"] = f"{media_type}; charset=utf-8"
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Vary"] = "Accept"
    return response



# -- OGC API - Records ----------------------------------------------------------------------

RECORDS_ROUTE = f"/ogc/collections/{RECORDS_COLLECTION}"
ITEMS_PARAMETERS = ("f", "lang", "limit", "offset", "q", "bbox", "datetime", "theme",
                    "keywords", "ids", "type", "sortby", "filter", "filter-lang")
DEFAULT_LIMIT, MAX_LIMIT = 10, 1000
BBOX_RULES = BBoxRules(sizes=(4,), lon_lat=True, messages={
    "count": "{param}: expected 4 numbers minx,miny,maxx,maxy (WGS84 longitude, latitude)"})
GEOJSON = "application/geo+json"


RECORDS = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf"
# What /ogc/conformance adds for the records (CQL2 filtering is declared there already).
RECORDS_CONFORMANCE = (f"{RECORDS}/record-core", f"{RECORDS}/record-collection",
                       f"{RECORDS}/record-api", f"{RECORDS}/sorting", f"{RECORDS}/json",
                       f"{RECORDS}/html")


def records_collections(store: CatalogStore,
                        public_url: str) -> Callable[[Negotiated], list[dict]]:
    """The record collection as /ogc/collections lists it, in the language asked (once
    something is published, like the other collections)."""
    urls = CatalogUrls(public_url.rstrip("/"))
    info = CatalogInfo.from_config()

    def listed(asked: Negotiated) -> list[dict]:
        rows = [records.RecordRow(record) for record in store.current_records()]
        if not rows:
            return []
        return [records.collection_document(urls, _local(info.title, asked),
                                            _local(info.description, asked), rows)]

    return listed


class RecordsExtension:
    """What the /ogc documents of catalog.features list for the records (a ServiceExtension):
    the Records conformance classes and the record collection in the JSON collections list."""

    blueprint = "discovery"

    def __init__(self, store: CatalogStore, public_url: str):
        self._listed = records_collections(store, public_url)

    def conformance(self, records: Sequence[Record]) -> list[str]:
        return list(RECORDS_CONFORMANCE)

    def landing_links(self, base_url: str) -> list[dict]:
        return []

    def collection_links(self, record: Record, collection_url: str) -> list[dict]:
        return []

    def other_collections(self, asked: Negotiated) -> list[dict]:
        return self._listed(asked)


def add_records_routes(blueprint: Blueprint, store: CatalogStore, urls: CatalogUrls,
                       info: CatalogInfo, render_page: PageRenderer) -> None:
    """OGC API - Records at /ogc/collections/metadata (JSON, or HTML when `f=html` or a
    browser's Accept asks for it; see catalog/discovery/records.py)."""

    def rows() -> list[records.RecordRow]:
        return [records.RecordRow(record) for record in store.current_records()]

    def answer(body: dict, media_type: str, asked: Negotiated, template: str, url: str,
               **page: object) -> Response:
        if asked.format != HTML:
            return _json(body, media_type, asked)
        data = {**body, **page, "records_path": urls.records,
                "collections_path": f"{urls.ogc}/collections",
                "links": [*body.get("links", ()), _json_alternate(url, media_type)]}
        response = Response(render_page(template, data, asked.locale), mimetype="text/html")
        response.headers["Content-Language"] = asked.locale
        response.headers["Cache-Control"] = CACHE_CONTROL
        response.headers["Vary"] = "Accept, Accept-Language"
        return response

    @blueprint.errorhandler(ParameterError)
    def bad_parameter(error: ParameterError) -> Response:
        response = jsonify(code="InvalidParameterValue", description=str(error), status=400)
        response.status_code = 400
        return response

    @blueprint.get(RECORDS_ROUTE)
    def records_collection() -> Response:
        asked = _records_request("f", "lang", html=True)
        return answer(records.collection_document(
            urls, _local(info.title, asked), _local(info.description, asked), rows()),
            "application/json", asked, "records/collection.html", urls.records,
            themes=_theme_titles(settings.themes(), asked))

    @blueprint.get(f"{RECORDS_ROUTE}/queryables")
    def records_queryables() -> Response:
        asked = _records_request("f", "lang")
        return _json(records.properties_schema(
            tuple(records.QUERYABLES), f"{urls.records}/queryables",
            "Queryable properties of the catalog's records", geometry=True),
            "application/schema+json", asked)

    @blueprint.get(f"{RECORDS_ROUTE}/sortables")
    def records_sortables() -> Response:
        asked = _records_request("f", "lang")
        return _json(records.properties_schema(
            records.SORTABLES, f"{urls.records}/sortables",
            "Sortable properties of the catalog's records"), "application/schema+json", asked)

    @blueprint.get(f"{RECORDS_ROUTE}/items")
    def records_items() -> Response:
        asked = _records_request(*ITEMS_PARAMETERS, html=True)
        query = records_query(request.args)
        matched, page = records.search(rows(), query)
        themes = settings.themes()
        body = {
            "type": "FeatureCollection",
            "features": [records.record_document(row.record, urls, store.assets,
                                                 asked.language, themes) for row in page],
            "numberMatched": matched, "numberReturned": len(page),
            "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "links": _page_links(f"{urls.records}/items", query, matched),
        }
        return answer(body, GEOJSON, asked, "records/items.html", f"{urls.records}/items",
                      offset=query.offset,
                      query=request.args.get("q", ""), theme=request.args.get("theme", ""),
                      themes=_theme_titles(themes, asked))

    @blueprint.get(f"{RECORDS_ROUTE}/items/<record_id>")
    def records_item(record_id: str) -> Response:
        asked = _records_request("f", "lang", html=True)
        record = _live_record(store, record_id)
        return answer(records.record_document(record, urls, store.assets, asked.language,
                                              settings.themes()), GEOJSON, asked,
                      "records/item.html", urls.record(record_id),
                      labelled_links=records.record_links(record, urls, store.assets))


def records_query(args: Mapping[str, str]) -> records.RecordsQuery:
    """The search a request asks for; ParameterError (400) naming the parameter."""
    filter_lang = args.get("filter-lang", "cql2-text")
    if filter_lang not in ("cql2-text", "cql2-json"):
        raise ParameterError("filter-lang", f"filter-lang: {filter_lang!r} is not one of "
                                            "cql2-text, cql2-json")
    if "filter-lang" in args and "filter" not in args:
        raise ParameterError("filter-lang", "filter-lang: given without a filter")
    return records.RecordsQuery(
        limit=_integer(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_integer(args, "offset", 0, 0, 1 << 31),
        q=_terms(args, "q"), keywords=_terms(args, "keywords"), themes=_terms(args, "theme"),
        ids=_terms(args, "ids"), types=_terms(args, "type"),
        bbox=parse_bbox(args["bbox"], "bbox", BBOX_RULES) if "bbox" in args else None,
        datetime=parse_datetime(args["datetime"], "datetime") if "datetime" in args else None,
        filter=parse_filter(args["filter"], filter_lang) if "filter" in args else None,
        sortby=records.check_sortby(args["sortby"]) if "sortby" in args else (),
    )


def _records_request(*allowed: str, html: bool = False) -> Negotiated:
    """The format and language asked; `html`: the route also has an HTML page."""
    _only_parameters(*allowed)
    asked = negotiate(request.args, request.headers)
    formats = (JSON, HTML) if html else (JSON,)
    if asked.format not in (None, *formats) and "f" not in request.args:
        return Negotiated(None, asked.locale, asked.requested_locale)  # Accept: JSON it is
    if asked.format not in (None, *formats):
        abort(400, description=f"f: {asked.format!r} is not a format of this document; "
                               f"use {' or '.join(formats)}")
    return asked


def _json_alternate(url: str, media_type: str) -> dict:
    """The link an HTML page gives to its JSON form (its URL with the same query and f=json)."""
    args = [(name, value) for name, value in request.args.items(multi=True) if name != "f"]
    return {"rel": "alternate", "type": media_type, "title": "JSON",
            "href": f"{url}?{urlencode([*args, ('f', 'json')])}"}


def _theme_titles(themes: dict, asked: Negotiated) -> dict[str, str]:
    """Theme id -> its title in the language asked (the search form's choices)."""
    return {theme_id: _local(theme["title"], asked) for theme_id, theme in themes.items()}


def _terms(args: Mapping[str, str], name: str) -> tuple[str, ...]:
    if name not in args:
        return ()
    terms = tuple(term.strip() for term in args[name].split(",") if term.strip())
    if not terms:
        raise ParameterError(name, f"{name}: give at least one non-empty value")
    return terms


def _integer(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    if name not in args:
        return default
    value = whole_number(args[name], low, high)
    if value is None:
        raise ParameterError(name, f"{name}: {args[name]!r} must be an integer from {low} to "
                                   f"{high}")
    return value


def _page_links(url: str, query: records.RecordsQuery, matched: int) -> list[dict]:
    args = [(name, value) for name, value in request.args.items(multi=True)
            if name != "offset"]

    def href(offset: int) -> str:
        return f"{url}?{urlencode([*args, ('offset', str(offset))])}"

    links = [{"rel": "self", "href": href(query.offset), "type": GEOJSON,
              "title": "This page"}]
    if query.offset + query.limit < matched:
        links.append({"rel": "next", "href": href(query.offset + query.limit), "type": GEOJSON,
                      "title": "The next page"})
    if query.offset > 0:
        links.append({"rel": "prev", "href": href(max(0, query.offset - query.limit)),
                      "type": GEOJSON, "title": "The previous page"})
    return links


def _local(texts: dict[str, str], asked: Negotiated) -> str:
    return texts.get(asked.language, texts[FALLBACK_LANGUAGE])


def _json(body: dict, media_type: str, asked: Negotiated) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), mimetype=media_type)
    response.headers["Content-Language"] = asked.locale
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Vary"] = "Accept, Accept-Language"  # the same URL also answers HTML
    return response
