"""Front-end libraries from npm (catalog/portal/package.json), served at /vendor/<package>/...

pygeoapi's HTML templates load Leaflet, Bootstrap, Swagger UI and others from CDNs, which
this deployment must not use (offline networks, privacy). `localise_html` rewrites those URLs
to /vendor and drops what is not vendored, so a page never asks another host for anything.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

PORTAL_DIR = Path(__file__).resolve().parent
NODE_MODULES = PORTAL_DIR / "node_modules"

# https://unpkg.com/leaflet@1.3.1/dist/leaflet.js -> /vendor/leaflet/dist/leaflet.js
CDN_URL = re.compile(
    r"https://(?:unpkg\.com|cdn\.jsdelivr\.net/npm)/"
    r"(?P<package>(?:@[\w.-]+/)?[\w.-]+?)(?:@[\w.^~-]+)?/(?P<path>[^\"'\s]+)"
)
CDNJS_URL = re.compile(r"https://cdnjs\.cloudflare\.com/ajax/libs/(?P<package>[\w.-]+)/"
                       r"[\w.-]+/(?P<file>[^\"'\s]+)")
CDNJS_FILES = {"leaflet": "dist"}  # cdnjs flattens dist/ away
EXTERNAL_TAG = re.compile(
    r"<(?:script|link)\b[^>]*(?:src|href)=\"(?:https?:)?//(?!127\.0\.0\.1|localhost)[^\"]*\""
    r"[^>]*>(?:\s*</script>)?", re.IGNORECASE)


@cache
def packages() -> frozenset[str]:
    manifest = json.loads((PORTAL_DIR / "package.json").read_text())
    return frozenset(manifest["dependencies"])


def vendored_file(package: str, path: str) -> Path | None:
    """The file for /vendor/<package>/<path>, only within a declared package."""
    if package not in packages():
        return None
    root = (NODE_MODULES / package).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def localise_html(html: str) -> str:
    def vendored(match: re.Match) -> str:
        package, path = match["package"], match["path"]
        return f"/vendor/{package}/{path}" if vendored_file(package, path) else match[0]

    def cdnjs(match: re.Match) -> str:
        folder = CDNJS_FILES.get(match["package"], "")
        path = f"{folder}/{match['file']}" if folder else match["file"]
        return f"/vendor/{match['package']}/{path}" if vendored_file(match["package"], path) \
            else match[0]

    html = CDN_URL.sub(vendored, html)
    html = CDNJS_URL.sub(cdnjs, html)
    # Whatever still points elsewhere (web fonts, unvendored widgets) is left out.
    return EXTERNAL_TAG.sub("", html)
