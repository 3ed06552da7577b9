"""The edge of pygeoapi's part of /ogc (coverages, processes, jobs, the OpenAPI document):
what pygeoapi gets wrong, handled in front of it (docs/upstream.md). OGC API - Features, the
landing page, conformance and the collections are our own routes (catalog/features).

- Query parameters: pygeoapi drops parameters it does not know (HTTP 200, unfiltered).
  We answer 400 naming the parameter instead.
- Writes are refused (no transactions), and so are the job list and pygeoapi's
  /TileMatrixSets (ours is /tileMatrixSets, catalog/ogc_tiles).
- Requests pygeoapi reads differently from the standards (`Accept: image/tiff` on /coverage,
  a `Prefer` list, job results without a format) are handed to it as a copy in the form it
  reads (`pygeoapi_request`); the client's request itself is never changed.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Request, Response, g, jsonify, request
from pygeoapi.process.base import ProcessorExecuteError
from werkzeug.datastructures import MultiDict

from catalog.core.parse import ParameterError, parse_bbox, parse_datetime
from catalog.features.items import BBOX_RULES, DATETIME_RULES
from catalog.processes import web as processes_web

COMMON_PARAMS = {"f", "lang"}
COVERAGE_PARAMS = COMMON_PARAMS | {"bbox", "bbox-crs", "datetime", "properties", "subset"}
COVERAGE_PATH = re.compile(r"^/ogc/collections/(?P<id>[^/]+)/coverage/?$")
TILE_MATRIX_SETS_PATH = re.compile(r"^/ogc/TileMatrixSets(/.*)?$")
WRITE_METHODS = {"PUT", "DELETE", "PATCH"}
# /coverage takes bbox and datetime as the Features routes do (BBOX_RULES, DATETIME_RULES of
# catalog/features/items.py). pygeoapi checks these again after us; ours refuse first, with
# messages naming the parameter. A box crossing the antimeridian (minx > maxx) is refused.


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


def with_message_code(response: Response, refusal: ProcessorExecuteError | None) -> Response:
    """pygeoapi's JSON refusal of a process input (400), or of an execution a busy server
    cannot run (503: over its time budget, no computation slot, the job queue full), with the
    refusal's message code and params added (`messageCode`, `params`): the portal says it in
    the page's language from them; the English `description` stays for API clients. Anything
    else is returned as it is."""
    code = getattr(refusal, "code", None)
    if (not isinstance(code, str) or response.status_code not in (400, 503)
            or not response.is_json):
        return response
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return response
    body.update(messageCode=code, params=getattr(refusal, "params", None) or {})
    response.set_data(json.dumps(body, ensure_ascii=False))
    return response


def with_job_failure(response: Response, manager: Any, job_id: str) -> Response:
    """pygeoapi's JSON status of a failed job with why it failed as a message code and params
    (`messageCode`, `params`), which our job manager keeps beside the English `message`
    (pygeoapi's status has no field for them): the portal says the failure in the page's
    language. Any other answer is returned as it is."""
    if response.status_code != 200 or not response.is_json:
        return response
    body = response.get_json(silent=True)
    if not isinstance(body, dict) or body.get("status") != "failed":
        return response
    failure = getattr(manager, "failure", None)  # our SQLiteJobManager's
    code, params = failure(job_id) if failure is not None else (None, {})
    if code is None:
        return response
    body.update(messageCode=code, params=params)
    response.set_data(json.dumps(body, ensure_ascii=False))
    return response


def refuse_job_listing() -> Response | None:
    """404 for GET /ogc/jobs: job URLs are capabilities (catalog/processes/web.py)."""
    message = processes_web.job_list_refused()
    if message is None:
        return None
    response = jsonify({"code": "NotFound", "description": message})
    response.status_code = 404
    return response


def refuse_tile_matrix_sets() -> Response | None:
    """404 for pygeoapi's /ogc/TileMatrixSets: our OGC API - Tiles routes (catalog/ogc_tiles)
    answer /ogc/tileMatrixSets, as the standard spells it, and pygeoapi renders its HTML with
    its stock templates whatever server.templates says, inline scripts included, which our
    Content-Security-Policy refuses."""
    if not TILE_MATRIX_SETS_PATH.match(request.path):
        return None
    response = jsonify({"code": "NotFound",
                        "description": "the tile matrix sets are at /ogc/tileMatrixSets"})
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


def invalid_parameter_error() -> Response | None:
    """400 for a parameter the endpoint would silently ignore, or one that is malformed.

    pygeoapi checks most values itself, but its messages do not always name the parameter
    ("miny should be less than maxy"); these checks run first and do.
    """
    path = request.path
    allowed = _allowed_parameters(path)
    if allowed is None:
        return None
    args = _prepared_args()  # what pygeoapi will read
    for name in args:
        if name not in allowed:
            return _bad_request(f"unknown query parameter {name!r} for {path}; "
                                f"allowed: {', '.join(sorted(allowed))}",
                                message_code="unknown_parameter", params={"name": name})
    try:
        _check_bbox(args.get("bbox"))
        if "bbox-crs" in args and "bbox" not in args:
            # pygeoapi's coverages ignore a bbox-crs that comes without a bbox (items refuse it)
            return _bad_request("bbox-crs: given without bbox", message_code="bbox_crs_alone")
        _check_datetime(args.get("datetime"))
    except ParameterError as err:
        return _bad_request(str(err), message_code=err.message_code, params=err.params)
    problem = processes_web.request_problem()
    if problem:
        return _bad_request(problem)
    return None


def _check_bbox(value: str | None) -> None:
    """BBoxError for a bbox this edge refuses."""
    if value is not None:
        parse_bbox(value, "bbox", BBOX_RULES)


def _check_datetime(value: str | None) -> None:
    """DatetimeError for a datetime this edge refuses."""
    if value is not None:
        parse_datetime(value, "datetime", DATETIME_RULES)


def _allowed_parameters(path: str) -> set[str] | None:
    if COVERAGE_PATH.match(path):
        return COVERAGE_PARAMS
    if path.rstrip("/") == "/ogc/openapi":
        return COMMON_PARAMS | {"ui"}
    return processes_web.allowed_parameters(path)  # None: pygeoapi validates its own input


def _bad_request(message: str, message_code: str | None = None,
                 params: dict | None = None) -> Response:
    body: dict = {"code": "InvalidParameterValue", "description": message}
    if message_code is not None:
        body.update(messageCode=message_code, params=params or {})
    response = jsonify(body)
    response.status_code = 400
    return response
