"""The STAC API as a Flask blueprint: `stac_blueprint(store, public_url)` owns every /stac route.

Routes are thin: parse (catalog.stac_api.params), ask the backend, decorate documents with
absolute links (catalog.stac_api.documents). The static tree of the live release is served
from the same blueprint, so /stac/catalog.json and its theme, collection and item files keep
working beside the API.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, request, send_from_directory
from werkzeug.exceptions import NotFound

from catalog.request_bodies import is_json_type
from catalog.safe_parse import UnsafeInput, nul_text_at, parse_json
from catalog.stac_api import openapi, params
from catalog.stac_index import sync
from catalog.stac_index.backend import InvalidQuery, ItemSearch, StacBackend
from catalog.stac_index.documents import GEOJSON, JSON, Links, apply_fields, dumps, with_base
from catalog.store import CatalogStore

STAC_VERSION = "1.1.0"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SCHEMA_JSON = "application/schema+json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
_NOT_YET = object()  # no release seen yet (None is a catalog with none published)

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/browseable",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#fields",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
    "https://api.stacspec.org/v1.0.0-rc.1/item-search#free-text",
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search",
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#free-text",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/simple-query",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-operators",
]


class StacApi:
    """The state behind the routes: store, backend, URLs, and the freshness check."""

    def __init__(self, store: CatalogStore, public_url: str, backend: StacBackend | None = None):
        self.store = store
        self.backend = backend or sync.open_index(store)
        self.links = Links(public_url)
        self._base_json = dumps(self.links.base)[1:-1]  # the public URL as JSON string content
        self._seen_release: int | None | object = _NOT_YET
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Catch up with the live release if the index is behind it: checked when the
        worker's release watch (catalog/store/watch.py) reports another release."""
        release = self.store.watch.current()
        number = release.number if release else None
        if number == self._seen_release:
            return
        with self._lock:
            if number != self._seen_release:
                sync.ensure_current(self.store, self.backend, release)
                self._seen_release = number

    # documents --------------------------------------------------------------------------

    def landing(self) -> dict:
        root = self._static_root()
        url, link = self.links.url, self.links.link
        links = [
            link("self", self.links.root), link("root", self.links.root),
            link("service-desc", url("api"), OPENAPI_JSON, "OpenAPI definition"),
            link("conformance", url("conformance"), title="Conformance classes"),
            link("data", url("collections"), title="Collections"),
            link("search", url("search"), GEOJSON, "Item search", method="GET"),
            link("search", url("search"), GEOJSON, "Item search", method="POST"),
            link(QUERYABLES_REL, url("queryables"), SCHEMA_JSON, "Queryables"),
            link("alternate", url("catalog.json"), title="Static STAC catalog"),
        ]
        for child in root.get("links", []):
            if child["rel"] == "child":  # the theme catalogs of the static tree
                href = child["href"].removeprefix("./")
                links.append(link("child", url(*href.split("/")), title=child.get("title")))
        return {"type": "Catalog", "id": root.get("id", "taza-koom"),
                "stac_version": STAC_VERSION, "title": root.get("title", "STAC API"),
                "description": root.get("description", "STAC API"),
                "conformsTo": CONFORMANCE, "links": links}

    def _static_root(self) -> dict:
        release = self.store.current()
        if release is None:
            return {}
        kept = self.store.stac_document(release, "catalog.json")
        if kept is not None:  # PostgreSQL: the tree is in the database, not in this home
            return json.loads(kept.body)
        return json.loads((release.stac_dir / "catalog.json").read_text(encoding="utf-8"))

    def item_collection(self, page_items: list[dict], fields: params.Fields,
                        next_link: dict | None, self_href: str,
                        rendered: list[str] | None = None) -> dict:
        """The FeatureCollection of a page: its stored items (`page_items`) linked, or its
        `rendered` items read back (already linked), with the fields asked for."""
        if rendered is not None:
            features = [apply_fields(json.loads(with_base(text, self._base_json)),
                                     fields.include, fields.exclude, owned=True)
                        for text in rendered]
        else:
            features = [apply_fields(self.links.item(i), fields.include, fields.exclude)
                        for i in page_items]
        links = [self.links.link("root", self.links.root),
                 self.links.link("self", self_href, GEOJSON)]
        if next_link:
            links.append(next_link)
        return {"type": "FeatureCollection", "features": features, "links": links,
                "numberReturned": len(features)}

    def item_collection_text(self, rendered: list[str], next_link: dict | None,
                             self_href: str) -> str:
        """What `_json(item_collection(...))` writes, from rendered items (no fields): the
        items' texts put in place as they are, not parsed and written again."""
        links = [self.links.link("root", self.links.root),
                 self.links.link("self", self_href, GEOJSON)]
        if next_link:
            links.append(next_link)
        features = ",".join(with_base(text, self._base_json) for text in rendered)
        return (f'{{"type":"FeatureCollection","features":[{features}],"links":{dumps(links)},'
                f'"numberReturned":{len(rendered)}}}')

    def check_sortable(self, query: ItemSearch) -> None:
        """400 for a sortby field that no searched collection's items have (a typo would
        otherwise sort nothing and look like success)."""
        if not query.sortby:
            return
        known: set[str] = set()
        for collection_id in query.collections or (None,):
            known.update(self.backend.queryables(collection_id))
        for key in query.sortby:
            if key.field not in known:
                raise InvalidQuery(f"sortby: unknown field '{key.field}'; sortable fields are "
                                   "listed by the queryables (except geometry)",
                                   message_code="sortby_unknown",
                                   params={"name": key.field[:80]})

    def queryables(self, collection_id: str | None) -> dict:
        path = ("collections", collection_id, "queryables") if collection_id else ("queryables",)
        return {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": self.links.url(*path),
            "type": "object",
            "title": f"Queryables of {collection_id or 'every collection'}",
            "description": "Properties a filter or sortby may name. A filter may name others "
                           "too (additionalProperties): items without them do not match. "
                           "sortby takes only these (not geometry).",
            "properties": self.backend.queryables(collection_id),
            "additionalProperties": True,
        }


def stac_blueprint(store: CatalogStore, public_url: str,
                   backend: StacBackend | None = None) -> Blueprint:
    """The /stac routes over `store`, with links under `public_url`."""
    api = StacApi(store, public_url, backend)
    blueprint = Blueprint("stac_api", __name__)

    @blueprint.before_request
    def refresh():
        api.refresh()

    @blueprint.errorhandler(InvalidQuery)
    def invalid_query(error: InvalidQuery):
        body = {"code": "InvalidParameterValue", "description": str(error), "status": 400}
        if error.message_code is not None:
            body.update(messageCode=error.message_code, params=error.params)
        return _json(body, status=400)

    @blueprint.get("/stac")
    @blueprint.get("/stac/")
    def landing():
        _no_parameters()
        return _json(api.landing())

    @blueprint.get("/stac/conformance")
    def conformance():
        _no_parameters()
        return _json({"conformsTo": CONFORMANCE})

    @blueprint.get("/stac/api")
    def service_description():
        _no_parameters()
        return _json(openapi.document(api.links.root, params.MAX_LIMIT), OPENAPI_JSON)

    @blueprint.get("/stac/queryables")
    def queryables():
        _no_parameters()
        return _json(api.queryables(None), SCHEMA_JSON)

    @blueprint.get("/stac/collections")
    def collections():
        query = params.collection_search_from_query(_single_args())
        page = api.backend.collections(query)
        base = api.links.url("collections")
        links = [api.links.link("root", api.links.root), api.links.link("parent", api.links.root),
                 api.links.link("self", _self_url(base))]
        if page.next_token:
            links.append(api.links.link("next", _with_token(base, page.next_token)))
        return _json({"collections": [api.links.collection(c) for c in page.features],
                      "links": links, "numberReturned": len(page.features)})

    @blueprint.get("/stac/collections/<collection_id>")
    def collection(collection_id: str):
        _no_parameters()
        return _json(api.links.collection(_collection(api, collection_id)))

    @blueprint.get("/stac/collections/<collection_id>/queryables")
    def collection_queryables(collection_id: str):
        _no_parameters()
        _collection(api, collection_id)
        return _json(api.queryables(collection_id), SCHEMA_JSON)

    @blueprint.get("/stac/collections/<collection_id>/items")
    def items(collection_id: str):
        _collection(api, collection_id)
        query, fields = params.item_search_from_query(_single_args(), params.ITEMS_PARAMS,
                                                      collection_id)
        base = api.links.url("collections", collection_id, "items")
        return _search_response(api, query, fields, base, body=None)

    @blueprint.get("/stac/collections/<collection_id>/items/<item_id>")
    def item(collection_id: str, item_id: str):
        _no_parameters()
        _collection(api, collection_id)
        found = api.backend.item(collection_id, item_id)
        if found is None:
            abort(404, description=f"collection {collection_id!r} has no item {item_id!r}")
        return _json(api.links.item(found), GEOJSON)

    @blueprint.get("/stac/search")
    def search_get():
        query, fields = params.item_search_from_query(_single_args())
        return _search_response(api, query, fields, api.links.url("search"), body=None)

    @blueprint.post("/stac/search")
    def search_post():
        if request.args:
            name = next(iter(request.args))
            raise InvalidQuery(f"{name}: POST searches take a JSON body, not query parameters",
                               message_code="body_query_parameter", params={"name": name[:80]})
        if not is_json_type(request.mimetype):
            raise InvalidQuery("body: expected a JSON object (Content-Type: application/json)",
                               message_code="json_body_type")
        try:
            body = parse_json(request.get_data(cache=True), "body")
        except UnsafeInput as err:
            raise InvalidQuery(str(err), message_code="json_body_unreadable") from None
        params.refuse_nul(nul_text_at(body, "body"))
        query, fields = params.item_search_from_body(body)
        return _search_response(api, query, fields, api.links.url("search"), body=body)

    @blueprint.get("/stac/<path:path>")
    def static_file(path: str):
        """The static STAC tree of the live release (catalog.json and below)."""
        _no_parameters()
        release = store.current()
        if release is None:
            abort(404, description="nothing is published yet")
        missing = f"no STAC document {path!r}"  # the same 404 on both profiles
        if not path.endswith(".json"):
            abort(404, description=missing)
        try:
            kept = store.stac_document(release, path)
        except FileNotFoundError:
            abort(404, description=missing)
        if kept is not None:  # PostgreSQL: looked up by its exact path (no traversal)
            answer = Response(kept.body, mimetype=JSON)
            # The headers send_from_directory gives the same document on the embedded profile,
            # with a content ETag where werkzeug makes one from the file's time and size.
            answer.set_etag(hashlib.sha256(kept.body).hexdigest()[:32])
            answer.last_modified = kept.modified
            answer.headers.set("Content-Disposition", "inline",
                               filename=path.rsplit("/", 1)[-1])
            answer.cache_control.no_cache = True
            return answer.make_conditional(request, accept_ranges=True,
                                           complete_length=len(kept.body))
        # send_from_directory refuses paths that leave the folder (no traversal); its own
        # 404 would say werkzeug's generic text.
        try:
            return send_from_directory(release.stac_dir, path, mimetype=JSON)
        except NotFound:
            abort(404, description=missing)

    return blueprint


# -- helpers -------------------------------------------------------------------------------


def _search_response(api: StacApi, query: ItemSearch, fields: params.Fields, base: str,
                     body: dict | None) -> Response:
    api.check_sortable(query)
    page = api.backend.search(query, rendered=True)
    next_link = None
    if page.next_token is not None:
        if body is None:
            next_link = api.links.link("next", _with_token(base, page.next_token), GEOJSON)
        else:
            next_link = api.links.link("next", base, GEOJSON, method="POST",
                                       body={**body, "token": page.next_token}, merge=False)
    self_href = _self_url(base) if body is None else base
    if page.rendered is not None and fields.include is None and not fields.exclude:
        return Response(api.item_collection_text(page.rendered, next_link, self_href),
                        content_type=GEOJSON)
    return _json(api.item_collection(page.features, fields, next_link, self_href,
                                     page.rendered), GEOJSON)


def _collection(api: StacApi, collection_id: str) -> dict:
    found = api.backend.collection(collection_id)
    if found is None:
        abort(404, description=f"no collection {collection_id!r}")
    return found


def _single_args() -> dict[str, str]:
    """Query parameters, each given once (a repeated one would otherwise be half ignored)."""
    for name, values in request.args.lists():
        if len(values) > 1:
            raise InvalidQuery(f"{name}: given {len(values)} times; give it once "
                               "(lists are comma-separated)", message_code="parameter_repeated",
                               params={"name": name[:80]})
    args = request.args.to_dict()
    for name, value in args.items():
        params.refuse_nul(nul_text_at(value, name))
    return args


def _no_parameters() -> None:
    if request.args:
        name = next(iter(request.args))
        raise InvalidQuery(f"{name}: unknown parameter; this endpoint takes none",
                           message_code="unknown_parameter", params={"name": name[:80]})


def _self_url(base: str) -> str:
    return f"{base}?{urlencode(request.args)}" if request.args else base


def _with_token(base: str, token: str) -> str:
    args = {k: v for k, v in request.args.items() if k != "token"}
    return f"{base}?{urlencode({**args, 'token': token})}"


def _json(document: Any, media: str = JSON, status: int = 200) -> Response:
    return Response(dumps(document), status=status, content_type=media)
