"""The stewards' API under /api: a thin Flask adapter over catalog.stewards' functions.

Authentication: a session cookie from signing in with name and password (POST /api/session,
the stewards' pages), or `Authorization: Bearer <token>` (scripts; tokens from POST
/api/tokens or `taza users token`). Every route declares an access.Policy, applied by `guard`
before the route reads its body or looks anything up. Writes authenticated by the cookie also
need the session's CSRF token in `X-CSRF-Token` and, when the browser sends one, an `Origin`
of this site. A wrong token or an ended session is 401 everywhere. Every error is JSON naming
the problem; unknown query parameters are 400. Endpoints: docs/stewards.md.
"""

from __future__ import annotations

import hmac
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import Blueprint, Response, g, jsonify, request

from catalog import settings as catalog_settings
from catalog.asset_responses import send_asset
from catalog.core.languages import FALLBACK_LANGUAGE, LANGUAGES
from catalog.core.parse import whole_number
from catalog.jobs import Jobs
from catalog.request_bodies import (
    is_json_type,
    read_body,
    refuse_body_on_bodyless_method,
    streams_body,
)
from catalog.safe_parse import UnsafeInput, check_yaml, nul_text_at, parse_json
from catalog.sources.uploads import UnsupportedFormat, UploadLimits, UploadOptions, format_of
from catalog.stewards import (
    access,
    accounts,
    drafts,
    openapi,
    releases,
    report,
    resume,
    sessions,
)
from catalog.stewards.access import ACCOUNT, EDITORS, PUBLIC, REVIEWERS, Policy
from catalog.stewards.config import StewardSettings
from catalog.stewards.db import stewards_dir
from catalog.stewards.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ServiceError,
    TooLarge,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
    Unsupported,
)
from catalog.stewards.receive import (
    MULTIPART_OVERHEAD,
    Allowance,
    receive_multipart,
    receive_raw,
    remove_stale_parts,
)
from catalog.store import CatalogStore, audit

MANIFEST_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml",
                  "text/x-yaml")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_AUDIT_PAGE = 1000
SQLITE_LARGEST_INTEGER = 2 ** 63 - 1  # what an audit position can be compared with
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "X-CSRF-Token"

# The policies of the routes (access.Policy): who may call each, checked before anything else.
READ_DATASET = Policy("reading this dataset", dataset=True, public="live")
READ_VERSION_FILE = Policy("reading this version", dataset=True, public="live-version")
READ_DRAFT = Policy("reading drafts", dataset=True)
EDIT_DRAFT = Policy("editing a draft", roles=EDITORS, dataset=True)
REVIEW_DRAFT = Policy("reviewing", roles=REVIEWERS, dataset=True)
RELEASE = Policy("publishing, rolling back or withdrawing", dataset=True)
CREATE_DATASET = Policy("creating a dataset", roles=EDITORS)
REVIEW_QUEUE = Policy("the review queue", roles=REVIEWERS)
READ_AUDIT = Policy("reading the audit log", roles=("admin",))
FOLLOW_JOB = Policy("following a job")  # then the job's dataset must be in scope
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Credentials:
    user: accounts.User | None = None
    session: sessions.Session | None = None  # set when the session cookie authenticated


def create_blueprint(store: CatalogStore, jobs: Jobs, limits: UploadLimits | None = None,
                     public_url: str | None = None,
                     settings: StewardSettings | None = None) -> Blueprint:
    """The API; publishes go to `jobs` (catalog.jobs), which workers elsewhere run."""
    api = Blueprint("stewards_api", __name__, template_folder="templates")
    home = store.home
    limits = limits or UploadLimits.from_environment()
    settings = settings or StewardSettings.from_environment()
    cookies = SessionCookie(public_url)
    # A worker killed mid-upload left its part file: the worker replacing it removes it;
    # resumable uploads nobody finished go once older than TAZA_UPLOAD_PARTS_MAX_AGE_SECONDS
    # (read here first, so a wrong value stops the server rather than an upload).
    remove_stale_parts(stewards_dir(home) / "tmp")
    resume.remove_expired(home, database_down_ok=True)  # a server starts with it down

    def guard(policy: Policy, credentials: bool = True) -> Callable:
        """Check the route's policy first: account, role, organisation (see access.py)."""

        def decorate(view: Callable) -> Callable:
            @wraps(view)
            def checked(*args, **kwargs):
                g.credentials = read_credentials() if credentials else Credentials()
                g.user = access.authorise(home, store, policy, g.credentials.user,
                                          kwargs.get("dataset_id"), kwargs.get("version"))
                refuse_body_on_bodyless_method()  # only once the caller may know the route
                return view(*args, **kwargs)

            checked.policy = policy
            return checked

        return decorate

    def read_credentials() -> Credentials:
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("use 'Authorization: Bearer <token>'",
                                      message_code="bearer_malformed")
            return Credentials(accounts.authenticate(home, token.strip()))
        cookie = request.cookies.get(cookies.name)
        if cookie is None:
            return Credentials()
        session = sessions.from_cookie(home, settings, cookie)
        if request.method not in SAFE_METHODS:
            check_same_site(cookies)
            if not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(),
                                       session.csrf_token.encode()):
                raise Forbidden(f"a write signed in by the session cookie needs the header "
                                f"{CSRF_HEADER} with the session's CSRF token "
                                "(GET /api/session gives it)", message_code="csrf_missing")
        return Credentials(session.user, session)

    @api.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        response = jsonify(error.as_dict())
        response.status_code = error.status
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="taza"'
            if cookies.name in request.cookies:  # an ended session: the browser forgets it
                cookies.clear(response)
        if isinstance(error, TooManyRequests):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @api.errorhandler(audit.AuditError)
    def audit_unavailable(error: audit.AuditError):
        # Nothing is changed without its audit entry; the operator must fix the log's key.
        response = jsonify(code="ServiceUnavailable", status=503,
                           description=f"the audit log cannot take entries: {error}",
                           messageCode="audit_unavailable", params={})
        response.status_code = 503
        return response

    @api.get("/api")
    @api.get("/api/")
    @guard(PUBLIC)
    @params()
    def index():
        return jsonify(service="Taza Koom stewards' API", documentation="docs/stewards.md",
                       openapi="/api/openapi.json",
                       links=[{"rel": "service-desc", "href": "/api/openapi.json",
                               "type": OPENAPI_JSON, "title": "OpenAPI 3.0 of this API"}],
                       user=g.user.as_dict() if g.user else None, endpoints=ENDPOINTS,
                       limits={"upload_bytes": limits.max_upload_bytes,
                               "unzipped_bytes": limits.max_unzipped_bytes,
                               "attribute_bytes": limits.max_attribute_bytes,
                               "quota_open_drafts": settings.quota_open_drafts,
                               "quota_upload_bytes": settings.quota_upload_bytes})

    # -- sign-in, sessions, passwords, tokens ----------------------------------------------

    @api.post("/api/session")
    @guard(PUBLIC, credentials=False)
    @params()
    def sign_in():
        check_same_site(cookies)
        body = json_body()
        session = sessions.sign_in(home, settings, body.get("name"), body.get("password"),
                                   request.remote_addr or "unknown")
        response = jsonify(signed_in=True, **session.as_dict(settings))
        cookies.set(response, session.cookie, settings)
        return response, 201

    @api.get("/api/session")
    @guard(PUBLIC, credentials=False)
    @params()
    def current_session():
        """Whether this browser is signed in: 200 either way, as the page asks on every load
        (an ended session's cookie is cleared, and the answer says why it ended)."""
        try:
            credentials = read_credentials()
        except Unauthenticated as err:
            if "Authorization" in request.headers:
                raise
            response = jsonify(signed_in=False, user=None, ended=err.message)
            cookies.clear(response)
            return response
        if credentials.session is None:
            user = credentials.user
            return jsonify(signed_in=False, user=user.as_dict() if user else None)
        return jsonify(signed_in=True, **credentials.session.as_dict(settings))

    @api.delete("/api/session")
    @guard(ACCOUNT)
    @params()
    def sign_out():
        sessions.end(home, signed_in_session().id)
        response = Response(status=204)
        cookies.clear(response)
        return response

    @api.post("/api/password")
    @guard(PUBLIC, credentials=False)
    @params()
    def set_password():
        check_same_site(cookies)
        body = json_body()
        user = accounts.use_password_link(home, body.get("code"), body.get("password"))
        return jsonify(name=user.name, password_set=True)

    @api.get("/api/tokens")
    @guard(ACCOUNT)
    @params("user")
    def tokens():
        owner = g.user
        name = request.args.get("user")
        if name is not None and name != g.user.name:
            if not g.user.is_admin:
                raise Forbidden("only admins list the tokens of other accounts",
                                message_code="tokens_admin_only")
            owner = next((u for u in accounts.list_users(home) if u.name == name), None)
            if owner is None:
                raise NotFound(f"no user {name!r}",
                               message_code="user_not_found", params={"user": name})
        return jsonify(user=owner.name, tokens=accounts.list_tokens(home, owner))

    @api.post("/api/tokens")
    @guard(ACCOUNT)
    @params()
    def create_token():
        if g.credentials.session is None:
            raise Forbidden("tokens are created when signed in with a password (POST "
                            "/api/session), not with another token",
                            message_code="token_needs_password_session")
        body = json_body()
        return jsonify(accounts.create_token(home, g.user, body.get("label"),
                                             body.get("lifetime_days"))), 201

    @api.delete("/api/tokens/<token_id>")
    @guard(ACCOUNT)
    @params()
    def revoke_token(token_id: str):
        accounts.revoke_token(home, g.user, token_id)
        return "", 204

    @api.get("/api/openapi.json")
    @guard(PUBLIC)
    @params()
    def service_description():
        return Response(json.dumps(openapi.document("/api")), content_type=OPENAPI_JSON)

    @api.get("/api/me")
    @guard(ACCOUNT)
    @params()
    def me():
        return jsonify(g.user.as_dict())

    # -- datasets and drafts ----------------------------------------------------------------

    @api.get("/api/datasets")
    @guard(PUBLIC)
    @params()
    def datasets():
        return jsonify(datasets=drafts.list_datasets(home, store, g.user))

    @api.post("/api/datasets")
    @guard(CREATE_DATASET)
    @params()
    def create_dataset():
        body = json_body()
        result = drafts.create_dataset(home, store, g.user, body.get("id"),
                                       body.get("organisation"))
        return jsonify(result), 201

    @api.get("/api/datasets/<dataset_id>")
    @guard(READ_DATASET)
    @params()
    def dataset(dataset_id: str):
        return jsonify(drafts.get_dataset(home, store, g.user, dataset_id))

    @api.get("/api/datasets/<dataset_id>/draft")
    @guard(READ_DRAFT)
    @params()
    def draft(dataset_id: str):
        return jsonify(drafts.get_draft(home, g.user, dataset_id))

    @api.delete("/api/datasets/<dataset_id>/draft")
    @guard(EDIT_DRAFT)
    @params()
    def discard(dataset_id: str):
        drafts.discard(home, g.user, dataset_id)
        return "", 204

    @api.get("/api/datasets/<dataset_id>/draft/manifest")
    @guard(READ_DRAFT)
    @params()
    def get_manifest(dataset_id: str):
        text = drafts.get_manifest(home, g.user, dataset_id)
        wanted = request.accept_mimetypes.best_match(["text/plain", "application/json",
                                                      "application/yaml"])
        if wanted == "application/json":  # the stewards' form fills its fields from this
            return jsonify(drafts.manifest_fields(text))
        if wanted == "application/yaml":  # the form's YAML box: a JSON manifest shown as YAML
            return Response(drafts.manifest_yaml(text), mimetype="application/yaml",
                            content_type="application/yaml; charset=utf-8")
        return Response(text, mimetype="text/plain", content_type="text/plain; charset=utf-8")

    @api.put("/api/datasets/<dataset_id>/draft/manifest")
    @guard(EDIT_DRAFT)
    @params()
    def put_manifest(dataset_id: str):
        if request.mimetype not in MANIFEST_TYPES:
            raise Unsupported(f"send the manifest as one of {', '.join(MANIFEST_TYPES)}",
                              message_code="manifest_type_unsupported",
                              params={"types": ", ".join(MANIFEST_TYPES)})
        drafts.check_draft_quota(home, dataset_id)
        try:
            text = read_body().decode("utf-8")
            check_yaml(text)  # aliases (YAML bombs), tags, deep nesting: never stored
        except UnicodeDecodeError as err:
            raise BadRequest("the manifest must be UTF-8 text",
                             message_code="manifest_not_utf8") from err
        except UnsafeInput as err:
            raise BadRequest(str(err), message_code="manifest_yaml_refused") from err
        result, ok = drafts.put_manifest(home, g.user, dataset_id, text)
        return jsonify(result), 200 if ok else 422

    @api.put("/api/datasets/<dataset_id>/draft/source")
    @guard(EDIT_DRAFT)
    @params("filename", "repair", "variable", "fingerprint")
    @streams_body
    def put_source(dataset_id: str):
        filename = request.args.get("filename", "").replace("\\", "/").rsplit("/", 1)[-1]
        if not filename:
            raise BadRequest("name the file: ?filename=NAME.EXT (the extension gives the format)",
                             message_code="filename_missing")
        try:
            format_of(filename)  # 415 before a byte is read
        except UnsupportedFormat as err:
            raise Unsupported(str(err),
                              message_code="file_type_unsupported",
                              params={"filename": filename}) from err
        options = upload_options()
        fingerprint = resume.parse_fingerprint(request.args.get("fingerprint"))
        if "Content-Range" in request.headers:  # one piece of a resumable upload
            piece = resume.parse_range(request.headers["Content-Range"], request.content_length,
                                       limits.max_upload_bytes)
            if fingerprint is not None:
                return upload_piece(dataset_id, filename, piece, fingerprint, options)
            if not piece.whole:
                raise BadRequest("a piece of a resumable upload names the whole file's "
                                 "fingerprint: ?fingerprint=sha256:HEX (or sha256-blocks:HEX); "
                                 "without one, send the whole file in one piece",
                                 message_code="upload_fingerprint_missing")
            # The whole file without a fingerprint: an ordinary upload, not kept when cut.
        stream, allowance = upload_stream(dataset_id, limits.max_upload_bytes, 0)
        received = receive_raw(stream, filename, stewards_dir(home) / "tmp",
                               limits.max_upload_bytes, allowance, request.content_length)
        if fingerprint is not None:
            resume.check_received(received, fingerprint)
        return upload_answer(drafts.accept_upload(home, g.user, dataset_id, received, options,
                                                  limits))

    @api.post("/api/datasets/<dataset_id>/draft/source")
    @guard(EDIT_DRAFT)
    @params("repair", "variable")
    @streams_body
    def post_source(dataset_id: str):
        boundary = request.mimetype_params.get("boundary")
        if request.mimetype != "multipart/form-data" or not boundary:
            raise Unsupported("POST a multipart/form-data body (file in field 'file'), or PUT "
                              "the raw file with ?filename=", message_code="upload_body_type")
        options = upload_options()
        stream, allowance = upload_stream(dataset_id, limits.max_upload_bytes,
                                          MULTIPART_OVERHEAD)
        received = receive_multipart(stream, boundary.encode("latin-1"),
                                     stewards_dir(home) / "tmp", limits.max_upload_bytes,
                                     allowance)
        return upload_answer(drafts.accept_upload(home, g.user, dataset_id, received, options,
                                                  limits))

    def upload_piece(dataset_id: str, filename: str, piece: resume.Piece, fingerprint: str,
                     options: UploadOptions):
        """A piece of a resumable upload (catalog/stewards/resume.py): 202 with the bytes
        received so far, or, with the last piece, the whole file's check (201 or 422)."""
        if piece.start == 0:  # the quotas, for the whole file, before its first byte
            resume.remove_expired(home)  # leftovers go when an upload starts
            drafts.upload_allowance(home, dataset_id, piece.total)
        request.max_content_length = piece.length

        def begin(upload_id: str, replaced: str | None) -> None:
            drafts.begin_unfinished(home, dataset_id, piece.total, upload_id, replaced)

        outcome = resume.receive_piece(home, dataset_id, filename, piece, fingerprint,
                                       request.stream, begin)
        if isinstance(outcome, resume.Progress):
            return jsonify(upload=outcome.as_dict()), 202
        return upload_answer(drafts.accept_upload(home, g.user, dataset_id, outcome, options,
                                                  limits))

    @api.get("/api/datasets/<dataset_id>/draft/source/resume")
    @guard(EDIT_DRAFT)
    @params()
    def upload_progress(dataset_id: str):
        progress = resume.progress(home, dataset_id)
        return jsonify(upload=progress.as_dict() if progress else None)

    @api.delete("/api/datasets/<dataset_id>/draft/source/resume")
    @guard(EDIT_DRAFT)
    @params()
    def abandon_upload(dataset_id: str):
        resume.abandon(home, dataset_id)
        return "", 204

    def upload_stream(dataset_id: str, limit: int, overhead: int):
        """The request body as a stream with this route's own size limit (not the app's
        1 MiB), after the size and the organisation's quotas are checked against its
        Content-Length; the quota is checked again as the bytes arrive."""
        declared = request.content_length
        if declared is not None and declared > limit + overhead:
            raise TooLarge(f"the upload ({declared:,} bytes) exceeds the limit of {limit:,} "
                           "bytes (TAZA_UPLOAD_MAX_BYTES)", limit=limit,
                           message_code="upload_too_large",
                           params={"size": declared, "limit": limit})
        expected = None if declared is None else max(declared - overhead, 0)
        resume.remove_expired(home)  # leftovers go when an upload starts
        quota = drafts.upload_allowance(home, dataset_id, expected)
        request.max_content_length = limit + overhead
        allowance = Allowance(quota, lambda size: drafts.upload_quota_error(home, dataset_id,
                                                                            size))
        return request.stream, allowance

    @api.get("/api/datasets/<dataset_id>/draft/report")
    @guard(READ_DRAFT)
    @params("f", "lang")
    def draft_report(dataset_id: str):
        data = drafts.get_report(home, g.user, dataset_id)
        language = report_language()
        if wants_html():
            return Response(report.render_html(data, language), mimetype="text/html")
        return jsonify(data)

    @api.get("/api/datasets/<dataset_id>/draft/preview")
    @guard(READ_DRAFT)
    @params()
    def draft_preview(dataset_id: str):
        data, media_type = drafts.get_preview(home, g.user, dataset_id, "json")
        try:  # written by the reader that read hostile bytes: served only as checked JSON
            checked = parse_json(data, "map preview")
        except UnsafeInput as err:
            raise Unprocessable(f"the map preview is unusable: {err}",
                                message_code="preview_unusable") from err
        return Response(json.dumps(checked, separators=(",", ":")), mimetype=media_type)

    @api.get("/api/datasets/<dataset_id>/draft/preview.png")
    @guard(READ_DRAFT)
    @params()
    def draft_preview_image(dataset_id: str):
        data, media_type = drafts.get_preview(home, g.user, dataset_id, "png")
        if not data.startswith(PNG_SIGNATURE):
            raise Unprocessable("the map preview image is not a PNG",
                                message_code="preview_not_png")
        response = Response(data, mimetype=media_type)
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @api.post("/api/datasets/<dataset_id>/draft/submit")
    @guard(EDIT_DRAFT)
    @params()
    def submit(dataset_id: str):
        return jsonify(drafts.submit(home, g.user, dataset_id))

    @api.post("/api/datasets/<dataset_id>/draft/approve")
    @guard(REVIEW_DRAFT)
    @params()
    def approve(dataset_id: str):
        return jsonify(drafts.approve(home, g.user, dataset_id))

    @api.post("/api/datasets/<dataset_id>/draft/reject")
    @guard(REVIEW_DRAFT)
    @params()
    def reject(dataset_id: str):
        return jsonify(drafts.reject(home, g.user, dataset_id, json_body().get("comment")))

    @api.post("/api/datasets/<dataset_id>/draft/publish")
    @guard(RELEASE)
    @params()
    def publish(dataset_id: str):
        job = releases.request_publish(home, jobs, g.user, dataset_id)
        response = jsonify(releases.job_view(home, jobs, g.user, job.id))
        response.status_code = 202
        response.headers["Location"] = releases.job_path(job.id)
        return response

    @api.get("/api/jobs/<job_id>")
    @guard(FOLLOW_JOB)
    @params()
    def job(job_id: str):
        return jsonify(releases.job_view(home, jobs, g.user, job_id))

    @api.get("/api/datasets/<dataset_id>/versions")
    @guard(READ_DATASET)
    @params()
    def versions(dataset_id: str):
        return jsonify(releases.list_versions(home, store, g.user, dataset_id))

    @api.get("/api/datasets/<dataset_id>/versions/<int:version>/files/<filename>")
    @guard(READ_VERSION_FILE)
    @params()
    def version_file(dataset_id: str, version: int, filename: str):
        record, media_type, public = releases.version_file(home, store, g.user, dataset_id,
                                                           version, filename)
        # HTTP Range and ETags, so big files resume and GDAL can read them.
        response = send_asset(store.assets, record, filename, media_type, as_attachment=True,
                              download_name=f"{dataset_id}-v{version}-{filename}")
        # A version taken down must not linger in shared caches (VERSION_CACHE_CONTROL).
        response.headers["Cache-Control"] = (catalog_settings.VERSION_CACHE_CONTROL if public
                                             else "private, no-store")
        return response

    @api.post("/api/datasets/<dataset_id>/rollback")
    @guard(RELEASE)
    @params()
    def rollback(dataset_id: str):
        version = json_body().get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BadRequest('give the version to make live: {"version": N}',
                             message_code="version_missing")
        return jsonify(releases.rollback(home, store, g.user, dataset_id, version))

    @api.post("/api/datasets/<dataset_id>/withdraw")
    @guard(RELEASE)
    @params()
    def withdraw(dataset_id: str):
        return jsonify(releases.withdraw(home, store, g.user, dataset_id))

    @api.get("/api/reviews")
    @guard(REVIEW_QUEUE)
    @params()
    def reviews():
        return jsonify(drafts=drafts.review_queue(home, g.user))

    @api.get("/api/audit")
    @guard(READ_AUDIT)
    @params("after", "limit", "dataset", "actor")
    def audit_log():
        after = int_param("after", 0, 0, None)
        limit = int_param("limit", 100, 1, MAX_AUDIT_PAGE)
        entries = audit.entries(home, after, limit, request.args.get("dataset"),
                                request.args.get("actor"))
        return jsonify(entries=entries, chain=audit.verify(home).as_dict(),
                       next=entries[-1]["seq"] if len(entries) == limit else None)

    return api


ENDPOINTS = {
    "POST /api/session": 'sign in: {"name": ..., "password": ...}; sets the session cookie',
    "GET /api/session": "whether you are signed in, and the session's CSRF token",
    "DELETE /api/session": "sign out",
    "POST /api/password": 'set a password with a one-time link: {"code": ..., "password": ...}',
    "GET /api/tokens[?user=]": "your API tokens (admins: anyone's)",
    "POST /api/tokens": 'a new API token (signed in): {"label": ..., "lifetime_days": ...}',
    "DELETE /api/tokens/{id}": "revoke a token (its owner or an admin)",
    "GET /api/openapi.json": "the OpenAPI 3.0 description of this API",
    "GET /api/me": "your account",
    "GET /api/datasets": "published datasets, and your organisation's with their drafts",
    "POST /api/datasets": 'register a dataset: {"id": ..., "organisation": ...}',
    "GET /api/datasets/{id}": "one dataset",
    "GET|DELETE /api/datasets/{id}/draft": "the open draft; discard it",
    "GET|PUT /api/datasets/{id}/draft/manifest": "the manifest (JSON or YAML); without an open "
                                                  "draft, the last published one",
    "PUT /api/datasets/{id}/draft/source?filename=": "upload the source as the raw body",
    "PUT /api/datasets/{id}/draft/source?filename=&fingerprint= with Content-Range": "one "
        "piece of a resumable upload of the file with that fingerprint (sha256:HEX): 202 and "
        "the bytes received, or the check once the last arrived",
    "GET|DELETE /api/datasets/{id}/draft/source/resume": "where a cut upload goes on from; "
                                                         "abandon it",
    "POST /api/datasets/{id}/draft/source": "upload the source as multipart (field 'file')",
    "GET /api/datasets/{id}/draft/report[?f=html]": "the validation report",
    "GET /api/datasets/{id}/draft/preview[.png]": "the upload's map preview: GeoJSON of its "
                                                  "features (or a raster's footprint and image)",
    "POST /api/datasets/{id}/draft/submit|approve|reject": "the review workflow",
    "POST /api/datasets/{id}/draft/publish": "publish the approved draft: 202 and a job to "
                                             "follow (Location)",
    "GET /api/jobs/{job}": "a publish job: state, progress (percent), then version and links",
    "GET /api/datasets/{id}/versions": "the live version (and, in your scope, earlier ones)",
    "GET /api/datasets/{id}/versions/{n}/files/{file}": "download a file of a version",
    "POST /api/datasets/{id}/rollback": 'make a version live again: {"version": N}',
    "POST /api/datasets/{id}/withdraw": "take the dataset out of the live catalog",
    "GET /api/reviews": "submitted drafts waiting for review",
    "GET /api/audit": "the audit log (admins)",
}


class SessionCookie:
    """The session cookie: HttpOnly, SameSite=Strict, and Secure (with the __Host- prefix,
    which browsers accept only from HTTPS, for the whole site) when the public URL is https."""

    def __init__(self, public_url: str | None):
        parts = urllib.parse.urlsplit(public_url or "")
        self.secure = parts.scheme == "https"
        self.name = "__Host-taza_session" if self.secure else "taza_session"
        self.origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else None

    def set(self, response: Response, value: str, settings: StewardSettings) -> None:
        response.set_cookie(self.name, value, max_age=int(settings.session_max_seconds),
                            path="/", secure=self.secure, httponly=True, samesite="Strict")

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.name, path="/", secure=self.secure, httponly=True,
                               samesite="Strict")


def check_same_site(cookies: SessionCookie) -> None:
    """Refuse a browser request sent from another site: its Origin, when it has one, must be
    the public URL's or the one this request was addressed to."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    own = request.host_url.rstrip("/")
    if origin not in {own, cookies.origin}:
        raise Forbidden(f"cross-site request refused: Origin {origin[:100]!r} is not this site",
                        message_code="cross_site_refused")


def signed_in_session() -> sessions.Session:
    if g.credentials.session is None:
        raise Unauthenticated("not signed in: this request carries a token, not a session",
                              message_code="session_required")
    return g.credentials.session


def params(*allowed: str) -> Callable:
    """Refuse query parameters a route does not use, naming them (never ignore silently)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args, **kwargs):
            unknown = sorted(set(request.args) - set(allowed))
            if unknown:
                raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}; this "
                                 f"endpoint takes {', '.join(allowed) or 'none'}",
                                 message_code="query_params_unknown",
                                 params={"unknown": ", ".join(unknown),
                                         "allowed": ", ".join(allowed) or "-"})
            for name, value in request.args.items(multi=True):
                _refuse_nul(nul_text_at(value, name))
            return view(*args, **kwargs)

        return checked

    return decorate


def json_body() -> dict:
    """The JSON object in the body ({} without a body), parsed with safe_parse's limits (the
    app-wide check of catalog/request_bodies.py leaves /api bodies to the views, which call
    this after authorising)."""
    if not request.content_length and not read_body():
        return {}
    if not is_json_type(request.mimetype):
        raise Unsupported("send a JSON object with Content-Type: application/json",
                          message_code="json_body_type")
    try:
        body = parse_json(read_body())
    except UnsafeInput as err:
        raise BadRequest(str(err), message_code="json_body_unreadable") from err
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object (Content-Type: application/json)",
                         message_code="json_body_not_object")
    _refuse_nul(nul_text_at(body, "body"))
    return body


def _refuse_nul(where: str | None) -> None:
    """No text the API keeps or looks up holds U+0000 (a NUL in a sign-in name or an audit
    filter was a 500 on PostgreSQL); refused on both profiles alike."""
    if where is not None:
        raise BadRequest(f"{where}: text cannot contain the NUL character (U+0000)",
                         message_code="text_nul", params={"name": where})


def upload_options() -> UploadOptions:
    repair = request.args.get("repair")
    if repair not in (None, "geometry"):
        raise BadRequest(f"repair={repair!r}: the only repair is repair=geometry",
                         message_code="repair_unknown", params={"repair": str(repair)[:100]})
    variable = request.args.get("variable")
    if variable is not None and not VARIABLE.match(variable):
        raise BadRequest("variable= takes a NetCDF variable name", message_code="variable_invalid")
    return UploadOptions(repair_geometry=repair == "geometry", variable=variable)


def upload_answer(result: tuple[dict, bool]):
    data, ok = result
    return jsonify(data), 201 if ok else 422


def wants_html() -> bool:
    requested = request.args.get("f")
    if requested not in (None, "json", "html"):
        raise BadRequest("f= takes json or html", message_code="format_param_invalid")
    if requested:
        return requested == "html"
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > \
        request.accept_mimetypes["application/json"]


def report_language() -> str:
    """The report page's language: ?lang=, else the browser's Accept-Language, else English."""
    requested = request.args.get("lang")
    if requested is not None and requested not in LANGUAGES:
        raise BadRequest(f"lang= takes one of {', '.join(LANGUAGES)}",
                         message_code="lang_param_invalid",
                         params={"languages": ", ".join(LANGUAGES)})
    return requested or request.accept_languages.best_match(LANGUAGES,
                                                            default=FALLBACK_LANGUAGE)


def int_param(name: str, default: int, minimum: int, maximum: int | None) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    number = whole_number(value, minimum, maximum or SQLITE_LARGEST_INTEGER)
    if number is None:
        bound = f" and {maximum}" if maximum else ""
        raise BadRequest(f"{name} takes an integer between {minimum}{bound}",
                         message_code="integer_param_invalid",
                         params={"name": name, "min": minimum})
    return number
