"""Front-end libraries from npm (catalog/portal/package.json), served at /vendor/<package>/...

Pages never ask another host for anything (offline networks, privacy): the portal's pages and
our templates for the /ogc pages (catalog/ogc/templates) load Leaflet, Bootstrap, MapLibre and
Swagger UI from here.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

PORTAL_DIR = Path(__file__).resolve().parent
NODE_MODULES = PORTAL_DIR / "node_modules"


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
