"""/ogc: our Flask blueprint over pygeoapi's API functions (its public API, docs/upstream.md)
for what pygeoapi serves here: coverages, processes, jobs and the OpenAPI document. OGC API -
Features, the landing page, conformance and the collections are our own routes
(catalog/features, mounted before this blueprint).

Each route builds pygeoapi's `APIRequest` from the request (or from the copy the edge put in
the form pygeoapi reads, catalog/ogc/adapters.py) and calls the pygeoapi API function for it
(`pygeoapi.api.coverages.get_collection_coverage`, `pygeoapi.api.processes.execute_process`,
...) with the API object of the live release (catalog/ogc/runtime.py). The edge runs first
(before_request): it refuses writes and what pygeoapi would ignore or misread, naming the
problem. pygeoapi's other endpoints (tiles, maps, EDR, STAC, AsyncAPI, admin) are not routed:
this server offers none of them, so they answer 404.

The maps of the /ogc pages draw the portal's relief tiles through /ogc/basemap/{z}/{x}/{y}.png,
which sends the browser to the live DEM's tiles: pygeoapi keeps the first config it renders a
page with for the life of the process (docs/upstream.md), so a versioned tile URL in the config
would point at a version taken down after the next publish.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pygeoapi.api as core_api
import pygeoapi.api.coverages as coverages_api
import pygeoapi.api.processes as processes_api
from flask import Blueprint, Response, jsonify, redirect, request
from pygeoapi.api import APIRequest
from pygeoapi.formats import F_HTML

from catalog.ogc import adapters
from catalog.ogc.config import BASEMAP_PATH
from catalog.ogc.runtime import OgcRuntime
from catalog.processes.inputs import last_refusal

STATIC = Path(__file__).resolve().parent / "static"
# One transparent pixel: the basemap's tile while no relief DEM is live (the map stays usable).
NO_BASEMAP_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
BLUEPRINT_NAME = "ogc"


def create_blueprint(runtime: OgcRuntime) -> Blueprint:
    """The /ogc blueprint over the runtime's live release (mount it at url_prefix="/ogc")."""
    blueprint = Blueprint(BLUEPRINT_NAME, __name__, static_folder=str(STATIC),
                          static_url_path="/static")
    blueprint.before_request(_edge(runtime))
    answer = _answerer(runtime)

    @blueprint.get("/openapi")
    def openapi():
        return answer(core_api.openapi_)

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
        last_refusal.set(None)
        response = answer(processes_api.execute_process, process_id)
        return adapters.with_message_code(response, last_refusal.get())

    # GET /jobs (the job list) is refused by the edge: job URLs are capabilities.
    @blueprint.get("/jobs")
    def jobs():
        return answer(processes_api.get_jobs)

    @blueprint.route("/jobs/<job_id>", methods=["GET", "DELETE"])
    def job(job_id: str):
        if request.method == "DELETE":
            return answer(processes_api.delete_job, job_id)
        response = answer(processes_api.get_jobs, job_id)
        return adapters.with_job_failure(response, runtime.api().manager, job_id)

    @blueprint.get("/jobs/<job_id>/results")
    def job_results(job_id: str):
        return answer(processes_api.get_job_result, job_id)

    @blueprint.get(f"{BASEMAP_PATH}/<int:z>/<int:x>/<int:y>.png")
    def basemap(z: int, x: int, y: int):
        tiles = runtime.basemap_tiles()
        if tiles:
            response = redirect(tiles.format(z=z, x=x, y=y))
        else:
            response = Response(NO_BASEMAP_PNG, mimetype="image/png")
        response.headers["Cache-Control"] = "public, max-age=60"  # until the next publish
        return response

    # pygeoapi's other collection endpoints (tiles, maps, EDR queries) are not offered here.
    # Routed so that the Features blueprint's hook can tell a feature collection's clients
    # where its features are (400); for the others, 404 naming what there is.
    @blueprint.get("/collections/<collection_id>/<part>")
    def collection_part(collection_id: str, part: str):
        response = jsonify({"code": "NotFound",
                            "description": f"collections here have no {part!r}: coverages are "
                                           f"at /ogc/collections/{{id}}/coverage, features at "
                                           f"/ogc/collections/{{id}}/items"})
        response.status_code = 404
        return response

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


def _language_of_html(runtime: OgcRuntime) -> str | None:
    """The catalog language the request asks for when it asks for HTML (else None: the
    default), as pygeoapi negotiates it (`lang`, then Accept-Language)."""
    api_request = APIRequest.from_flask(adapters.pygeoapi_request(), runtime.api().locales)
    if api_request.format != F_HTML:
        return None
    return api_request.locale.language


def _edge(runtime: OgcRuntime) -> Callable[[], Response | None]:
    def edge() -> Response | None:
        runtime.refresh_if_changed()
        return (adapters.refuse_writes() or adapters.refuse_job_listing() or
                adapters.refuse_tile_matrix_sets() or adapters.prepare_for_pygeoapi() or
                adapters.invalid_parameter_error())

    return edge
