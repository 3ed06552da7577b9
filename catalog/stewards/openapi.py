"""The OpenAPI 3.0 description of the stewards' API, served at /api/openapi.json.

One `Operation` per method and path in OPERATIONS, each with who may call it, its parameters,
body, answers and the errors it can give. A new endpoint adds an entry here: the fuzz tests
(tests/test_fuzz_openapi.py) read the served document, and tests/test_api_openapi.py checks
that every /api route of the Flask app is described and nothing else is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog import __version__
from catalog.core.languages import LANGUAGES
from catalog.http_policy import with_transport_refusals

JSON = "application/json"
DATASET_ID = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"
MANIFEST_MEDIA = ("application/json", "application/yaml", "application/x-yaml", "text/yaml",
                  "text/x-yaml")

ERRORS = {
    400: "a parameter or the body is unknown or malformed",
    401: "no token where one is needed, or a wrong, revoked or disabled token",
    403: "the account may not do this (role or organisation)",
    404: "no such dataset, draft, version or file (or not visible to you)",
    409: "the state does not allow it now (busy, already exists, not approved, ...)",
    413: "the body is larger than the limit",
    415: "the body's media type is not one this operation takes",
    416: "the requested byte range is outside the file",
    422: "the content was received but has blocking problems (the report says which)",
    429: "too many failed sign-ins for this account or address; Retry-After says when to retry",
    503: "the change cannot be made now: the audit log cannot take its entry, or uploaded files "
         "cannot be read in an isolated process on this server",
}
# Any route: a token that is wrong is 401, a query parameter it does not take is 400.
ALWAYS = (400, 401)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # under /api, with {name} for Flask's <name>
    summary: str
    who: str  # "anyone", "account" (any valid token), or the roles that may call it
    answers: dict[str, dict]  # status -> OpenAPI response object
    errors: tuple[int, ...] = ()
    parameters: tuple[dict, ...] = ()
    body: dict | None = None
    tags: tuple[str, ...] = field(default=("stewards",))


def _json(description: str, schema: dict | None = None) -> dict:
    return {"description": description,
            "content": {JSON: {"schema": schema or {"type": "object"}}}}


def _query(name: str, description: str, schema: dict | None = None,
           required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def _path(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {JSON: {"schema": schema}}}


DATASET = _path("dataset_id", {"type": "string", "pattern": DATASET_ID})
VERSION = _path("version", {"type": "integer", "minimum": 0})
FILENAME = _path("filename", {"type": "string"})
UPLOAD_OPTIONS = (
    _query("repair", "repair=geometry: repair invalid geometries (vectors)",
           {"type": "string", "enum": ["geometry"]}),
    _query("variable", "the NetCDF variable to publish",
           {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"}),
)
REPORT = {"201": _json("received; the report has no blocking finding"),
          "422": _json("received; the report has blocking findings (the draft keeps it)")}
DRAFT_STEP_ERRORS = (403, 404, 409)

JOB_ID = _path("job_id", {"type": "string"})
JOB = {"type": "object", "required": ["id", "state", "progress", "links"], "properties": {
    "id": {"type": "string"}, "dataset": {"type": "string"},
    "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
    "progress": {"type": "integer", "minimum": 0, "maximum": 100},
    "step": {"type": "string", "nullable": True},
    "result": {"type": "object", "description": "when succeeded: dataset, version, release"},
    "error": {"type": "object", "description": "when failed: code, description, status, "
                                          "messageCode, params (as a refusal)"},
    "links": {"type": "array", "items": {"type": "object"}}}}
TOKEN_ID = _path("token_id", {"type": "string", "pattern": "^[0-9a-f]{16}$"})
SESSION = {"type": "object", "properties": {
    "signed_in": {"type": "boolean"}, "user": {"type": "object", "nullable": True},
    "csrf_token": {"type": "string"}, "signed_in_at": {"type": "string"},
    "expires_at": {"type": "string"}, "absolute_expires_at": {"type": "string"},
    "idle_timeout_seconds": {"type": "integer"}, "ended": {"type": "string"}}}
NAME_AND_PASSWORD = {"type": "object", "required": ["name", "password"], "properties": {
    "name": {"type": "string"}, "password": {"type": "string"}}}

OPERATIONS: list[Operation] = [
    Operation("GET", "", "what this API offers, the token's account and the limits",
              "anyone", {"200": _json("the index")}),
    Operation("POST", "/session", "sign in with a name and password; sets the session cookie",
              "anyone", {"201": _json("signed in", SESSION)}, (403, 413, 415, 429),
              body=_json_body(NAME_AND_PASSWORD), tags=("sign-in",)),
    Operation("GET", "/session", "whether this browser is signed in, and its CSRF token",
              "anyone", {"200": _json("the session, or signed_in false", SESSION)},
              tags=("sign-in",)),
    Operation("DELETE", "/session", "sign out (the cookie is cleared)", "account",
              {"204": {"description": "signed out"}}, (403,), tags=("sign-in",)),
    Operation("POST", "/password", "set a password with the code of a one-time link",
              "anyone with a link", {"200": _json("the password is set")}, (403, 413, 415),
              body=_json_body({"type": "object", "required": ["code", "password"],
                               "properties": {"code": {"type": "string"},
                                              "password": {"type": "string"}}}),
              tags=("sign-in",)),
    Operation("GET", "/tokens", "your API tokens (admins: anyone's with user=)", "account",
              {"200": _json("the tokens, without their secrets")}, (403, 404),
              (_query("user", "the account whose tokens to list (admins)"),),
              tags=("sign-in",)),
    Operation("POST", "/tokens", "a new API token (signed in with a password)", "account",
              {"201": _json("the token, shown once")}, (403, 413, 415),
              body=_json_body({"type": "object", "properties": {
                  "label": {"type": "string", "maxLength": 100},
                  "lifetime_days": {"type": "integer", "minimum": 1}}}),
              tags=("sign-in",)),
    Operation("DELETE", "/tokens/{token_id}", "revoke a token (its owner or an admin)",
              "account", {"204": {"description": "revoked"}}, (403, 404), (TOKEN_ID,),
              tags=("sign-in",)),
    Operation("GET", "/openapi.json", "this document", "anyone",
              {"200": _json("OpenAPI 3.0")}),
    Operation("GET", "/me", "the token's account", "account", {"200": _json("the account")}),
    Operation("GET", "/datasets", "live datasets, plus your organisation's with their drafts",
              "anyone", {"200": _json("the datasets")}),
    Operation("POST", "/datasets", "register a dataset id", "steward, admin",
              {"201": _json("registered")}, (403, 409, 413, 415),
              body=_json_body({"type": "object", "required": ["id"], "properties": {
                  "id": {"type": "string", "pattern": DATASET_ID},
                  "organisation": {"type": "string", "minLength": 3, "maxLength": 64}}})),
    Operation("GET", "/datasets/{dataset_id}", "one dataset", "anyone (live) or its scope",
              {"200": _json("the dataset")}, (403, 404), (DATASET,)),
    Operation("GET", "/datasets/{dataset_id}/draft", "the open draft", "scope",
              {"200": _json("the draft")}, (403, 404), (DATASET,)),
    Operation("DELETE", "/datasets/{dataset_id}/draft", "discard the open draft", "editors",
              {"204": {"description": "discarded"}}, DRAFT_STEP_ERRORS, (DATASET,)),
    Operation("GET", "/datasets/{dataset_id}/draft/manifest",
              "the manifest as sent (without an open draft, the last published one)", "scope",
              {"200": {"description": "the manifest text (default); as a JSON object "
                                      "(Accept: application/json); as YAML "
                                      "(Accept: application/yaml)",
                       "content": {"text/plain": {"schema": {"type": "string"}},
                                   JSON: {"schema": {"type": "object"}},
                                   "application/yaml": {"schema": {"type": "string"}}}},
               "422": _json("asked as JSON, but the manifest is not a YAML mapping (ask for "
                            "the text)", {"$ref": "#/components/schemas/error"})},
              (403, 404), (DATASET,)),
    Operation("PUT", "/datasets/{dataset_id}/draft/manifest",
              "replace the manifest (YAML without anchors or aliases, or JSON)", "editors",
              {"200": _json("stored; the report has no blocking finding"),
               "422": _json("stored; the report has blocking findings")},
              (*DRAFT_STEP_ERRORS, 413, 415), (DATASET,),
              body={"required": True, "content": {
                  **{media: {"schema": {"type": "string"}} for media in MANIFEST_MEDIA[1:]},
                  JSON: {"schema": {"type": "object"}}}}),
    Operation("PUT", "/datasets/{dataset_id}/draft/source",
              "upload the source as the raw body (the file name's extension gives the format); "
              "with Content-Range, one piece of a resumable upload",
              "editors", {**REPORT, "202": _json("a piece of a resumable upload arrived: "
                                                 "upload.received of upload.total bytes")},
              (*DRAFT_STEP_ERRORS, 413, 415, 416),
              (DATASET, _query("filename", "NAME.EXT of the uploaded file", required=True),
               *UPLOAD_OPTIONS,
               _query("fingerprint", "the whole file's fingerprint: sha256:HEX (its SHA-256) or "
                      "sha256-blocks:HEX (the SHA-256 of the SHA-256 digests of its 8 MiB "
                      "blocks); required on every piece of a resumable upload unless the piece "
                      "is the whole file; a piece naming another fingerprint than the upload's "
                      "first is refused (409), and the finished file must match it (409)",
                      {"type": "string", "pattern": "^(sha256|sha256-blocks):[0-9a-fA-F]{64}$"}),
               {"name": "Content-Range", "in": "header", "required": False,
                "description": "bytes START-END/TOTAL: a piece of a resumable upload, starting "
                               "where the received part ends (0 starts a new upload); with "
                               "?fingerprint=",
                "schema": {"type": "string", "pattern": r"^bytes [0-9]+-[0-9]+/[0-9]+$"}}),
              body={"required": True, "content": {"application/octet-stream": {
                  "schema": {"type": "string", "format": "binary"}}}}),
    Operation("GET", "/datasets/{dataset_id}/draft/source/resume",
              "a resumable upload in progress: its file name, total, fingerprint and bytes "
              "received (send the next piece from there, if it is the same file)", "editors",
              {"200": _json("the upload in progress (upload: null when there is none)")},
              (403, 404), (DATASET,)),
    Operation("DELETE", "/datasets/{dataset_id}/draft/source/resume",
              "abandon the resumable upload in progress", "editors",
              {"204": {"description": "abandoned"}}, (403, 404, 409), (DATASET,)),
    Operation("POST", "/datasets/{dataset_id}/draft/source",
              "upload the source as multipart/form-data (one part: file)", "editors", REPORT,
              (*DRAFT_STEP_ERRORS, 413, 415), (DATASET, *UPLOAD_OPTIONS),
              body={"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "required": ["file"],
                  "properties": {"file": {"type": "string", "format": "binary"}}}}}}),
    Operation("GET", "/datasets/{dataset_id}/draft/report",
              "the validation report (JSON, or HTML with f=html or Accept: text/html)", "scope",
              {"200": {"description": "the report", "content": {
                  JSON: {"schema": {"type": "object"}},
                  "text/html": {"schema": {"type": "string"}}}}},
              (403, 404), (DATASET, _query("f", "json or html",
                                           {"type": "string", "enum": ["json", "html"]}),
                            _query("lang", "the HTML page's language (else Accept-Language)",
                                   {"type": "string", "enum": list(LANGUAGES)}))),
    Operation("GET", "/datasets/{dataset_id}/draft/preview",
              "the upload's map preview, made while checking it: a GeoJSON FeatureCollection "
              "of its features in WGS 84 (simplified; shown and total count them) or of a "
              "raster's footprint (image: the corners of preview.png)", "scope",
              {"200": {"description": "the preview", "content": {
                  "application/geo+json": {"schema": {"type": "object"}}}}},
              (403, 404, 422), (DATASET,)),
    Operation("GET", "/datasets/{dataset_id}/draft/preview.png",
              "a raster upload's preview image in WGS 84 (at most 256 pixels a side)", "scope",
              {"200": {"description": "the image", "content": {
                  "image/png": {"schema": {"type": "string", "format": "binary"}}}}},
              (403, 404, 422), (DATASET,)),
    Operation("POST", "/datasets/{dataset_id}/draft/submit", "submit the draft for review",
              "editors", {"200": _json("submitted")}, (*DRAFT_STEP_ERRORS, 422), (DATASET,)),
    Operation("POST", "/datasets/{dataset_id}/draft/approve",
              "approve a submitted draft (not one you worked on)", "reviewer, admin",
              {"200": _json("approved")}, DRAFT_STEP_ERRORS, (DATASET,)),
    Operation("POST", "/datasets/{dataset_id}/draft/reject", "reject a submitted draft",
              "reviewer, admin", {"200": _json("rejected")},
              (*DRAFT_STEP_ERRORS, 413, 415), (DATASET,),
              body=_json_body({"type": "object", "required": ["comment"], "properties": {
                  "comment": {"type": "string", "minLength": 1}}})),
    Operation("POST", "/datasets/{dataset_id}/draft/publish",
              "publish the approved draft as the next version: a job (Location) to follow",
              "scope", {"202": {**_json("queued: the job's status", JOB),
                                "headers": {"Location": {
                                    "description": "the job, /api/jobs/{job_id}",
                                    "schema": {"type": "string"}}}}},
              DRAFT_STEP_ERRORS, (DATASET,)),
    Operation("GET", "/jobs/{job_id}",
              "a publish job: state, progress in percent; when done, version and links, or "
              "the error", "the dataset's scope", {"200": _json("the job", JOB)}, (403, 404),
              (JOB_ID,)),
    Operation("GET", "/datasets/{dataset_id}/versions",
              "released versions, the live flag, who published, files",
              "anyone (live) or its scope", {"200": _json("the versions")}, (403, 404),
              (DATASET,)),
    Operation("GET", "/datasets/{dataset_id}/versions/{version}/files/{filename}",
              "download a file of a released version (HTTP Range)",
              "anyone (live) or its scope",
              {"200": {"description": "the file",
                       "content": {"application/octet-stream": {
                           "schema": {"type": "string", "format": "binary"}}}},
               "206": {"description": "the requested byte range"}},
              (403, 404, 416), (DATASET, VERSION, FILENAME)),
    Operation("POST", "/datasets/{dataset_id}/rollback", "make a released version live again",
              "scope", {"200": _json("live again")}, (*DRAFT_STEP_ERRORS, 413, 415),
              (DATASET,),
              body=_json_body({"type": "object", "required": ["version"], "properties": {
                  "version": {"type": "integer", "minimum": 1}}})),
    Operation("POST", "/datasets/{dataset_id}/withdraw",
              "take the dataset out of the live catalog", "scope",
              {"200": _json("withdrawn")}, DRAFT_STEP_ERRORS, (DATASET,)),
    Operation("GET", "/reviews", "submitted drafts in your scope", "reviewer, admin",
              {"200": _json("drafts waiting for review")}, (403,)),
    Operation("GET", "/audit", "audit entries and the chain check", "admin",
              {"200": _json("entries, oldest first; next is the cursor of the next page")},
              (403,),
              (_query("after", "entries after this sequence number",
                      {"type": "integer", "minimum": 0}),
               _query("limit", "entries per page", {"type": "integer", "minimum": 1,
                                                    "maximum": 1000}),
               _query("dataset", "only this dataset's entries"),
               _query("actor", "only this actor's entries"))),
]

ERROR_SCHEMA = {"type": "object", "required": ["code", "description"],
                "properties": {
                    "code": {"type": "string"},
                    "description": {"type": "string", "description": "what went wrong, in "
                                    "English, for API clients"},
                    "status": {"type": "integer"},
                    "messageCode": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$",
                                    "description": "a stable code of the refusal, naming its "
                                    "text in Kyrgyz, Russian and English (the stewards' pages "
                                    "say it in their language); absent only where no text "
                                    "exists"},
                    "params": {"type": "object", "description": "the values filling the "
                               "text of messageCode (names, numbers)",
                               "additionalProperties": {"oneOf": [{"type": "string"},
                                                                  {"type": "number"}]}}}}


def document(api_url: str = "/api") -> dict:
    """The OpenAPI document, with `api_url` as the server (relative: the document's host)."""
    paths: dict[str, dict] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path or "/", {})[operation.method.lower()] = \
            _operation(operation)
    return with_transport_refusals({
        "openapi": "3.0.3",
        "info": {"title": "Taza Koom stewards' API", "version": __version__,
                 "description": "Publishing through review: see docs/stewards.md. Send "
                                "'Authorization: Bearer <token>', or sign in with "
                                "POST /api/session."},
        "servers": [{"url": api_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "taza_<id>_<secret>, from POST /api/tokens or "
                                          "`taza users token`; tokens expire"},
                "session": {"type": "apiKey", "in": "cookie", "name": "taza_session",
                            "description": "the cookie POST /api/session sets (__Host-"
                                           "taza_session over https); writes also need the "
                                           "X-CSRF-Token header and a same-site Origin"}},
            "schemas": {"error": ERROR_SCHEMA},
        },
    })


def _operation(operation: Operation) -> dict:
    responses = dict(operation.answers)
    # A change is refused (503) rather than made without its audit entry.
    writes = {503} if operation.method != "GET" else set()
    for status in sorted({*ALWAYS, *operation.errors, *writes}):
        responses[str(status)] = _json(ERRORS[status], {"$ref": "#/components/schemas/error"})
    described = {
        "summary": operation.summary,
        "description": f"Who: {operation.who}.",
        "tags": list(operation.tags),
        "parameters": list(operation.parameters),
        "responses": responses,
        # Public reads take a token or none; the rest need one (roles are checked after).
        "security": [{"bearer": []}, {"session": []}, {}] if operation.who.startswith("anyone")
        else [{"bearer": []}, {"session": []}],
    }
    if operation.body is not None:
        described["requestBody"] = operation.body
    return described
