"""HTTP rules every response of the catalog follows, in one place (wrapped around the app).

- Security headers on every response: a Content-Security-Policy without inline script, eval
  or any other origin; `X-Content-Type-Options: nosniff`; no framing by anyone
  (`frame-ancestors 'none'` and `X-Frame-Options: DENY` for browsers without CSP 2); a
  Referrer-Policy that keeps our URLs (job URLs are capabilities) away from other sites.
- HEAD is answered as GET with the body left out, so it has GET's status and headers on every
  route, including refusals (a before_request hook that checks `method == "GET"` cannot be
  bypassed with HEAD).

It is WSGI middleware rather than a Flask after_request hook so that it also covers answers no
hook sees: pygeoapi's views, error handlers, and responses from other middleware.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

# Pages take scripts, styles, fonts and images from this server only. Data reaches scripts in
# <script type="application/json"> blocks, never in inline code. MapLibre GL runs its worker
# from its CSP build's worker file (/vendor/maplibre-gl/dist/maplibre-gl-csp-worker.js), so no
# blob: scripts. Images: data: for icons inside vendored CSS (Leaflet, Swagger UI), blob: for
# map canvases exported by the libraries.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Full URLs within this site (the portal's links), only the origin to other HTTPS sites,
    # nothing over plain HTTP.
    "Referrer-Policy": "strict-origin-when-cross-origin",
}

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


class HttpPolicy:
    """WSGI middleware: security headers on every answer, HEAD answered exactly as GET."""

    def __init__(self, app: WsgiApp, headers: dict[str, str] | None = None):
        self.app = app
        self.headers = dict(SECURITY_HEADERS if headers is None else headers)
        self._names = {name.lower() for name in self.headers}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        is_head = environ.get("REQUEST_METHOD") == "HEAD"
        if is_head:
            environ["REQUEST_METHOD"] = "GET"

        def start_with_policy(status: str, headers: list[tuple[str, str]], exc_info=None):
            kept = [(name, value) for name, value in headers if name.lower() not in self._names]
            return start_response(status, kept + list(self.headers.items()), exc_info)

        body = self.app(environ, start_with_policy)
        if not is_head:
            return body
        # GET's answer without its body. Headers (Content-Length included) stay as GET's.
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return []


# The longest request line (method, URL, version) the HTTP server takes: gunicorn's
# limit_request_line (config/gunicorn.conf.py) and its maximum, as nginx's default buffers.
# A longer one is answered 414 by the HTTP server itself, as an HTML page, before any route.
MAX_REQUEST_LINE = 8190
URI_TOO_LONG = {
    "description": f"URI Too Long: the request line is longer than {MAX_REQUEST_LINE} bytes; "
                   "the HTTP server refuses it before the API reads it (an HTML page). Send "
                   "a long filter or geometry in a POST body where the operation has one.",
    "content": {"text/html": {"schema": {"type": "string"}}},
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def with_transport_refusals(document: dict) -> dict:
    """An OpenAPI document whose every operation lists 414, which the HTTP server answers to a
    request line of any operation that is too long (the fuzz tests' conformance check asks
    every status to be documented)."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method in METHODS and isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault("414", URI_TOO_LONG)
    return document
