"""Public reads can be used from web pages on other origins (STAC Browser, dashboards, COG
viewers); the stewards' API cannot. A page served from another port is another origin: real
Chromium runs its fetches, so the browser itself enforces CORS."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
import requests

from tests.test_portal import browser  # noqa: F401 - the Chromium fixture

PAGE = b"<!doctype html><title>another origin</title><p>elsewhere</p>"


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


FETCHES = """async (base) => {
  const out = {};
  const items = await fetch(base + '/ogc/collections/settlements/items?limit=2');
  out.items = [items.status, (await items.json()).features.length,
               items.headers.get('Content-Crs')];
  const search = await fetch(base + '/stac/search', {method: 'POST',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify({limit: 1})});
  out.search = [search.status, (await search.json()).type];
  const cql = await fetch(base + '/ogc/collections/settlements/items', {method: 'POST',
      headers: {'Content-Type': 'application/query-cql-json'},
      body: JSON.stringify({op: '>', args: [{property: 'population'}, 100000]})});
  out.cql = [cql.status, (await cql.json()).numberMatched];
  const cog = await fetch(base + '/assets/elevation/latest/elevation.tif',
      {headers: {Range: 'bytes=0-15'}});
  out.cog = [cog.status, cog.headers.get('Content-Range'),
             (await cog.arrayBuffer()).byteLength];
  try {
    await fetch(base + '/api/datasets');
    out.stewards = 'readable';
  } catch (error) {
    out.stewards = 'blocked';
  }
  return out;
}"""


def test_public_reads_work_from_another_origin_and_the_stewards_api_does_not(
        browser, server, other_origin):  # noqa: F811 - the imported fixture
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(other_origin)
        out = page.evaluate(FETCHES, server.url)
    finally:
        context.close()
    assert out["items"] == [200, 2, "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"]
    assert out["search"] == [200, "FeatureCollection"]
    assert out["cql"][0] == 200 and out["cql"][1] > 0
    assert out["cog"][0] == 206 and out["cog"][1].startswith("bytes 0-15/") and out["cog"][2] == 16
    assert out["stewards"] == "blocked"


def test_preflight_names_what_may_be_sent(server):
    preflight = requests.options(server.url + "/stac/search", timeout=10, headers={
        "Origin": "http://example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()
    denied = requests.options(server.url + "/api/datasets", timeout=10, headers={
        "Origin": "http://example.org", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in denied.headers
