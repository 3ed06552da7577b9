"""Security headers, HEAD answered as GET, and pages that work under the Content-Security-Policy
(catalog/http_policy.py, catalog/ogc/templates), against the real server.

The browser tests visit every kind of HTML page in Debian's Chromium and fail on any CSP
violation (securitypolicyviolation events and console errors, see tests/test_portal.py Watch).
"""

from __future__ import annotations

import html.parser
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pygeoapi
import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from catalog import settings
from tests.conftest import SAMPLE_IDS, Server, home_on_run_profile
from tests.stewards_support import (
    Api,
    airports_features,
    running_api,
    write_geojson,
)
from tests.test_portal import Watch, browser, wait_for_map  # noqa: F401

OGC_TEMPLATES = Path(settings.PROJECT_ROOT / "catalog" / "ogc" / "templates")
PYGEOAPI_TEMPLATES = Path(pygeoapi.__file__).parent / "templates"
SETTLEMENT = "/ogc/collections/settlements/items/1528249"
ZONAL = "/ogc/processes/zonal-statistics/execution"
# Answers that legitimately differ between two requests.
VOLATILE_HEADERS = {"date", "server", "connection", "keep-alive"}


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> Iterator[Api]:
    """The stewards' API on its own home, with the test accounts."""
    with home_on_run_profile(request, tmp_path_factory.mktemp("http-policy")) as home, \
            running_api(home, workers=1) as running:
        yield running


@pytest.fixture(scope="module")
def report(api, tmp_path_factory) -> str:
    """The report path of a draft of alice's (ministry-a) with an uploaded source."""
    folder = tmp_path_factory.mktemp("http-policy-sources")
    dataset_id, answer = api.draft_dataset(
        "headers", write_geojson(folder / "points.geojson", airports_features()), id_field="icao")
    assert answer.status_code == 201, answer.text
    return f"/api/datasets/{dataset_id}/draft/report"


HOSTILE = """</script><img src=x onerror="window.pwned = 1"> & 'quoted' <b>bold</b>"""


@pytest.fixture(scope="module")
def hostile_items(api, tmp_path_factory) -> str:
    """The items page of a published dataset whose first feature's name is markup."""
    features = airports_features()
    features[0]["properties"]["name"] = HOSTILE
    folder = tmp_path_factory.mktemp("http-policy-hostile")
    dataset_id, answer = api.draft_dataset(
        "hostile", write_geojson(folder / "points.geojson", features), id_field="icao")
    assert answer.status_code == 201, answer.text
    api.review_and_publish(dataset_id)
    return f"/ogc/collections/{dataset_id}/items"


@pytest.fixture(scope="module")
def job(server: Server) -> str:
    """The path of a finished processing job (status page and results exist)."""
    accepted = requests.post(server.url + ZONAL, timeout=60, headers={"Prefer": "respond-async"},
                             json={"inputs": {"raster": "slope", "region": "KG-T", "bins": 5}})
    assert accepted.status_code == 201, accepted.text
    path = "/ogc/jobs/" + accepted.json()["jobID"]
    deadline = time.monotonic() + 120
    while server.get(path).json()["status"] in ("accepted", "running"):
        assert time.monotonic() < deadline, "the job did not finish within 120 s"
        time.sleep(0.2)
    return path


# -- the headers on every answer -------------------------------------------------------------

def policy(response: requests.Response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_security_headers(response: requests.Response) -> None:
    where = f"{response.request.method} {response.url} ({response.status_code})"
    assert response.headers.get("X-Content-Type-Options") == "nosniff", where
    assert response.headers.get("X-Frame-Options") == "DENY", where
    assert response.headers.get("Referrer-Policy") in (
        "no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"), where
    csp = policy(response)
    assert csp["default-src"] == ["'none'"], where
    assert csp["script-src"] == ["'self'"], where  # no inline, eval, hash, nonce or host
    assert csp["style-src"] == ["'self'"], where
    assert csp["frame-ancestors"] == ["'none'"], where
    assert csp["base-uri"] == ["'none'"], where
    assert "blob:" not in csp.get("worker-src", []), where
    for name, sources in csp.items():  # no other origin anywhere
        assert set(sources) <= {"'self'", "'none'", "data:", "blob:"}, f"{where}: {name}"


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/", 200),
    ("GET", "/?lang=xx", 400),
    ("GET", "/datasets/settlements", 200),
    ("GET", "/datasets/nope", 404),
    ("GET", "/stewards", 200),
    ("GET", "/healthz", 200),
    ("GET", "/nope", 404),
    ("GET", "/vendor/leaflet/dist/leaflet.js", 200),
    ("GET", "/static/portal/portal.css", 200),
    ("GET", "/ogc/static/maps.js", 200),
    ("GET", "/assets/elevation/1/elevation.tif", 200),
    ("GET", "/tiles/elevation/1/relief/5/22/11.png", 200),
    ("GET", "/tiles/settlements/1/5/22/11.mvt", 200),
    ("GET", "/ogc/?f=html", 200),
    ("GET", "/ogc/collections/settlements/items?limit=2", 200),
    ("GET", "/ogc/collections/settlements/items?f=html&limit=2", 200),
    ("GET", "/ogc/collections/settlements/items?limit=abc", 400),
    ("GET", "/ogc/collections/nope?f=html", 404),
    ("GET", "/ogc/openapi?f=html", 200),
    ("DELETE", SETTLEMENT, 405),
    ("GET", "/stac/catalog.json", 200),
    ("GET", "/stac/search?limit=abc", 400),
    ("HEAD", "/", 200),
    ("OPTIONS", "/ogc/collections", 200),
])
def test_every_answer_carries_the_security_headers(server, method, path, status):
    response = requests.request(method, server.url + path, timeout=60, allow_redirects=False)
    assert response.status_code == status, response.text[:300]
    assert_security_headers(response)


def test_the_stewards_api_and_report_carry_the_security_headers(api, report):
    for user, path, status in ((None, "/api", 200), (None, "/api/me", 401),
                               ("alice", "/api/me", 200), ("alice", report + "?f=html", 200),
                               ("bob", report, 403)):
        response = api.get(path, user)
        assert response.status_code == status, (path, response.text)
        assert_security_headers(response)


# -- HEAD behaves as GET ---------------------------------------------------------------------

def assert_head_is_get(get: requests.Response, head: requests.Response) -> None:
    """Same status, same headers (but the time taken), no body."""
    def comparable(response):
        headers = {k.lower(): v for k, v in response.headers.items()
                   if k.lower() not in VOLATILE_HEADERS}
        if "server-timing" in headers:
            headers["server-timing"] = re.sub(r"dur=[\d.]+", "dur=", headers["server-timing"])
        return headers

    where = head.url
    assert head.status_code == get.status_code, where
    assert comparable(head) == comparable(get), where
    assert head.content == b"", where


@pytest.mark.parametrize("path", [
    # the app: health, vendored files, assets (with Range), redirects, errors
    "/healthz", "/nope", "/vendor/leaflet/dist/leaflet.js", "/vendor/nope/x.js",
    "/static/portal/portal.css", "/assets/elevation/latest/elevation.tif",
    "/assets/elevation/1/elevation.tif", "/assets/elevation/9/elevation.tif",
    # the portal: pages, tiles, values, refusals
    "/", "/?lang=xx", "/datasets/settlements", "/datasets/nope", "/stewards", "/review",
    "/tiles/elevation/1/relief/5/22/11.png", "/tiles/settlements/1/5/22/11.mvt",
    "/tiles/elevation/1/relief/99/0/0.png", "/portal/value/elevation?lon=75&lat=41",
    "/portal/value/elevation?lon=750&lat=41",
    # /ogc: pygeoapi's views, our direct items writer, our refusals
    "/ogc", "/ogc/", "/ogc/?f=html", "/ogc/collections",
    "/ogc/collections/settlements/items?limit=2",
    "/ogc/collections/settlements/items?f=html&limit=2",
    "/ogc/collections/settlements/items?limit=abc",
    SETTLEMENT, "/ogc/collections/nope", "/ogc/collections/nope?f=html",
    "/ogc/collections/elevation/coverage?f=json&bbox=74,42,74.1,42.1", "/ogc/openapi?f=json",
    "/ogc/processes", "/ogc/jobs", "/ogc/jobs/no-such-job", "/ogc/TileMatrixSets",
    # /stac: static tree and API
    "/stac/", "/stac/catalog.json", "/stac/search?limit=2", "/stac/search?limit=abc",
    "/stac/collections/nope",
])
def test_head_answers_exactly_as_get(server, path):
    get = requests.get(server.url + path, timeout=60, allow_redirects=False)
    head = requests.head(server.url + path, timeout=60, allow_redirects=False)
    assert_head_is_get(get, head)


def test_head_on_a_range_request_answers_as_get(server):
    path = server.url + "/assets/elevation/1/elevation.tif"
    get = requests.get(path, headers={"Range": "bytes=0-99"}, timeout=60)
    head = requests.head(path, headers={"Range": "bytes=0-99"}, timeout=60)
    assert get.status_code == 206
    assert_head_is_get(get, head)


def test_head_is_refused_where_get_is_on_the_stewards_api(api, report):
    source = report.replace("/report", "/source")
    for user, path in ((None, "/api"), (None, "/api/me"), ("alice", "/api/me"),
                       (None, "/api/datasets"), ("alice", report), ("alice", report + "?f=html"),
                       (None, report), ("bob", report), ("alice", report + "?colour=red"),
                       ("alice", source),
                       ("alice", "/api/audit"), ("root", "/api/audit?limit=5"),
                       ("alice", "/api/datasets/nope/draft")):
        get = api.get(path, user)
        head = api.request("HEAD", path, user)
        assert_head_is_get(get, head)
    # Refusals are among them: anonymous, another organisation, a write-only route.
    assert api.request("HEAD", report).status_code == 401
    assert api.request("HEAD", report, "bob").status_code == 403
    assert api.request("HEAD", source, "alice").status_code == 405


# -- no inline code in any HTML page ---------------------------------------------------------

class InlineCode(html.parser.HTMLParser):
    """Script and style that do not come from a file: what the policy refuses."""

    DATA_TYPES = ("application/json", "application/ld+json")

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and "src" not in attributes and \
                attributes.get("type") not in self.DATA_TYPES:
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        if tag == "style":
            self.found.append(f"<style> at line {self.getpos()[0]}")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"{name}= on <{tag}> at line {self.getpos()[0]}")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.found.append(f"javascript: URL on <{tag}> at line {self.getpos()[0]}")


def inline_code(page_html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(page_html)
    return parser.found


HTML_PAGES = [
    "/", "/?lang=ky", "/stewards", "/review",
    *[f"/datasets/{dataset_id}" for dataset_id in SAMPLE_IDS],
    "/ogc/?f=html", "/ogc/collections?f=html", "/ogc/conformance?f=html",
    "/ogc/collections/settlements?f=html", "/ogc/collections/elevation?f=html",
    "/ogc/collections/settlements/items?f=html",
    "/ogc/collections/kyrgyzstan-boundary/items?f=html",
    "/ogc/collections/settlements/items?f=html&skipGeometry=true",
    f"{SETTLEMENT}?f=html", "/ogc/collections/settlements/queryables?f=html",
    "/ogc/collections/settlements/schema?f=html", "/ogc/collections/elevation/schema?f=html",
    "/ogc/collections/elevation/coverage?f=html&bbox=74,42,75,43",
    "/ogc/processes?f=html", "/ogc/processes/site-screening?f=html",
    "/ogc/openapi?f=html", "/ogc/openapi?f=html&ui=redoc",
    # error pages, and the routes of pygeoapi templates we do not serve (see below)
    "/ogc/collections/nope?f=html", "/ogc/collections/settlements/items/nope?f=html",
    "/ogc/collections/settlements/coverage?f=html",
    "/ogc/collections/settlements/position?f=html",
]


@pytest.mark.parametrize("path", HTML_PAGES)
def test_html_pages_have_no_inline_script_or_style(server, path):
    page = server.get(path)
    assert page.headers["Content-Type"].startswith("text/html"), path
    assert inline_code(page.text) == [], path


def test_job_and_stewards_report_pages_have_no_inline_script_or_style(server, job, api,
                                                                     report):
    for response in (server.get(f"{job}?f=html"), server.get(f"{job}/results?f=html"),
                     api.get(f"{report}?f=html", "alice")):
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(
            "text/html"), response.url
        assert inline_code(response.text) == [], response.url


# pygeoapi templates with inline code that we do not override, and why no page uses them: the
# route is not one of ours (catalog/ogc/routes.py routes no AsyncAPI, EDR or STAC; the tiles
# routes are catalog/ogc_tiles', in JSON), or it answers an error (rendered by exception.html
# through our _base.html) or JSON.
UNSERVED_TEMPLATES = {
    "asyncapi.html": ("/ogc/asyncapi?f=html", 404),
    # (under a feature collection these answer 400 saying where its features are)
    "collections/edr/query.html": ("/ogc/collections/elevation/position?f=html", 404),
    # OGC API - Tiles is ours (catalog/ogc_tiles) and answers JSON only: f=html is 400.
    "collections/tiles/index.html": ("/ogc/collections/elevation/map/tiles?f=html", 400),
    "jobs/index.html": ("/ogc/jobs?f=html", 404),  # jobs are never listed
    "stac/collection_base.html": ("/ogc/stac/settlements?f=html", 404),
    "stac/item.html": ("/ogc/stac/settlements/item?f=html", 404),
}
PYGEOAPI_INLINE = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(?:ld\+)?json)[^>]*>"
                             r"|<style\b|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def test_every_pygeoapi_template_with_inline_code_is_replaced_or_never_served(server):
    """Guards pygeoapi upgrades: a new template with inline code fails here until we write
    our own (catalog/ogc/templates) or show that no page renders it."""
    for template in sorted(PYGEOAPI_TEMPLATES.rglob("*.html")):
        name = template.relative_to(PYGEOAPI_TEMPLATES).as_posix()
        if not PYGEOAPI_INLINE.search(template.read_text(encoding="utf-8")):
            continue
        ours = OGC_TEMPLATES / name
        if ours.exists():
            assert not PYGEOAPI_INLINE.search(ours.read_text(encoding="utf-8")), name
            continue
        assert name in UNSERVED_TEMPLATES, f"pygeoapi's {name} has inline code: replace it"
        path, status = UNSERVED_TEMPLATES[name]
        assert server.get(path).status_code == status, path
    # pygeoapi renders /TileMatrixSets with its stock templates whatever the config says.
    assert server.get("/ogc/TileMatrixSets?f=html").status_code == 404


# -- the pages work in Chromium under the policy ---------------------------------------------

class ErrorPageWatch(Watch):
    """Watch, but Chromium's console line for the error status the page is meant to have."""

    def __init__(self, page: Page, status: int):
        self.status = status
        super().__init__(page)

    def _console(self, message) -> None:
        if f"the server responded with a status of {self.status}" not in message.text:
            super()._console(message)


@pytest.fixture(scope="module")
def chromium(browser: Browser) -> Browser:  # noqa: F811 - test_portal's browser fixture
    return browser


def visit(chromium: Browser, url: str, check, status: int = 200, **context_options) -> None:
    """Open url in a fresh context, run check(page), fail on anything Watch saw."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB",
                                  **context_options)
    page = context.new_page()
    watch = Watch(page) if status == 200 else ErrorPageWatch(page, status)
    page.set_default_timeout(30_000)
    basemap: list[int] = []
    page.on("response", lambda r: basemap.append(r.status) if "/relief/" in r.url else None)
    try:
        response = page.goto(url)
        assert response.status == status, url
        page.wait_for_load_state("networkidle")
        check(page)
        page.wait_for_load_state("networkidle")
    except Exception as error:  # say what the page did wrong, not only what timed out
        raise AssertionError(f"{url}: {error}\n" + "\n".join(watch.problems)) from error
    finally:
        context.close()
    assert not watch.problems, f"{url}:\n" + "\n".join(watch.problems)
    assert all(code == 200 for code in basemap), (url, basemap)


def nothing(page: Page) -> None:
    expect(page.locator("body")).not_to_be_empty()


def map_with_tiles(page: Page) -> None:
    page.wait_for_function("() => window.ogcMap && document.querySelectorAll("
                           "'.leaflet-tile-loaded').length > 0")


def test_portal_map_works_under_the_policy(chromium, server):
    def check(page):
        page.wait_for_function("() => document.body?.dataset.mapReady === 'true'")
        for dataset_id in ("settlements", "elevation", "mobile-coverage"):
            page.check(f"#toggle-{dataset_id}")
        wait_for_map(page)
        # Vector tiles are parsed in MapLibre's worker: features only come back from there.
        rendered = page.evaluate("() => window.portal.map.queryRenderedFeatures()"
                                 ".filter(f => f.source === 'settlements').length")
        assert rendered > 0

    visit(chromium, server.url + "/", check)


@pytest.mark.parametrize("path", [
    "/datasets/settlements", "/datasets/elevation", "/stewards", "/review",
    "/ogc/?f=html", "/ogc/collections?f=html", "/ogc/conformance?f=html",
    "/ogc/collections/settlements/queryables?f=html", "/ogc/collections/settlements/schema?f=html",
    "/ogc/processes?f=html", "/ogc/processes/site-screening?f=html",
])
def test_pages_without_maps_load_under_the_policy(chromium, server, path):
    visit(chromium, server.url + path, nothing)


@pytest.mark.parametrize("path", [
    "/ogc/collections/settlements?f=html", "/ogc/collections/elevation?f=html",
    "/ogc/collections/kyrgyzstan-boundary/items?f=html&limit=3", f"{SETTLEMENT}?f=html",
])
def test_ogc_maps_draw_over_the_basemap_under_the_policy(chromium, server, path):
    visit(chromium, server.url + path, map_with_tiles)


def test_items_map_popup_links_to_the_item(chromium, server):
    def check(page):
        map_with_tiles(page)
        page.locator(".leaflet-marker-icon").first.click()
        popup_link = page.locator(".leaflet-popup-content a")
        expect(popup_link).to_have_attribute("href", re.compile(r"/items/\d+\?f=html$"))
        # Paging and page size work without inline handlers.
        page.select_option("#limits", "100")
        page.wait_for_url(re.compile(r"limit=100"))
        expect(page.locator("#items tbody tr")).to_have_count(100)
        page.click("a[rel=next]")
        page.wait_for_url(re.compile(r"offset=100"))
        expect(page.locator("#items tbody tr")).to_have_count(12)

    visit(chromium, server.url + "/ogc/collections/settlements/items?f=html&limit=1", check)


def test_feature_text_reaches_pages_as_text_never_as_markup(chromium, api, hostile_items):
    def check(page):
        page.wait_for_function("() => window.ogcMap")  # no basemap on this catalog: no DEM
        data = page.evaluate("() => JSON.parse(document.getElementById('ogc-map-data')"
                             ".textContent)")
        names = [feature["properties"]["name"] for feature in data["features"]]
        assert HOSTILE in names  # the JSON block carries the text exactly
        expect(page.locator("#items td", has_text="</script><img src=x").first).to_be_visible()
        assert page.locator("#items table img, #items table b").count() == 0
        assert page.evaluate("() => window.pwned === undefined")

    visit(chromium, f"{api.url}{hostile_items}?f=html&limit=100", check)


def test_coverage_map_shows_the_value_of_a_clicked_cell(chromium, server):
    query = "bbox=74,42,75,43"
    coverage = server.get(f"/ogc/collections/elevation/coverage?f=json&{query}").json()
    x, y = coverage["domain"]["axes"]["x"], coverage["domain"]["axes"]["y"]
    values = coverage["ranges"][next(iter(coverage["ranges"]))]["values"]

    def check(page):
        map_with_tiles(page)
        # Named after the band, with its unit (pygeoapi's CoverageJSON named it "null").
        expect(page.locator(".ogc-legend")).to_contain_text("elevation (m)")
        box = page.locator("#coverage-map").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(page.locator(".ogc-cell-value")).to_be_visible()
        clicked = page.evaluate("""() => { let where = null;
            window.ogcMap.eachLayer((layer) => { if (layer.getLatLng && layer.getContent) {
              where = layer.getLatLng(); } });
            return where; }""")
        col = round((clicked["lng"] - x["start"]) / ((x["stop"] - x["start"]) / (x["num"] - 1)))
        row = round((clicked["lat"] - y["start"]) / ((y["stop"] - y["start"]) / (y["num"] - 1)))
        expected = values[row * x["num"] + col]
        text = page.locator(".ogc-cell-value").inner_text()
        assert text.startswith("elevation (m): "), text
        shown = float(text.split(": ")[1].replace(",", "").replace("\u202f", ""))
        assert shown == pytest.approx(expected), text

    visit(chromium, server.url + f"/ogc/collections/elevation/coverage?f=html&{query}", check)


def test_swagger_ui_runs_a_request_under_the_policy(chromium, server):
    def check(page):
        operation = page.locator(".opblock").first
        operation.locator(".opblock-summary").click()
        operation.locator(".try-out__btn").click()
        operation.locator(".execute").click()
        expect(operation.locator(".live-responses-table tbody .response-col_status").first) \
            .to_have_text("200")

    visit(chromium, server.url + "/ogc/openapi?f=html", check)
    visit(chromium, server.url + "/ogc/openapi?f=html&ui=redoc",
          lambda page: expect(page.locator(".opblock").first).to_be_visible())


def test_job_pages_show_parameters_and_results_under_the_policy(chromium, server, job):
    visit(chromium, f"{server.url}{job}?f=html",
          lambda page: expect(page.locator("#job-status")).to_have_text("successful"))
    visit(chromium, f"{server.url}{job}/results?f=html",
          lambda page: expect(page.locator("#results")).to_contain_text('"histogram"'))


def test_error_pages_load_under_the_policy(chromium, server):
    visit(chromium, server.url + "/ogc/collections/nope?f=html", nothing, status=404)
    visit(chromium, server.url + "/ogc/collections/settlements/items/nope?f=html", nothing,
          status=404)


def test_stewards_report_page_loads_under_the_policy(chromium, api, report):
    visit(chromium, f"{api.url}{report}?f=html",
          lambda page: expect(page.locator("#summary")).to_be_visible(),
          extra_http_headers=api.headers("alice"))


def test_the_policy_is_enforced_in_the_browser(chromium, server):
    """The test's own check: a page that tries inline script is reported (so a silent Watch
    above means no violation, not a deaf listener)."""
    context = chromium.new_context()
    page = context.new_page()
    watch = Watch(page)
    page.goto(server.url + "/ogc/?f=html")
    refused = page.evaluate("""() => new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation",
                                  (event) => resolve(event.violatedDirective), { once: true });
        const script = document.createElement("script");
        script.textContent = "window.ranInline = true";
        document.body.append(script); })""")
    ran = page.evaluate("() => window.ranInline === true")
    expect(page.locator("body")).not_to_be_empty()  # a round trip: Watch's report arrives
    context.close()
    assert refused == "script-src-elem" and not ran
    reported = [p for p in watch.problems if p.startswith("CSP violation: script-src-elem")]
    assert reported, watch.problems
