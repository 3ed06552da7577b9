"""Where pygeoapi's answers need correcting, corrected at the edge of its /ogc blueprint
(coverages, processes, jobs, the OpenAPI document; OGC API - Features, the landing page,
conformance and the collections are our own routes: catalog/features).

- Query parameters: pygeoapi drops parameters it does not know (HTTP 200, unfiltered).
  We answer 400 naming the parameter instead.
- Writes are refused (no transactions), and so are the job list and /TileMatrixSets.
- `Accept: image/tiff` selects GeoTIFF on /coverage.
"""

from __future__ import annotations

import re

from flask import Response, jsonify, request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict

from catalog.core.parse import (
    BBoxError,
    BBoxRules,
    DatetimeError,
    DatetimeRules,
    parse_bbox,
    parse_datetime,
)
from catalog.processes import web as processes_web

COMMON_PARAMS = {"f", "lang"}
COVERAGE_PARAMS = COMMON_PARAMS | {"bbox", "bbox-crs", "datetime", "properties", "subset"}
COVERAGE_PATH = re.compile(r"^/ogc/collections/(?P<id>[^/]+)/coverage/?$")
TILE_MATRIX_SETS_PATH = re.compile(r"^/ogc/TileMatrixSets(/.*)?$")
WRITE_METHODS = {"PUT", "DELETE", "PATCH"}

# What the edge of pygeoapi's /coverage takes as bbox and datetime (catalog/core/parse.py; the
# Features routes take the same: catalog/features/items.py). pygeoapi checks these again after
# us; ours refuse first, with messages naming the parameter. A box crossing the antimeridian
# (minx > maxx) is refused here, as every minimum must not exceed its maximum.
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
    if request.method in WRITE_METHODS:
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


def negotiate_coverage_format() -> None:
    """Honour `Accept: image/tiff` on /coverage (pygeoapi only reads `f=`), as OGC API
    Coverages clients such as OWSLib ask for GeoTIFF through the Accept header."""
    if not COVERAGE_PATH.match(request.path) or "f" in request.args:
        return
    # Compare base types: werkzeug's quality() also matches parameters (application=geotiff).
    quality = {}
    for value, q in request.accept_mimetypes:
        base = value.split(";")[0].strip().lower()
        quality[base] = max(q, quality.get(base, 0))
    if quality.get("image/tiff", 0) > max(quality.get("application/json", 0),
                                          quality.get("application/prs.coverage+json", 0)):
        args = MultiDict(request.args)
        args["f"] = "GTiff"
        request.args = ImmutableMultiDict(args)  # read by pygeoapi's APIRequest


def invalid_parameter_error() -> Response | None:
    """400 for a parameter the endpoint would silently ignore, or one that is malformed.

    pygeoapi checks most values itself, but its messages do not always name the parameter
    ("miny should be less than maxy"); these checks run first and do.
    """
    path = request.path
    allowed = _allowed_parameters(path)
    if allowed is None:
        return None
    for name in request.args:
        if name not in allowed:
            return _bad_request(f"unknown query parameter {name!r} for {path}; "
                                f"allowed: {', '.join(sorted(allowed))}")
    problem = (_bbox_problem(request.args.get("bbox")) or _bbox_crs_problem() or
               _datetime_problem(request.args.get("datetime")) or
               processes_web.request_problem())
    if problem:
        return _bad_request(problem)
    return None


def _bbox_problem(value: str | None) -> str | None:
    """A bbox this edge refuses."""
    if value is None:
        return None
    try:
        parse_bbox(value, "bbox", BBOX_RULES)
    except BBoxError as err:
        return str(err)
    return None


def _bbox_crs_problem() -> str | None:
    """pygeoapi's coverages ignore a bbox-crs that comes without a bbox (items refuse it)."""
    if "bbox-crs" in request.args and "bbox" not in request.args:
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


def _allowed_parameters(path: str) -> set[str] | None:
    if COVERAGE_PATH.match(path):
        return COVERAGE_PARAMS
    if path.rstrip("/") == "/ogc/openapi":
        return COMMON_PARAMS | {"ui"}
    return processes_web.allowed_parameters(path)  # None: pygeoapi validates its own input


def _bad_request(message: str, code: str = "InvalidParameterValue") -> Response:
    response = jsonify({"code": code, "description": message})
    response.status_code = 400
    return response
