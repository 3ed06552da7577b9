"""The Flask application: OGC API at /ogc, STAC at /stac, assets at /assets, portal at /.

Run it with `taza serve` (gunicorn). `create_app` reads TAZA_HOME and TAZA_PUBLIC_URL.
"""

from __future__ import annotations

import os
import re

from flask import Flask, abort, jsonify, redirect, request, send_from_directory
from flask_cors import CORS
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from catalog import __version__, request_bodies, settings
from catalog.asset_responses import send_asset
from catalog.core.assets import ASSETS_ROUTE, AssetNotFound, AssetUnavailable
from catalog.core.record import Record
from catalog.discovery import openapi as discovery_openapi
from catalog.discovery import routes as discovery_routes
from catalog.features import LiveFeatures
from catalog.features.api import create_features_blueprint
from catalog.features.documents import Service
from catalog.http_policy import HttpPolicy
from catalog.jobs import QueueSettings, open_jobs, start_workers
from catalog.ogc import routes as ogc_routes
from catalog.ogc.runtime import OgcRuntime
from catalog.ogc_tiles import routes as tiles_routes
from catalog.portal import routes as portal_routes
from catalog.portal import vendor
from catalog.portal.tile_service import TileService
from catalog.stac_api import stac_blueprint
from catalog.stewards import api as stewards_api
from catalog.stewards.releases import job_handlers
from catalog.store import CatalogStore
from catalog.store.release_records import RecordsUnavailable

DATASET_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
VERSION = re.compile(r"^[0-9]{1,9}$")  # not str.isdigit(), which takes '²' (int() does not)
# Public reads, open to pages on any origin (STAC Browser, investors' dashboards, COG viewers
# reading ranges, web maps using our tiles). Never the stewards' API, which writes.
PUBLIC_READS = (r"/ogc/*", r"/stac/*", rf"{ASSETS_ROUTE}/*", r"/tiles/*", r"/healthz",
                r"/dcat", r"/datasets/[^/]+/(dcat|metadata\.xml)")
DEFAULT_URL = "http://127.0.0.1:5000"


def create_app(home: str | None = None, public_url: str | None = None) -> Flask:
    store = CatalogStore(home or settings.home())
    public_url = (public_url or os.environ.get("TAZA_PUBLIC_URL") or DEFAULT_URL).rstrip("/")
    live_features = LiveFeatures(store)
    # The /ogc OpenAPI document also describes OGC API - Records (catalog/discovery).
    runtime = OgcRuntime(store, public_url, live_features,
                         openapi_additions=[discovery_openapi.add_to])
    tile_service = TileService(store, live_features)
    service = Service.from_config(runtime.public_url)
    app = Flask(__name__, template_folder="portal/templates", static_folder="portal/static")
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20  # reads take no large bodies (CQL2 JSON at most)
    app.json.ensure_ascii = False
    _allow_cross_origin_reads(app)  # first: its response hook must run after ours
    # Before every other hook and view: no JSON parser behind it sees a hostile body.
    app.before_request(request_bodies.refuse_unreadable_body)
    # OGC API - Features (and the /ogc landing page, conformance and collections) before
    # pygeoapi's blueprint, which keeps coverages, processes, jobs and the OpenAPI document.
    app.register_blueprint(create_features_blueprint(
        live_features, service, store.assets, runtime.render_page, runtime.offered_processes,
        extensions=[tiles_routes.TilesExtension(),
                    discovery_routes.RecordsExtension(store, runtime.public_url)]))
    # OGC API - Tiles: tilesets, TileJSON and styles of the same collections.
    app.register_blueprint(tiles_routes.create_blueprint(live_features, service.base_url,
                                                         tile_service))
    _mount_ogc(app, runtime)
    _add_catalog_routes(app, store, runtime)
    # The investor portal: map page at /, dataset pages, map tiles, stewards' pages.
    app.register_blueprint(portal_routes.create_blueprint(store, runtime.public_url,
                                                          live_features, tile_service))
    # DCAT-AP 3 at /dcat, ISO 19139 per dataset, OGC API Records (catalog/discovery).
    app.register_blueprint(discovery_routes.create_blueprint(store, runtime.public_url,
                                                             runtime.render_page))
    # STAC API and the static STAC tree of the live release, both under /stac.
    app.register_blueprint(stac_blueprint(store, runtime.public_url))
    # The stewards' API at /api; its upload routes set their own body limit per request.
    # Publishing runs as jobs (catalog/jobs): queued by /api, run by this process's job
    # threads (TAZA_JOB_WORKERS) or by `taza worker`.
    jobs = open_jobs(store.home)
    app.register_blueprint(stewards_api.create_blueprint(store, jobs,
                                                         public_url=runtime.public_url))
    start_workers(jobs, job_handlers(store.home, store),
                  QueueSettings.from_environment().app_workers)
    _add_error_handlers(app)
    # Security headers on every answer and HEAD answered as GET (catalog/http_policy.py).
    app.wsgi_app = HttpPolicy(app.wsgi_app)
    proxies = settings.trusted_proxies()
    if proxies:
        # Behind nginx every request comes from 127.0.0.1: the client's address (sign-in
        # throttling, the audit trail) is the one the trusted proxy wrote, never the client's.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    return app


def _allow_cross_origin_reads(app: Flask) -> None:
    """CORS headers on public reads: any origin, no credentials. POST is the CQL2 JSON and
    STAC search body; Range lets browsers read COGs and other assets in parts."""
    CORS(app, resources={path: {"origins": "*"} for path in PUBLIC_READS},
         methods=["GET", "HEAD", "POST", "OPTIONS"],
         allow_headers=["Content-Type", "Range", "Accept", "Accept-Language"],
         expose_headers=["Content-Range", "Accept-Ranges", "Content-Length", "Content-Crs",
                         "Content-Language", "Content-Disposition", "Location", "Link"],
         send_wildcard=True, supports_credentials=False, max_age=86400)


def _mount_ogc(app: Flask, runtime: OgcRuntime) -> None:
    """OGC API at /ogc: our routes over pygeoapi's API functions (catalog/ogc/routes.py)."""
    app.register_blueprint(ogc_routes.create_blueprint(runtime), url_prefix="/ogc")


def _add_catalog_routes(app: Flask, store: CatalogStore, runtime: OgcRuntime) -> None:
    @app.get("/vendor/<package>/<path:path>")
    def vendored(package: str, path: str):
        target = vendor.vendored_file(package, path)
        if target is None:
            abort(404, description=f"no vendored file {package}/{path}")
        response = send_from_directory(target.parent, target.name, conditional=True)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    @app.get("/healthz")
    def healthz():
        # The live release, read now (while the database restarts: the one read last). A node
        # whose database has not answered since it started serves nothing yet, but lives.
        try:
            release, status = store.watch.current(fresh=True), "ok"
        except RecordsUnavailable:
            release, status = None, "degraded"
        return jsonify(status=status, version=__version__,
                       backend=settings.backend_name(), node=settings.node_name(),
                       release=release.number if release else None,
                       datasets=len(release.datasets) if release else 0)

    @app.get(f"{ASSETS_ROUTE}/<dataset_id>/<version>/<filename>")
    def asset(dataset_id: str, version: str, filename: str):
        record = _asset_record(store, dataset_id, version)
        if version == "latest":
            try:
                return redirect(store.assets.url(record, filename))
            except AssetNotFound:
                abort(404, description=f"{filename!r} is not a file name")
        files = record.files()
        if filename not in files:
            abort(404, description=f"{dataset_id} version {version} has no file {filename!r}")
        response = send_asset(store.assets, record, filename, files[filename],
                              download_name=filename)
        response.headers["Cache-Control"] = settings.VERSION_CACHE_CONTROL
        return response


def _asset_record(store: CatalogStore, dataset_id: str, version: str) -> Record:
    """The record of the live version, or 404: a version taken down by a rollback or a
    withdrawal is served to its stewards through /api only."""
    if not DATASET_ID.match(dataset_id) or not (VERSION.match(version) or version == "latest"):
        abort(404, description="no such dataset version")
    live = store.live_version(dataset_id)
    if live is None:
        abort(404, description=f"no published dataset {dataset_id!r}")
    if version != "latest" and int(version) != live:
        abort(404, description=f"{dataset_id} version {version} is not public; the live "
                               f"version is {live}")
    return store.record(dataset_id, live)


def _add_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        body = {"code": error.name, "description": error.description, "status": error.code}
        if getattr(error, "message_code", None):  # request_bodies.CodedBadRequest
            body.update(messageCode=error.message_code, params=getattr(error, "params", {}))
        response = jsonify(body)
        response.status_code = error.code or 500
        return response

    # A store that is down or refuses (the object store, the database holding the release
    # records): the client may retry; nothing is wrong with the request.
    unavailable = {AssetUnavailable: "the catalog's file storage",
                   RecordsUnavailable: "the catalog's database"}

    def service_unavailable(error: Exception):
        what = next(name for kind, name in unavailable.items() if isinstance(error, kind))
        app.logger.error("%s: %s", what, error)
        response = jsonify(code="ServiceUnavailable", status=503,
                           description=f"{what} does not answer; retry later")
        response.status_code = 503
        return response

    for kind in unavailable:
        app.register_error_handler(kind, service_unavailable)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        response = jsonify(code="InternalError", description="internal error (logged)")
        response.status_code = 500
        return response
