"""Request bodies, checked once for the whole app before any view (ours or pygeoapi's) reads
them: a body on a method that takes none, and JSON that is invalid, hostile (nested thousands
deep, lone surrogates, 5,000-digit integers) or not UTF-8, answer 400 naming the problem.

Routes that stream a large body themselves (stewards' uploads) opt out with `@streams_body`;
everything else is held to the app's MAX_CONTENT_LENGTH (413 beyond it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from catalog.safe_parse import UnsafeInput, parse_json

BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
# CQL2 JSON filters are posted as application/query-cql-json by some clients.
EXTRA_JSON_TYPES = frozenset({"application/query-cql-json"})


def streams_body(view: Callable) -> Callable:
    """Mark a view that reads its (large, non-JSON) body as a stream: not read here."""
    view.streams_body = True
    return view


def is_json_type(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json") or \
        mimetype in EXTRA_JSON_TYPES


def refuse_unreadable_body() -> None:
    """Before every request: raise BadRequest (400) for a body no view should read."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "streams_body", False):
        return
    if request.method in BODYLESS_METHODS:
        if request.content_length or _is_chunked() and request.get_data(cache=True):
            raise BadRequest(f"request body: a {request.method} request takes no body")
        return
    if _is_chunked():
        _refuse_truncated_chunked_body()
    if is_json_type(request.mimetype) and (request.content_length or _is_chunked()):
        json_body()  # parsed once here; views parse the same bytes again safely


def json_body(what: str = "request body") -> Any:
    """The request's body parsed as JSON with safe_parse's limits; BadRequest if it is not
    acceptable JSON (an empty body included)."""
    try:
        return parse_json(request.get_data(cache=True), what)
    except UnsafeInput as err:
        raise BadRequest(str(err)) from None


def _refuse_truncated_chunked_body() -> None:
    """Without Content-Length, werkzeug stops reading at MAX_CONTENT_LENGTH and hands the
    view the first part as if it were everything: a body that fills the limit is refused."""
    limit = request.max_content_length
    if limit is not None and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge(f"request body: larger than {limit:,} bytes")


def _is_chunked() -> bool:
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()
