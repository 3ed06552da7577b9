"""Run stac-api-validator with STAC JSON Schemas read from a local folder (no network here).

    python -m tests.stac_api_validator_offline SCHEMAS_DIR -- --root-url ... --conformance ...

SCHEMAS_DIR holds schema-map.json (schema URL -> file). stac-api-validator fetches schemas with
`requests` (stac-validator) and `urllib` (pystac); both are answered from that map, every other
URL (our server) goes out as usual. A schema missing from the map answers 404, so validation
fails loudly instead of passing without it.
"""

from __future__ import annotations

import email
import io
import json
import sys
import urllib.request
import urllib.response
from pathlib import Path

import requests
from requests.adapters import BaseAdapter

SCHEMA_HOSTS = ("https://schemas.stacspec.org/", "https://stac-extensions.github.io/",
                "https://geojson.org/", "https://proj.org/")


# Schemas the offline set lacks, written for these tests (tests/stac_schemas/schema-map.json).
OWN_SCHEMAS = Path(__file__).resolve().parent / "stac_schemas"


def load_map(folder: Path) -> dict[str, Path]:
    """The offline set's schemas, completed by ours for the URLs it lacks."""
    files = {}
    for place in (OWN_SCHEMAS, folder):  # the offline set's file wins where both have one
        mapping = json.loads((place / "schema-map.json").read_text())
        files.update({url: place / relative for url, relative in mapping.items()})
    return files


class SchemaAdapter(BaseAdapter):
    """A requests transport that answers schema URLs from local files."""

    def __init__(self, files: dict[str, Path]):
        super().__init__()
        self.files = files

    def send(self, request, **kwargs) -> requests.Response:
        response = requests.Response()
        response.url = request.url
        response.request = request
        path = self.files.get(request.url.split("#")[0])
        response.status_code = 200 if path else 404
        response._content = path.read_bytes() if path else b'{"error": "schema not in map"}'
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self) -> None:
        pass


class SchemaHandler(urllib.request.BaseHandler):
    """The same for urllib (pystac's StacIO): mapped URLs from files, others untouched."""

    handler_order = 100  # ahead of the standard HTTPS handler

    def __init__(self, files: dict[str, Path]):
        self.files = files

    def https_open(self, req):
        path = self.files.get(req.full_url.split("#")[0])
        if path is None:
            return None  # let the standard handler try (and fail: no network)
        headers = email.message_from_string("Content-Type: application/json\n")
        return urllib.response.addinfourl(io.BytesIO(path.read_bytes()), headers,
                                          req.full_url, 200)


def install(folder: Path) -> None:
    files = load_map(folder)
    adapter = SchemaAdapter(files)
    original_init = requests.Session.__init__

    def session_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        for host in SCHEMA_HOSTS:
            self.mount(host, adapter)

    requests.Session.__init__ = session_init
    urllib.request.install_opener(urllib.request.build_opener(SchemaHandler(files)))


def main(argv: list[str]) -> int:
    separator = argv.index("--")
    install(Path(argv[separator - 1]))
    from stac_api_validator.__main__ import main as validator_main

    return validator_main(args=argv[separator + 1:], prog_name="stac-api-validator")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
