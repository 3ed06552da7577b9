"""Request bodies, checked once for the whole app before any view (ours or pygeoapi's) reads
them: a body on a method that takes none, and JSON that is invalid, hostile (nested thousands
deep, lone surrogates, 5,000-digit integers) or not UTF-8, answer 400 naming the problem.

Routes that stream a large body themselves (stewards' uploads) opt out with `@streams_body`;
everything else is held to the app's MAX_CONTENT_LENGTH (413 beyond it). The stewards' API
checks token, role and organisation before it reads a body, so its JSON is parsed (with the
same limits) by its own views, after that: here it only gets the checks that read nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from catalog.safe_parse import UnsafeInput, parse_json

BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
# Blueprints whose views authorise before reading a body, and parse it with safe_parse.
AUTHORISES_FIRST = frozenset({"stewards_api"})
# CQL2 JSON filters are posted as application/query-cql-json by some clients.
EXTRA_JSON_TYPES = frozenset({"application/query-cql-json"})


class CodedBadRequest(BadRequest):
    """400 with a message code and its params beside the English description (the app's
    error handler adds them as `messageCode` and `params`: the portal says them in the page's
    language, strings.yml `problem.<code>`)."""

    def __init__(self, description: str, message_code: str | None = None,
                 params: dict[str, Any] | None = None):
        super().__init__(description)
        self.message_code = message_code
        self.params = dict(params or {})


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
    if getattr(view, "streams_body", False) or request.blueprint in AUTHORISES_FIRST:
        return  # the stewards' API calls refuse_body_on_bodyless_method once it has authorised
    refuse_body_on_bodyless_method()
    if request.method in BODYLESS_METHODS:
        return
    if _is_chunked():
        read_body()  # 413 if it fills the limit
    if is_json_type(request.mimetype) and (request.content_length or _is_chunked()):
        json_body()  # parsed once here; views parse the same bytes again safely


def refuse_body_on_bodyless_method() -> None:
    """A body on GET, HEAD, DELETE, OPTIONS or TRACE is 400, refused unread (even if empty)."""
    if request.method in BODYLESS_METHODS and (request.content_length or _is_chunked()):
        raise BadRequest(f"request body: a {request.method} request takes no body")


def json_body(what: str = "request body") -> Any:
    """The request's body parsed as JSON with safe_parse's limits; BadRequest if it is not
    acceptable JSON (an empty body included)."""
    try:
        return parse_json(read_body(), what)
    except UnsafeInput as err:
        raise CodedBadRequest(str(err), message_code="json_body_unreadable") from None


def read_body() -> bytes:
    """The whole body (cached), or 413. Without Content-Length, werkzeug stops reading at
    MAX_CONTENT_LENGTH and hands over the first part as if it were everything: a chunked
    body that fills the limit is refused instead of read truncated."""
    data = request.get_data(cache=True)
    limit = request.max_content_length
    if _is_chunked() and limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge(f"request body: larger than {limit:,} bytes")
    return data


def _is_chunked() -> bool:
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()
