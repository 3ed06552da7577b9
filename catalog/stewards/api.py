"""The stewards' API under /api: a thin Flask adapter over catalog.stewards' functions.

Authentication: `Authorization: Bearer <token>` (tokens from `taza users`). Without it, a
request reads what is published and nothing else; a wrong token is 401 everywhere. Every error
is JSON naming the problem; unknown query parameters are 400. Endpoints: docs/stewards.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Response, jsonify, request, send_file

from catalog.request_bodies import is_json_type, read_body, streams_body
from catalog.safe_parse import UnsafeInput, check_yaml, parse_json
from catalog.sources.uploads import UploadLimits, UploadOptions
from catalog.stewards import accounts, audit, drafts, openapi, releases, report
from catalog.stewards.db import stewards_dir
from catalog.stewards.errors import (
    BadRequest,
    Forbidden,
    ServiceError,
    TooLarge,
    Unauthenticated,
    Unsupported,
)
from catalog.stewards.receive import MULTIPART_OVERHEAD, receive_multipart, receive_raw
from catalog.store import CatalogStore

MANIFEST_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml",
                  "text/x-yaml")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_AUDIT_PAGE = 1000
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"


def create_blueprint(store: CatalogStore, limits: UploadLimits | None = None) -> Blueprint:
    api = Blueprint("stewards_api", __name__, template_folder="templates")
    home = store.home
    limits = limits or UploadLimits.from_environment()

    @api.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        response = jsonify(error.as_dict())
        response.status_code = error.status
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="taza"'
        return response

    @api.get("/api")
    @api.get("/api/")
    @params()
    def index():
        user = current_user(home)
        return jsonify(service="Taza Koom stewards' API", documentation="docs/stewards.md",
                       openapi="/api/openapi.json",
                       links=[{"rel": "service-desc", "href": "/api/openapi.json",
                               "type": OPENAPI_JSON, "title": "OpenAPI 3.0 of this API"}],
                       user=user.as_dict() if user else None, endpoints=ENDPOINTS,
                       limits={"upload_bytes": limits.max_upload_bytes,
                               "unzipped_bytes": limits.max_unzipped_bytes,
                               "attribute_bytes": limits.max_attribute_bytes})

    @api.get("/api/openapi.json")
    @params()
    def service_description():
        current_user(home)  # a wrong token is 401 on every route
        return Response(json.dumps(openapi.document("/api")), content_type=OPENAPI_JSON)

    @api.get("/api/me")
    @params()
    def me():
        user = current_user(home)
        if user is None:
            raise Unauthenticated("no token given: send 'Authorization: Bearer <token>'")
        return jsonify(user.as_dict())

    @api.get("/api/datasets")
    @params()
    def datasets():
        return jsonify(datasets=drafts.list_datasets(home, store, current_user(home)))

    @api.post("/api/datasets")
    @params()
    def create_dataset():
        user = authenticated(home)  # the token before the body
        body = json_body()
        result = drafts.create_dataset(home, store, user, body.get("id"),
                                       body.get("organisation"))
        return jsonify(result), 201

    @api.get("/api/datasets/<dataset_id>")
    @params()
    def dataset(dataset_id: str):
        return jsonify(drafts.get_dataset(home, store, current_user(home), dataset_id))

    @api.get("/api/datasets/<dataset_id>/draft")
    @params()
    def draft(dataset_id: str):
        return jsonify(drafts.get_draft(home, current_user(home), dataset_id))

    @api.delete("/api/datasets/<dataset_id>/draft")
    @params()
    def discard(dataset_id: str):
        drafts.discard(home, current_user(home), dataset_id)
        return "", 204

    @api.get("/api/datasets/<dataset_id>/draft/manifest")
    @params()
    def get_manifest(dataset_id: str):
        text = drafts.get_manifest(home, current_user(home), dataset_id)
        return Response(text, mimetype="text/plain", content_type="text/plain; charset=utf-8")

    @api.put("/api/datasets/<dataset_id>/draft/manifest")
    @params()
    def put_manifest(dataset_id: str):
        user = authenticated(home)
        if request.mimetype not in MANIFEST_TYPES:
            raise Unsupported(f"send the manifest as one of {', '.join(MANIFEST_TYPES)}")
        try:
            text = read_body().decode("utf-8")
            check_yaml(text)  # aliases (YAML bombs), tags, deep nesting: never stored
        except UnicodeDecodeError as err:
            raise BadRequest("the manifest must be UTF-8 text") from err
        except UnsafeInput as err:
            raise BadRequest(str(err)) from err
        result, ok = drafts.put_manifest(home, user, dataset_id, text)
        return jsonify(result), 200 if ok else 422

    @api.put("/api/datasets/<dataset_id>/draft/source")
    @params("filename", "repair", "variable")
    @streams_body
    def put_source(dataset_id: str):
        user = authenticated(home)
        filename = request.args.get("filename", "").replace("\\", "/").rsplit("/", 1)[-1]
        if not filename:
            raise BadRequest("name the file: ?filename=NAME.EXT (the extension gives the format)")
        options = upload_options()
        stream = upload_stream(limits.max_upload_bytes)
        received = receive_raw(stream, filename, stewards_dir(home) / "tmp",
                               limits.max_upload_bytes)
        return upload_answer(drafts.accept_upload(home, user, dataset_id, received, options,
                                                  limits))

    @api.post("/api/datasets/<dataset_id>/draft/source")
    @params("repair", "variable")
    @streams_body
    def post_source(dataset_id: str):
        user = authenticated(home)
        boundary = request.mimetype_params.get("boundary")
        if request.mimetype != "multipart/form-data" or not boundary:
            raise Unsupported("POST a multipart/form-data body (file in field 'file'), or PUT "
                              "the raw file with ?filename=")
        options = upload_options()
        stream = upload_stream(limits.max_upload_bytes + MULTIPART_OVERHEAD)
        received = receive_multipart(stream, boundary.encode("latin-1"),
                                     stewards_dir(home) / "tmp", limits.max_upload_bytes)
        return upload_answer(drafts.accept_upload(home, user, dataset_id, received, options,
                                                  limits))

    @api.get("/api/datasets/<dataset_id>/draft/report")
    @params("f")
    def draft_report(dataset_id: str):
        data = drafts.get_report(home, current_user(home), dataset_id)
        if wants_html():
            return Response(report.render_html(data), mimetype="text/html")
        return jsonify(data)

    @api.post("/api/datasets/<dataset_id>/draft/submit")
    @params()
    def submit(dataset_id: str):
        return jsonify(drafts.submit(home, current_user(home), dataset_id))

    @api.post("/api/datasets/<dataset_id>/draft/approve")
    @params()
    def approve(dataset_id: str):
        return jsonify(drafts.approve(home, current_user(home), dataset_id))

    @api.post("/api/datasets/<dataset_id>/draft/reject")
    @params()
    def reject(dataset_id: str):
        user = authenticated(home)
        return jsonify(drafts.reject(home, user, dataset_id, json_body().get("comment")))

    @api.post("/api/datasets/<dataset_id>/draft/publish")
    @params()
    def publish(dataset_id: str):
        return jsonify(releases.publish_draft(home, store, current_user(home), dataset_id))

    @api.get("/api/datasets/<dataset_id>/versions")
    @params()
    def versions(dataset_id: str):
        return jsonify(releases.list_versions(home, store, current_user(home), dataset_id))

    @api.get("/api/datasets/<dataset_id>/versions/<int:version>/files/<filename>")
    @params()
    def version_file(dataset_id: str, version: int, filename: str):
        path, media_type = releases.version_file(home, store, current_user(home), dataset_id,
                                                 version, filename)
        # conditional=True: HTTP Range and ETags, so big files resume and GDAL can read them.
        return send_file(path, mimetype=media_type, conditional=True, as_attachment=True,
                         download_name=f"{dataset_id}-v{version}-{filename}")

    @api.post("/api/datasets/<dataset_id>/rollback")
    @params()
    def rollback(dataset_id: str):
        user = authenticated(home)
        version = json_body().get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BadRequest('give the version to make live: {"version": N}')
        return jsonify(releases.rollback(home, store, user, dataset_id, version))

    @api.post("/api/datasets/<dataset_id>/withdraw")
    @params()
    def withdraw(dataset_id: str):
        return jsonify(releases.withdraw(home, store, current_user(home), dataset_id))

    @api.get("/api/reviews")
    @params()
    def reviews():
        return jsonify(drafts=drafts.review_queue(home, current_user(home)))

    @api.get("/api/audit")
    @params("after", "limit", "dataset", "actor")
    def audit_log():
        user = authenticated(home)
        if not user.is_admin:
            raise Forbidden("the audit log is for admins")
        after = int_param("after", 0, 0, None)
        limit = int_param("limit", 100, 1, MAX_AUDIT_PAGE)
        entries = audit.entries(home, after, limit, request.args.get("dataset"),
                                request.args.get("actor"))
        return jsonify(entries=entries, chain=audit.verify(home).as_dict(),
                       next=entries[-1]["seq"] if len(entries) == limit else None)

    return api


ENDPOINTS = {
    "GET /api/openapi.json": "the OpenAPI 3.0 description of this API",
    "GET /api/me": "the account of the token",
    "GET /api/datasets": "published datasets, and your organisation's with their drafts",
    "POST /api/datasets": 'register a dataset: {"id": ..., "organisation": ...}',
    "GET /api/datasets/{id}": "one dataset",
    "GET|DELETE /api/datasets/{id}/draft": "the open draft; discard it",
    "GET|PUT /api/datasets/{id}/draft/manifest": "the manifest (JSON or YAML)",
    "PUT /api/datasets/{id}/draft/source?filename=": "upload the source as the raw body",
    "POST /api/datasets/{id}/draft/source": "upload the source as multipart (field 'file')",
    "GET /api/datasets/{id}/draft/report[?f=html]": "the validation report",
    "POST /api/datasets/{id}/draft/submit|approve|reject|publish": "the review workflow",
    "GET /api/datasets/{id}/versions": "released versions and their files",
    "GET /api/datasets/{id}/versions/{n}/files/{file}": "download a file of any version",
    "POST /api/datasets/{id}/rollback": 'make a version live again: {"version": N}',
    "POST /api/datasets/{id}/withdraw": "take the dataset out of the live catalog",
    "GET /api/reviews": "submitted drafts waiting for review",
    "GET /api/audit": "the audit log (admins)",
}


def params(*allowed: str) -> Callable:
    """Refuse query parameters a route does not use, naming them (never ignore silently)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args, **kwargs):
            unknown = sorted(set(request.args) - set(allowed))
            if unknown:
                raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}; this "
                                 f"endpoint takes {', '.join(allowed) or 'none'}")
            return view(*args, **kwargs)

        return checked

    return decorate


def current_user(home) -> accounts.User | None:
    """The token's user; None without a token; 401 for a token that is wrong."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use 'Authorization: Bearer <token>'")
    user = accounts.authenticate(home, token.strip())
    if user is None:
        raise Unauthenticated("the token is not valid (unknown, revoked, or the account is "
                              "disabled)")
    return user


def authenticated(home) -> accounts.User:
    user = current_user(home)
    if user is None:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    return user


def json_body() -> dict:
    """The JSON object in the body ({} without a body), parsed with safe_parse's limits (the
    app-wide check of catalog/request_bodies.py leaves /api bodies to the views, which call
    this after authorising)."""
    if not request.content_length and not read_body():
        return {}
    if not is_json_type(request.mimetype):
        raise Unsupported("send a JSON object with Content-Type: application/json")
    try:
        body = parse_json(read_body())
    except UnsafeInput as err:
        raise BadRequest(str(err)) from err
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object (Content-Type: application/json)")
    return body


def upload_options() -> UploadOptions:
    repair = request.args.get("repair")
    if repair not in (None, "geometry"):
        raise BadRequest(f"repair={repair!r}: the only repair is repair=geometry")
    variable = request.args.get("variable")
    if variable is not None and not VARIABLE.match(variable):
        raise BadRequest("variable= takes a NetCDF variable name")
    return UploadOptions(repair_geometry=repair == "geometry", variable=variable)


def upload_stream(limit: int):
    """The request body as a stream, with this route's own size limit (not the app's 1 MiB)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise TooLarge(f"the upload ({declared:,} bytes) exceeds the limit of {limit:,} bytes "
                       "(TAZA_UPLOAD_MAX_BYTES)", limit=limit)
    request.max_content_length = limit
    return request.stream


def upload_answer(result: tuple[dict, bool]):
    data, ok = result
    return jsonify(data), 201 if ok else 422


def wants_html() -> bool:
    requested = request.args.get("f")
    if requested not in (None, "json", "html"):
        raise BadRequest("f= takes json or html")
    if requested:
        return requested == "html"
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > \
        request.accept_mimetypes["application/json"]


def int_param(name: str, default: int, minimum: int, maximum: int | None) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    # ASCII digits, at most 18 (SQLite's integers are 64-bit; str.isdigit() takes '²')
    digits = re.fullmatch(r"[0-9]{1,18}", value)
    if not digits or int(value) < minimum or (maximum and int(value) > maximum):
        bound = f" and {maximum}" if maximum else ""
        raise BadRequest(f"{name} takes an integer between {minimum}{bound}")
    return int(value)
