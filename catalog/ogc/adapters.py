"""The edge of /ogc: what pygeoapi gets wrong, handled in front of it (docs/upstream.md).

- Query parameters: pygeoapi drops parameters it does not know (HTTP 200, unfiltered).
  We answer 400 naming the parameter instead.
- Requests pygeoapi reads differently from the standards (a JSON filter in the query string,
  `Accept: image/tiff`, a `Prefer` list, ...) are handed to it as a copy in the form it reads
  (`pygeoapi_request`); the client's request itself is never changed.
Until our own OGC API Features routes replace pygeoapi's (issue 12), its Features answers are
corrected after the fact (`correct_response`):
- Conformance: pygeoapi declares transactions (Part 4) and CQL2 classes for every server with a
  feature collection. We declare the classes this server passes.
- Coverage collections carry "layerDataType": "Coverage", without which GDAL's OAPIF driver
  opens them as feature layers and the listing fails.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Request, Response, g, jsonify, request
from werkzeug.datastructures import MultiDict

from catalog.core.cql2 import Cql2Error, between_as_pygeofilter_reads, parse_filter
from catalog.core.parse import (
    BBox,
    BBoxError,
    BBoxRules,
    DatetimeError,
    DatetimeRules,
    parse_bbox,
    parse_datetime,
)
from catalog.ogc.openapi import CQL2_JSON_MEDIA
from catalog.processes import web as processes_web
from catalog.safe_parse import UnsafeInput, parse_json

COMMON_PARAMS = {"f", "lang"}
ITEMS_PARAMS = COMMON_PARAMS | {
    "bbox", "bbox-crs", "crs", "limit", "offset", "resulttype", "datetime", "sortby",
    "properties", "skipGeometry", "q", "filter", "filter-lang", "filter-crs",
}
ITEM_PARAMS = COMMON_PARAMS | {"crs"}
COVERAGE_PARAMS = COMMON_PARAMS | {"bbox", "bbox-crs", "datetime", "properties", "subset"}
ITEMS_PATH = re.compile(r"^/ogc/collections/(?P<id>[^/]+)/items/?$")
ITEM_PATH = re.compile(r"^/ogc/collections/(?P<id>[^/]+)/items/[^/]+$")
COVERAGE_PATH = re.compile(r"^/ogc/collections/(?P<id>[^/]+)/coverage/?$")
COLLECTIONS_PATH = re.compile(r"^/ogc/collections(/(?P<id>[^/]+))?/?$")
QUERYABLES_PATH = re.compile(r"^/ogc/collections/(?P<id>[^/]+)/queryables/?$")
TILE_MATRIX_SETS_PATH = re.compile(r"^/ogc/TileMatrixSets(/.*)?$")
TILING_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
FEATURES = "http://www.opengis.net/spec/ogcapi-features"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"
# What the GeoPackage provider implements (catalog/ogc/providers/geopackage.py).
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
NOT_PASSED = (f"{FEATURES}-4/",  # no transactions: the store is written only by publishing
              # execute requests with a subscriber are refused (catalog/processes/web.py)
              "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/callback")


WRITE_METHODS = {"PUT", "DELETE", "PATCH"}
CQL2_JSON_TYPES = CQL2_JSON_MEDIA

# What the edge of /ogc takes as bbox and datetime (catalog/core/parse.py). pygeoapi checks
# these again after us; ours refuse first, with messages naming the parameter. A box crossing
# the antimeridian (minx > maxx) is refused here, as every minimum must not exceed its maximum.
_BBOX_SHAPE = "{param}: {value!r} must be 4 or 6 comma-separated finite numbers"
_BBOX_ORDER = ("{param}: {value!r}: each minimum must not exceed its maximum "
               "(minx,miny,maxx,maxy)")
BBOX_RULES = BBoxRules(messages={
    "number": "{param}: {value!r} must be 4 or 6 comma-separated numbers",
    "count": _BBOX_SHAPE, "finite": _BBOX_SHAPE,
    "y_order": _BBOX_ORDER, "x_order": _BBOX_ORDER, "z_order": _BBOX_ORDER,
})
# ISO 8601 as Python reads it, 'Z' read as '+00:00'; a lone '' or '..' is left to pygeoapi
# (which refuses it), '/' and '../..' are refused; the order of the ends is the provider's.
_DATETIME_FORM = "{param}: {value!r} must be an RFC 3339 instant or an interval start/end"
DATETIME_RULES = DatetimeRules(
    z_offset=True, strip=False, lone_open=True, forms_refused=("/", "../.."), ordered=False,
    messages={"form": _DATETIME_FORM, "slashes": _DATETIME_FORM,
              "instant": "{param}: {item!r} is not an RFC 3339 date or date-time"},
)


def refuse_writes() -> Response | None:
    """405 for OGC API transactions: the store changes only by publishing (stewards' API)."""
    if request.method == "DELETE" and processes_web.JOB_PATH.match(request.path):
        return None  # dismissing a processing job (OGC API - Processes) writes no data
    creates = request.method == "POST" and request.mimetype == "application/geo+json" \
        and ITEMS_PATH.match(request.path)
    if request.method in WRITE_METHODS or creates:
        response = jsonify({"code": "MethodNotAllowed",
                            "description": f"{request.method} is not supported here: data is "
                                           "published through the stewards' API (/api)"})
        response.status_code = 405
        return response
    return None


def refuse_job_listing() -> Response | None:
    """404 for GET /ogc/jobs: job URLs are capabilities (catalog/processes/web.py)."""
    message = processes_web.job_list_refused()
    if message is None:
        return None
    response = jsonify({"code": "NotFound", "description": message})
    response.status_code = 404
    return response


def refuse_tile_matrix_sets() -> Response | None:
    """404 for /ogc/TileMatrixSets: pygeoapi offers it on every server, but ours has no OGC API
    - Tiles collections (map tiles are the portal's XYZ endpoints under /tiles), and pygeoapi
    renders its HTML with its stock templates whatever server.templates says, inline scripts
    included, which our Content-Security-Policy refuses."""
    if not TILE_MATRIX_SETS_PATH.match(request.path):
        return None
    response = jsonify({"code": "NotFound",
                        "description": "this server has no OGC API - Tiles collections: map "
                                       "tiles are served as XYZ templates under /tiles"})
    response.status_code = 404
    return response


@dataclass
class PygeoapiForm:
    """What pygeoapi is given for this request where it differs from the client's: the query
    (a copy), a body, environ values (request headers)."""

    args: MultiDict
    body: bytes | None = None  # None: the client's body
    environ: dict[str, str] = field(default_factory=dict)
    changed: bool = False

    def request(self) -> Request:
        """A Flask request over a copy of the WSGI environ with these values."""
        environ = dict(request.environ, **self.environ)
        environ["QUERY_STRING"] = urlencode(list(self.args.items(multi=True)))
        body = request.get_data(cache=True) if self.body is None else self.body
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return Request(environ, populate_request=False)


def prepare_for_pygeoapi() -> Response | None:
    """Put the request into the form pygeoapi reads, without changing its meaning (kept on
    flask.g for `pygeoapi_request`); a Response when the request cannot be put so."""
    form = PygeoapiForm(MultiDict(request.args))
    g.ogc_form = form
    # '+name' arrives as ' name' when the client did not percent-encode the plus sign.
    if " " in form.args.get("sortby", ""):
        form.args["sortby"] = ",".join("+" + key.strip() if key.startswith(" ") else key
                                       for key in form.args["sortby"].split(","))
        form.changed = True
    # pygeoapi parses `filter` as CQL2 text whatever filter-lang says, and reads CQL2 JSON
    # only from a POST body: hand it a JSON filter the way it reads one.
    if form.args.get("filter-lang") in ("cql2-json", "cql-json") and "filter" in form.args:
        text = form.args.pop("filter")
        try:
            document = parse_json(text, "filter")
        except UnsafeInput as err:
            return _bad_request(f"{err} (filter-lang=cql2-json)")
        form.body = json.dumps(between_as_pygeofilter_reads(document)).encode()
        form.changed = True
    elif request.method == "POST" and ITEMS_PATH.match(request.path):
        problem = _items_post_problem()
        if problem is not None:
            return problem
        document = parse_json(request.get_data(), "request body")  # checked just above
        form.body = json.dumps(between_as_pygeofilter_reads(document)).encode()
        form.changed = True
    if _coverage_as_geotiff(form.args):
        form.changed = True
    if processes_web.pygeoapi_form(form.args, form.environ):
        form.changed = True
    return None


def pygeoapi_request() -> Request:
    """The request pygeoapi reads: the client's, or a copy in the form prepared for it."""
    form = getattr(g, "ogc_form", None)
    if form is None or not form.changed:
        return request
    if "ogc_pygeoapi_request" not in g:
        g.ogc_pygeoapi_request = form.request()
    return g.ogc_pygeoapi_request


def _prepared_args() -> MultiDict:
    """The query prepared for pygeoapi (the client's before prepare_for_pygeoapi runs)."""
    form = getattr(g, "ogc_form", None)
    return form.args if form is not None else request.args


def _prepared_body() -> bytes | None:
    """The body prepared for pygeoapi, when it is not the client's."""
    form = getattr(g, "ogc_form", None)
    return form.body if form is not None else None


def _items_post_problem() -> Response | None:
    """POST .../items is a search with a CQL2 JSON filter as the body (transactions are
    refused before this): anything else would reach pygeoapi, which answers no response."""
    if request.mimetype not in CQL2_JSON_TYPES:
        response = jsonify({"code": "UnsupportedMediaType",
                            "description": "POST a CQL2 JSON filter with Content-Type: "
                                           f"{' or '.join(CQL2_JSON_TYPES)}"})
        response.status_code = 415
        return response
    try:
        document = parse_json(request.get_data(), "request body")
    except UnsafeInput as err:
        return _bad_request(f"{err} (expected a CQL2 JSON filter)")
    if not isinstance(document, dict):
        return _bad_request("request body: a CQL2 JSON filter is a JSON object such as "
                            '{"op": "=", "args": [{"property": "name"}, "Osh"]}')
    return None


def _coverage_as_geotiff(args: MultiDict) -> bool:
    """Honour `Accept: image/tiff` on /coverage (pygeoapi only reads `f=`), as OGC API
    Coverages clients such as OWSLib ask for GeoTIFF through the Accept header."""
    if not COVERAGE_PATH.match(request.path) or "f" in args:
        return False
    # Compare base types: werkzeug's quality() also matches parameters (application=geotiff).
    quality = {}
    for value, q in request.accept_mimetypes:
        base = value.split(";")[0].strip().lower()
        quality[base] = max(q, quality.get(base, 0))
    if quality.get("image/tiff", 0) > max(quality.get("application/json", 0),
                                          quality.get("application/prs.coverage+json", 0)):
        args["f"] = "GTiff"
        return True
    return False


def invalid_parameter_error(runtime) -> Response | None:
    """400 for a parameter the endpoint would silently ignore, or one that is malformed.

    pygeoapi checks most values itself, but its messages do not always name the parameter
    ("miny should be less than maxy", "Bad CQL text"); these checks run first and do.
    """
    path = request.path
    allowed = _allowed_parameters(runtime, path)
    if allowed is None:
        return None
    args = _prepared_args()  # what pygeoapi will read (a JSON filter moved to the body)
    for name in args:
        if name not in allowed:
            return _bad_request(f"unknown query parameter {name!r} for {path}; "
                                f"allowed: {', '.join(sorted(allowed))}")
    problem = (_bbox_problem(args.get("bbox")) or _bbox_crs_problem(args) or
               _datetime_problem(args.get("datetime")) or
               _filter_problem(args.get("filter"), args.get("filter-lang")) or
               _json_filter_problem() or processes_web.request_problem())
    if problem:
        return _bad_request(problem)
    g.ogc_parameters_checked = True
    return None


def _json_filter_problem() -> str | None:
    """A CQL2 JSON filter (put into the body by prepare_for_pygeoapi) that won't parse;
    the parsed filter is kept for the request (`parsed_filter`)."""
    data = _prepared_body()
    if not data or not ITEMS_PATH.match(request.path):
        return None
    try:
        g.ogc_body_filter = parse_filter(data.decode(), "cql2-json")
    except Cql2Error as err:
        return f"filter: not valid CQL2 JSON: {_first_line(err)}"
    return None


def _first_line(err: Cql2Error) -> str:
    """The parser's own first line, as this edge has always shown it."""
    cause = err.cause if err.cause is not None else err
    return str(cause).splitlines()[0][:200] if str(cause) else type(cause).__name__


def _bbox_problem(value: str | None) -> str | None:
    """A bbox this edge refuses; the parsed box is kept for the request (`parsed_bbox`)."""
    if value is None:
        return None
    try:
        g.ogc_bbox = parse_bbox(value, "bbox", BBOX_RULES)
    except BBoxError as err:
        return str(err)
    return None


def _bbox_crs_problem(args: MultiDict) -> str | None:
    """pygeoapi's coverages ignore a bbox-crs that comes without a bbox (items refuse it)."""
    if "bbox-crs" in args and "bbox" not in args:
        return "bbox-crs: given without bbox"
    return None


def _datetime_problem(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_datetime(value, "datetime", DATETIME_RULES)
    except DatetimeError as err:
        return str(err)
    return None


def _filter_problem(text: str | None, language: str | None) -> str | None:
    """A `filter` query parameter that won't parse; the parsed filter is kept for the request
    (`parsed_filter`), so it is parsed once."""
    if text is None:
        return None
    lang = "cql2-json" if language in ("cql2-json", "cql-json") else "cql2-text"
    try:
        g.ogc_query_filter = parse_filter(text, lang)
    except Cql2Error as err:
        return f"filter: not valid CQL2 ({language or 'cql2-text'}): {_first_line(err)}"
    return None


NOT_CHECKED = object()  # what `parsed_filter` and `parsed_bbox` answer outside a checked request


def parsed_filter(source: str) -> Any:
    """The CQL2 filter this request's check parsed: from the `filter` query parameter
    (source 'query') or from the body (source 'body'); None when there was none."""
    if not getattr(g, "ogc_parameters_checked", False):
        return NOT_CHECKED
    return getattr(g, f"ogc_{source}_filter", None)


def parsed_bbox() -> BBox | None | object:
    """The bbox this request's check parsed (None when there was none)."""
    if not getattr(g, "ogc_parameters_checked", False):
        return NOT_CHECKED
    return getattr(g, "ogc_bbox", None)


def _allowed_parameters(runtime, path: str) -> set[str] | None:
    if match := ITEMS_PATH.match(path):
        fields = _queryable_names(runtime, match["id"])
        return None if fields is None else ITEMS_PARAMS | fields
    if ITEM_PATH.match(path):
        return ITEM_PARAMS
    if COVERAGE_PATH.match(path):
        return COVERAGE_PARAMS
    if path.rstrip("/") in ("/ogc", "/ogc/conformance", "/ogc/openapi") or \
            COLLECTIONS_PATH.match(path):
        return COMMON_PARAMS | ({"ui"} if path.startswith("/ogc/openapi") else set())
    return processes_web.allowed_parameters(path)  # None: pygeoapi validates its own input


def _queryable_names(runtime, collection_id: str) -> set[str] | None:
    """Property names usable as equality filters (pygeoapi passes those to the provider)."""
    if collection_id not in runtime.config.get("resources", {}):
        return None  # let pygeoapi answer 404
    return runtime.fields.get(collection_id, set())


def correct_response(response: Response, runtime) -> Response:
    """Fix conformance and coverage collection descriptions in pygeoapi's JSON answers."""
    # pygeoapi replaces response.headers with a plain dict, so read the header itself.
    content_type = str(response.headers.get("Content-Type", ""))
    if response.status_code != 200 or not content_type.startswith(("application/json",
                                                                   "application/schema+json")):
        return response
    path = request.path.rstrip("/")
    if path == "/ogc":
        return _rewrite(response, _without_tiling_schemes)
    if path == "/ogc/conformance":
        return _rewrite(response, _declared_conformance)
    if COLLECTIONS_PATH.match(path):
        return _rewrite(response, lambda body: _mark_coverages(body, runtime))
    if QUERYABLES_PATH.match(path):
        return _legacy_queryables(_rewrite(response, _add_queryables_list))
    return response


def _add_queryables_list(body: dict) -> dict:
    """Also list queryables the pre-1.0 way ({"queryables": [{"id": ...}]}): GDAL 3.6 reads
    only that form to decide which properties it may put in a server-side CQL filter."""
    body["queryables"] = [
        {"id": name, "type": schema.get("type", "geometry"), "title": schema.get("title", name)}
        for name, schema in body.get("properties", {}).items() if name != "geometry"
    ]
    return body


def _legacy_queryables(response: Response) -> Response:
    """Answer application/json to clients that accept JSON but not application/schema+json
    (GDAL rejects the document otherwise); it is the same JSON either way."""
    accepted = {value.split(";")[0].strip() for value, _ in request.accept_mimetypes}
    if "application/schema+json" not in accepted and "application/json" in accepted:
        response.headers["Content-Type"] = "application/json"
    return response


def _without_tiling_schemes(body: dict) -> dict:
    """The landing page without links to /ogc/TileMatrixSets (refused: refuse_tile_matrix_sets)."""
    body["links"] = [link for link in body.get("links", []) if link.get("rel") != TILING_SCHEMES]
    return body


def _declared_conformance(body: dict) -> dict:
    classes = [c for c in body.get("conformsTo", [])
               if not c.startswith(NOT_PASSED) and not c.startswith(CQL2)]
    classes += [c for c in FILTER_CLASSES if c not in classes]
    body["conformsTo"] = classes
    return body


def _mark_coverages(body: dict, runtime) -> dict:
    resources = runtime.config.get("resources", {})
    for collection in body.get("collections", [body]):
        resource = resources.get(collection.get("id"), {})
        kinds = {p["type"] for p in resource.get("providers", [])}
        if "coverage" in kinds and "feature" not in kinds:
            collection["layerDataType"] = "Coverage"
    return body


def _rewrite(response: Response, change) -> Response:
    body = change(json.loads(response.get_data()))
    response.set_data(json.dumps(body, ensure_ascii=False))
    return response


def _bad_request(message: str) -> Response:
    response = jsonify({"code": "InvalidParameterValue", "description": message})
    response.status_code = 400
    return response
