"""/ogc: our Flask blueprint over pygeoapi's API functions (its public API, docs/upstream.md).

Each route builds pygeoapi's `APIRequest` from the request (or from the copy the edge put in
the form pygeoapi reads, catalog/ogc/adapters.py) and calls the pygeoapi API function for it
(`pygeoapi.api.coverages.get_collection_coverage`, `pygeoapi.api.processes.execute_process`,
...) with the API object of the live release (catalog/ogc/runtime.py). The edge runs first
(before_request): it refuses writes and what pygeoapi would ignore or misread, naming the
problem. pygeoapi's other endpoints (tiles, maps, EDR, STAC, AsyncAPI, admin) are not routed:
this server offers none of them, so they answer 404.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygeoapi.api as core_api
import pygeoapi.api.coverages as coverages_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
from flask import Blueprint, Response, request
from pygeoapi.api import APIRequest
from pygeoapi.formats import F_HTML, F_JSONLD

from catalog.ogc import adapters, jsonld
from catalog.ogc.items import DirectItems
from catalog.ogc.runtime import OgcRuntime

STATIC = Path(__file__).resolve().parent / "static"
BLUEPRINT_NAME = "ogc"


def create_blueprint(runtime: OgcRuntime) -> Blueprint:
    """The /ogc blueprint over the runtime's live release (mount it at url_prefix="/ogc")."""
    blueprint = Blueprint(BLUEPRINT_NAME, __name__, static_folder=str(STATIC),
                          static_url_path="/static")
    blueprint.before_request(_edge(runtime))
    blueprint.after_request(_corrected(runtime))
    answer = _answerer(runtime)

    @blueprint.get("/")
    def landing_page():
        return answer(core_api.landing_page)

    @blueprint.get("/openapi")
    def openapi():
        return answer(core_api.openapi_)

    @blueprint.get("/conformance")
    def conformance():
        return answer(core_api.conformance)

    @blueprint.get("/collections")
    @blueprint.get("/collections/<path:collection_id>")
    def collections(collection_id: str | None = None):
        if _asks_for(runtime, F_JSONLD):  # each dataset with its own licence
            return answer(jsonld.collections_jsonld, collection_id, runtime.licences)
        return answer(core_api.describe_collections, collection_id)

    @blueprint.get("/collections/<path:collection_id>/schema")
    def collection_schema(collection_id: str):
        return answer(core_api.get_collection_schema, collection_id)

    @blueprint.get("/collections/<path:collection_id>/queryables")
    def collection_queryables(collection_id: str):
        return answer(itemtypes_api.get_collection_queryables, collection_id)

    # POST is a search with a CQL2 JSON body (transactions are refused by the edge).
    @blueprint.route("/collections/<path:collection_id>/items", methods=["GET", "POST"])
    def collection_items(collection_id: str):
        return answer(itemtypes_api.get_collection_items, collection_id, check_format=False)

    # PUT and DELETE reach the edge, which answers why they are refused.
    @blueprint.route("/collections/<path:collection_id>/items/<path:item_id>",
                     methods=["GET", "PUT", "DELETE"])
    def collection_item(collection_id: str, item_id: str):
        return answer(itemtypes_api.get_collection_item, collection_id, item_id)

    @blueprint.get("/collections/<path:collection_id>/coverage")
    def collection_coverage(collection_id: str):
        # pygeoapi renders the coverage page in its default language whatever the request
        # asks: hand it the API object whose default is the request's language.
        return answer(coverages_api.get_collection_coverage, collection_id, check_format=False,
                      language=_language_of_html(runtime))

    @blueprint.get("/processes")
    @blueprint.get("/processes/<process_id>")
    def processes(process_id: str | None = None):
        return answer(processes_api.describe_processes, process_id)

    @blueprint.post("/processes/<process_id>/execution")
    def execution(process_id: str):
        return answer(processes_api.execute_process, process_id)

    # GET /jobs (the job list) is refused by the edge: job URLs are capabilities.
    @blueprint.get("/jobs")
    def jobs():
        return answer(processes_api.get_jobs)

    @blueprint.route("/jobs/<job_id>", methods=["GET", "DELETE"])
    def job(job_id: str):
        if request.method == "DELETE":
            return answer(processes_api.delete_job, job_id)
        return answer(processes_api.get_jobs, job_id)

    @blueprint.get("/jobs/<job_id>/results")
    def job_results(job_id: str):
        return answer(processes_api.get_job_result, job_id)

    # Routed only to say why there is nothing there (the edge answers 404 with the reason).
    @blueprint.get("/TileMatrixSets")
    @blueprint.get("/TileMatrixSets/<path:tile_matrix_set>")
    def tile_matrix_sets(tile_matrix_set: str | None = None):
        return adapters.refuse_tile_matrix_sets()

    return blueprint


def _answerer(runtime: OgcRuntime) -> Callable[..., Response]:
    def answer(api_function: Callable, *args: str | None, check_format: bool = True,
               language: str | None = None) -> Response:
        """pygeoapi's answer to this request: the API function's (headers, status, content)
        as a Flask response. `check_format` refuses formats pygeoapi does not know before the
        function runs (as pygeoapi's own Flask app does, except where the function checks the
        collection's own formats)."""
        api = runtime.api(language)
        api_request = APIRequest.from_flask(adapters.pygeoapi_request(), api.locales)
        if check_format and not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            headers, status, content = api_function(api, api_request, *args)
        return Response(content, status=status, headers=headers)

    return answer


def _negotiated(runtime: OgcRuntime) -> APIRequest:
    """The request as pygeoapi reads it (format from `f` or Accept, language from `lang` or
    Accept-Language)."""
    api = runtime.api()
    return APIRequest.from_flask(adapters.pygeoapi_request(), api.locales)


def _asks_for(runtime: OgcRuntime, format_: str) -> bool:
    return _negotiated(runtime).format == format_


def _language_of_html(runtime: OgcRuntime) -> str | None:
    """The catalog language the request asks for when it asks for HTML (else None: the
    default), as pygeoapi negotiates it (`lang`, then Accept-Language)."""
    api_request = _negotiated(runtime)
    if api_request.format != F_HTML:
        return None
    return api_request.locale.language


def _edge(runtime: OgcRuntime) -> Callable[[], Response | None]:
    direct_items = DirectItems(runtime)

    def edge() -> Response | None:
        runtime.refresh_if_changed()
        refused = (adapters.refuse_writes() or adapters.refuse_job_listing() or
                   adapters.refuse_tile_matrix_sets() or adapters.prepare_for_pygeoapi() or
                   adapters.invalid_parameter_error(runtime))
        if refused is not None:
            return refused
        # Plain GeoJSON pages of our GeoPackage layers are written without pygeoapi's
        # dict-and-json pipeline; None leaves the request to pygeoapi's view.
        if match := adapters.ITEMS_PATH.match(request.path):
            return direct_items.answer(match["id"])
        return None

    return edge


def _corrected(runtime: OgcRuntime) -> Callable[[Response], Response]:
    def corrected(response: Response) -> Response:
        # Features answers only, until our own Features routes replace pygeoapi's.
        return adapters.correct_response(response, runtime)

    return corrected
