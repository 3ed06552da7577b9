"""The /ogc HTML pages look like the catalog and work (issue 12, item 3), in Debian's Chromium
against the real server: no request of a page fails (no 4xx/5xx, no map tile 404), every page
carries the catalog's name, navigation back to the portal and the language switch, the page
furniture is in the language asked (ky, ru, en), the elevation coverage page has its own title,
the links on the pages lead somewhere (no "Browse jobs" to a 404), and each dataset states its
own licence (landing page, schema.org JSON-LD).
"""

from __future__ import annotations

import re
import time
import urllib.parse

import pytest
import requests
import yaml
from playwright.sync_api import Browser, Page, expect

from catalog.ogc import translations
from catalog.ogc.translations import page_words, strings
from tests.conftest import (
    DATASETS,
    RASTER_IDS,
    SAMPLE_IDS,
    VECTOR_IDS,
    Server,
    copy_dataset,
    start_server,
    stop_server,
    taza,
)
from tests.test_portal import Watch, browser  # noqa: F401 - the Chromium fixture

LANGUAGES = ("ky", "ru", "en")
SETTLEMENT = "/ogc/collections/settlements/items/1528249"
# OGC API - Records: the record collection, a search, one record (catalog/ogc/templates/records)
RECORD_PAGES = ["/ogc/collections/metadata?f=html", "/ogc/collections/metadata/items?f=html",
                "/ogc/collections/metadata/items/settlements?f=html"]
PAGES = [
    "/ogc/?f=html", "/ogc/collections?f=html", "/ogc/conformance?f=html",
    "/ogc/collections/settlements?f=html", "/ogc/collections/elevation?f=html",
    "/ogc/collections/settlements/items?f=html&limit=5", f"{SETTLEMENT}?f=html",
    "/ogc/collections/settlements/queryables?f=html",
    "/ogc/collections/settlements/schema?f=html", "/ogc/collections/elevation/schema?f=html",
    "/ogc/collections/elevation/coverage?f=html&bbox=74,42,75,43",
    "/ogc/processes?f=html", "/ogc/processes/site-screening?f=html",
    "/ogc/openapi?f=html", "/ogc/openapi?f=html&ui=redoc", *RECORD_PAGES,
]
MAP_PAGES = {"/ogc/collections/settlements?f=html", "/ogc/collections/elevation?f=html",
             "/ogc/collections/settlements/items?f=html&limit=5", f"{SETTLEMENT}?f=html",
             "/ogc/collections/elevation/coverage?f=html&bbox=74,42,75,43", *RECORD_PAGES}
SWAGGER_PAGES = {"/ogc/openapi?f=html", "/ogc/openapi?f=html&ui=redoc"}
CATALOG_NAME = {"en": "Taza Koom", "ru": "Таза Коом", "ky": "Таза Коом"}  # in its title


def words(key: str, language: str) -> str:
    return strings()[key][language]


class FailedRequests(Watch):
    """Watch (console errors, CSP violations, other hosts), and every answer of 400 or more
    and every request that failed on the wire."""

    def __init__(self, page: Page):
        super().__init__(page)
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _response(self, response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def _failed(self, request) -> None:
        # A map abandons the tiles it no longer needs while it settles: not a failure.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed: {request.url} ({request.failure})")


def open_page(browser: Browser, url: str, check, language: str = "en") -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  locale={"en": "en-GB", "ru": "ru-RU", "ky": "ky-KG"}[language])
    page = context.new_page()
    watch = FailedRequests(page)
    page.set_default_timeout(30_000)
    try:
        response = page.goto(url)
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        check(page)
        page.wait_for_load_state("networkidle")
    except Exception as error:
        raise AssertionError(f"{url}: {error}\n" + "\n".join(watch.problems)) from error
    finally:
        context.close()
    assert not watch.problems, f"{url}:\n" + "\n".join(watch.problems)


def wait_until_drawn(page: Page, path: str) -> None:
    if path in MAP_PAGES:  # the basemap's tiles (a 404 would be reported by the watch)
        page.wait_for_function("() => window.ogcMap && "
                               "document.querySelectorAll('.leaflet-tile-loaded').length > 0")
    if path in SWAGGER_PAGES:  # Swagger UI drew the operations (ReDoc's page was blank)
        expect(page.locator(".opblock").first).to_be_visible()


def top_bar_of_the_catalog(page: Page, server: Server, language: str) -> None:
    brand = page.locator(".ogc-topbar .ogc-brand")
    expect(brand).to_contain_text(CATALOG_NAME[language])
    portal = urllib.parse.urlsplit(brand.get_attribute("href"))
    assert (portal.path, urllib.parse.parse_qs(portal.query)) == ("/", {"lang": [language]})
    expect(page.locator(".ogc-topnav")).to_contain_text(words("ogc.map", language))
    switch = page.locator(".ogc-lang-switch a")
    expect(switch).to_have_text([code.upper() for code in ("ky", "ru", "en")])
    expect(page.locator(f".ogc-lang-switch a[aria-current=true][data-lang={language}]")) \
        .to_have_count(1)
    assert not page.locator("img[src*=pygeoapi], img[alt*=pygeoapi i]").count()
    # The tab names the catalog too (in the page's language, as the top bar does).
    assert page.title().endswith(page.locator(".ogc-brand strong").inner_text()), page.title()


@pytest.mark.parametrize("path", PAGES)
def test_ogc_pages_load_with_no_failed_request_and_carry_our_name(browser, server, path):  # noqa: F811
    def check(page: Page) -> None:
        wait_until_drawn(page, path)
        top_bar_of_the_catalog(page, server, "en")
        expect(page.locator("html")).to_have_attribute("lang", "en")

    open_page(browser, server.url + path, check)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("path", ["/ogc/?f=html", "/ogc/collections?f=html",
                                  "/ogc/collections/elevation?f=html",
                                  "/ogc/collections/elevation/coverage?f=html&bbox=74,42,75,43",
                                  "/ogc/processes/site-screening?f=html",
                                  "/ogc/openapi?f=html", *RECORD_PAGES])
def test_lang_translates_the_page_furniture(browser, server, path, language):  # noqa: F811
    """?lang=xx: the top bar, breadcrumbs and every heading of the page in that language (was:
    the furniture English whatever lang said)."""
    english = {text for text, entry in page_words().items()
               if language != "en" and entry[language] != text}

    def check(page: Page) -> None:
        wait_until_drawn(page, path)
        expect(page.locator("html")).to_have_attribute("lang", language)
        top_bar_of_the_catalog(page, server, language)
        expect(page.locator(".ogc-skip")).to_have_text(words("ogc.skip", language))
        if path not in SWAGGER_PAGES:
            expect(page.locator(".ogc-crumbs a").first).to_have_text(words("ogc.home",
                                                                           language))
        furniture = page.locator(".ogc-topbar, .ogc-crumbs, main h1, main h2, main h3, "
                                 "main th, main caption, main label, footer").all_inner_texts()
        untranslated = [text.strip() for text in furniture if text.strip() in english]
        assert untranslated == [], untranslated

    open_page(browser, f"{server.url}{path}&lang={language}", check, language)


def test_language_switch_keeps_the_page_and_its_parameters(browser, server):  # noqa: F811
    path = "/ogc/collections/elevation/coverage?f=html&bbox=74,42,75,43"

    def check(page: Page) -> None:
        wait_until_drawn(page, path)
        page.click(".ogc-lang-switch a[data-lang=ru]")
        page.wait_for_url(re.compile(r"lang=ru"))
        wait_until_drawn(page, path)
        asked = urllib.parse.urlsplit(page.url)
        assert asked.path == "/ogc/collections/elevation/coverage"
        assert urllib.parse.parse_qs(asked.query)["bbox"] == ["74,42,75,43"]
        expect(page.locator("html")).to_have_attribute("lang", "ru")
        expect(page.locator(".ogc-topnav")).to_contain_text(words("ogc.map", "ru"))

    open_page(browser, server.url + path, check)


@pytest.mark.parametrize("language", LANGUAGES)
def test_elevation_coverage_page_has_its_title_and_named_band(browser, server, language):  # noqa: F811
    """Was: a raw {'en': ..., 'ru': ..., 'ky': ...} title and a layer named "null"."""
    title = server.get(f"/ogc/collections/elevation?f=json&lang={language}").json()["title"]
    path = f"/ogc/collections/elevation/coverage?f=html&bbox=74,42,75,43&lang={language}"

    def check(page: Page) -> None:
        wait_until_drawn(page, path)
        expect(page.locator("main h1")).to_have_text(title)
        assert "{" not in page.title() and title in page.title()
        expect(page.locator(".ogc-legend")).to_contain_text("elevation (m)")
        assert "null" not in page.locator(".ogc-legend").inner_text()

    open_page(browser, server.url + path, check, language)


LINKED_FROM = ["/ogc/?f=html", "/ogc/collections?f=html", "/ogc/conformance?f=html",
               "/ogc/collections/elevation?f=html", "/ogc/collections/settlements?f=html",
               "/ogc/processes?f=html", "/ogc/processes/site-screening?f=html",
               "/ogc/processes/zonal-statistics?f=html", *RECORD_PAGES]


@pytest.mark.parametrize("path", LINKED_FROM)
def test_links_on_the_pages_lead_somewhere(server, path):
    """Every link of this server on the page answers 200 (was: "Browse jobs" -> 404)."""
    page = server.get(path)
    assert page.status_code == 200
    hrefs = set(re.findall(r"<a\b[^>]*\bhref=\"([^\"#]+)", page.text))
    ours = set()
    for href in hrefs:
        url = urllib.parse.urljoin(server.url + path, href.replace("&amp;", "&"))
        if url.startswith(server.url):
            ours.add(url)
    assert ours
    broken = []
    for url in sorted(ours):
        answer = requests.get(url, timeout=60)
        if answer.status_code != 200:
            broken.append(f"{answer.status_code} {url}")
    assert broken == []
    assert not [h for h in hrefs if h.rstrip("/").endswith("/jobs")]


def manifest_licences(server: Server) -> dict[str, str]:
    """Dataset id -> the licence URL its STAC collection links (from its manifest)."""
    licences = {}
    for dataset_id in SAMPLE_IDS:
        collection = server.get(f"/stac/collections/{dataset_id}").json()
        links = [link for link in collection["links"] if link["rel"] == "license"]
        licences[dataset_id] = links[0]["href"]
    return licences


def test_landing_page_lists_each_datasets_own_licence(browser, server):  # noqa: F811
    licences = manifest_licences(server)
    assert len(set(licences.values())) > 1  # the sample datasets have different licences

    def check(page: Page) -> None:
        for dataset_id, licence in licences.items():
            row = page.locator("#licences tr, table tr").filter(
                has=page.locator(f"a[href*='/collections/{dataset_id}?']"))
            expect(row.locator(f"a[href='{licence}']")).to_have_count(1)

    open_page(browser, server.url + "/ogc/?f=html", check)


def test_schema_org_json_ld_gives_each_dataset_its_own_licence(server):
    licences = manifest_licences(server)
    catalog = server.get("/ogc/collections?f=jsonld").json()
    stated = {dataset["url"].rstrip("/").rsplit("/", 1)[-1].split("?")[0]: dataset["license"]
              for dataset in catalog["dataset"]}
    assert stated == licences
    assert catalog.get("license") is None  # no one licence for the whole catalog
    for dataset_id in ("settlements", "elevation"):
        one = server.get(f"/ogc/collections/{dataset_id}?f=jsonld").json()
        described = one.get("dataset", one)
        assert described["license"] == licences[dataset_id]


def test_coverage_collections_tell_feature_clients_they_are_coverages(server):
    collections = server.get("/ogc/collections").json()["collections"]
    kinds = {c["id"]: c.get("layerDataType") for c in collections}
    assert {kinds[dataset_id] for dataset_id in RASTER_IDS} == {"Coverage"}
    assert {kinds[dataset_id] for dataset_id in VECTOR_IDS} == {None}
    for dataset_id in RASTER_IDS:
        described = server.get(f"/ogc/collections/{dataset_id}").json()
        assert described["layerDataType"] == "Coverage"
        assert not [link for link in described["links"] if link["rel"] == "items"]


def test_every_word_of_the_pages_is_in_three_languages():
    entries = yaml.safe_load(translations.STRINGS.read_text(encoding="utf-8"))
    assert entries
    for key, entry in entries.items():
        assert set(entry) == set(LANGUAGES), key
        assert all(isinstance(text, str) and text for text in entry.values()), key
    ids = [entry["en"] for entry in entries.values()]
    assert len(ids) == len(set(ids)), "two entries with the same English text"


def test_every_trans_block_of_our_templates_has_its_words():
    """A {% trans %} text missing from catalog/ogc/strings.yml would stay English."""
    known = set(page_words())
    folder = translations.STRINGS.parent / "templates"
    missing = []
    for template in sorted(folder.rglob("*.html")):
        source = re.sub(r"{#.*?#}", "", template.read_text(encoding="utf-8"), flags=re.DOTALL)
        for text in re.findall(r"{%-?\s*trans\s*-?%}(.*?){%-?\s*endtrans\s*-?%}", source,
                               re.DOTALL):
            if text not in known:
                missing.append(f"{template.relative_to(folder)}: {text!r}")
        for text in re.findall(r"\b_\(\s*['\"](.+?)['\"]\s*\)", source):
            if text not in known:
                missing.append(f"{template.relative_to(folder)}: _({text!r})")
    assert missing == []


def test_the_watch_reports_a_failed_request(browser, server):  # noqa: F811
    """The test's own check: a page asking for a missing file is reported."""
    context = browser.new_context()
    page = context.new_page()
    watch = FailedRequests(page)
    page.goto(server.url + "/ogc/?f=html")
    with page.expect_response(lambda response: "no-such-file" in response.url):
        page.evaluate("() => fetch('/ogc/static/no-such-file.js').catch(() => null)")
    context.close()
    assert any(p.startswith("HTTP 404") and "no-such-file" in p for p in watch.problems)


def test_basemap_of_the_pages_is_the_live_dems_relief(server):
    """The maps' basemap URL stays the same from release to release and leads to the live DEM's
    relief tiles (a versioned URL in pygeoapi's config would outlive its version)."""
    answer = requests.get(server.url + "/ogc/basemap/6/44/23.png", timeout=30,
                          allow_redirects=False)
    assert answer.status_code == 302
    target = urllib.parse.urlsplit(answer.headers["Location"]).path
    assert re.fullmatch(r"/tiles/elevation/\d+/relief/6/44/23\.png", target), target
    tile = requests.get(server.url + target, timeout=30)
    assert tile.status_code == 200 and tile.headers["Content-Type"] == "image/png"


def test_pages_describe_the_release_published_after_start(scratch_home):
    """A dataset published while the server runs appears on the /ogc pages in every language
    the pages were already shown in, and the basemap follows the DEM once it is live (pygeoapi
    renders its pages with the first config it translated for a language)."""
    work = scratch_home.parent / "work"
    taza("publish", str(copy_dataset("airports", work)), home=scratch_home)
    running = start_server(scratch_home, workers=1)
    try:
        for language in LANGUAGES:
            first = running.get(f"/ogc/?f=html&lang={language}")
            assert first.status_code == 200 and "/collections/elevation?" not in first.text
        blank = running.get("/ogc/basemap/6/44/23.png", allow_redirects=False)
        assert blank.status_code == 200 and blank.headers["Content-Type"] == "image/png"
        taza("publish", str(copy_dataset("elevation", work)), home=scratch_home)
        deadline = time.monotonic() + 30
        while "/collections/elevation?" not in running.get("/ogc/?f=html").text:
            assert time.monotonic() < deadline, "the new release never reached the page"
            time.sleep(0.5)
        for language in LANGUAGES:
            page = running.get(f"/ogc/?f=html&lang={language}").text
            assert "/collections/elevation?f=html" in page, language
        basemap = running.get("/ogc/basemap/6/44/23.png", allow_redirects=False)
        assert basemap.status_code == 302
        assert "/tiles/elevation/" in basemap.headers["Location"]
    finally:
        stop_server(running)


@pytest.mark.parametrize("language", ["ky", "en"])
def test_records_search_page_finds_a_dataset_and_its_forms(browser, server, language):  # noqa: F811
    """OGC API - Records in HTML (issue 15): the search form finds a dataset by a word in the
    page's language, and its record page links every form of it, labelled in that language."""
    word = {"ky": "аэропорттор", "en": "airport"}[language]

    def check(page: Page) -> None:
        page.get_by_label(words("ogc.search_text", language)).fill(word)
        page.get_by_role("button", name=words("ogc.search", language)).click()
        page.wait_for_load_state("networkidle")
        expect(page.locator(".records-matched")).to_have_text("1")
        page.locator("a.record-link").click()
        page.wait_for_load_state("networkidle")
        assert page.url.startswith(f"{server.url}/ogc/collections/metadata/items/airports?")
        expect(page.locator("html")).to_have_attribute("lang", language)
        for role, key in (("dcat", "ogc.link_dcat"), ("iso", "ogc.link_iso"),
                          ("ogc", "ogc.link_ogc"), ("stac", "ogc.link_stac"),
                          ("portal", "ogc.link_portal"), ("download", "ogc.link_download")):
            expect(page.locator(f".record-links [data-role={role}] a").first) \
                .to_contain_text(words(key, language))
        iso = page.locator(".record-links [data-role=iso] a").get_attribute("href")
        assert iso == f"{server.url}/datasets/airports/metadata.xml"

    open_page(browser, f"{server.url}/ogc/collections/metadata?f=html&lang={language}", check,
              language)


# Issyk-Kul and its shores: every class raster has several classes there, the lake among them.
CLASS_BBOX = "76.5,41.9,78.6,42.9"
ISSYK_KUL = (77.3, 42.45)  # lon, lat: open water in the land cover


def class_table(dataset_id: str) -> dict[int, dict]:
    """The dataset's class table as its manifest gives it: pixel value -> class."""
    manifest = yaml.safe_load((DATASETS / f"{dataset_id}.yaml").read_text("utf-8"))
    return {entry["value"]: entry for entry in manifest["raster"]["classes"]}


def rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]


def drawn_in(pixel: list[int], hex_colour: str) -> bool:
    """An opaque-enough pixel of the colour (within the rounding of a translucent image)."""
    return pixel[3] > 0 and all(abs(a - b) <= 2 for a, b in zip(pixel[:3], rgb(hex_colour),
                                                                 strict=True))


@pytest.mark.parametrize(("dataset_id", "language"), [
    ("land-cover", "ky"), ("climate-zones", "ru"), ("urbanisation", "en")])
def test_class_raster_coverage_page_draws_classes_with_their_legend(browser, server,  # noqa: F811
                                                                     dataset_id, language):
    """Was: class codes coloured on the value ramp, a ramp legend from the lowest to the
    highest code. Now each cell has its class's colour and the legend names the classes on
    the map, in the page's language, with the colours of the dataset's class table."""
    classes = class_table(dataset_id)
    coverage = server.get(f"/ogc/collections/{dataset_id}/coverage?f=json"
                          f"&bbox={CLASS_BBOX}").json()
    values = next(iter(coverage["ranges"].values()))["values"]
    present = [value for value in classes if value in set(values)]
    assert len(present) >= 2, present
    width = coverage["domain"]["axes"]["x"]["num"]
    path = f"/ogc/collections/{dataset_id}/coverage?f=html&bbox={CLASS_BBOX}&lang={language}"

    def check(page: Page) -> None:
        page.wait_for_function("() => window.ogcMap && document.querySelector("
                               "'img.ogc-coverage') && document.querySelector("
                               "'img.ogc-coverage').complete")
        rows = page.locator(".ogc-legend-class")
        expect(rows).to_have_count(len(present))
        for row, value in zip(rows.all(), present, strict=True):
            assert row.inner_text().strip() == classes[value]["title"][language]
            swatch = row.locator(".ogc-legend-swatch").evaluate(
                "(element) => getComputedStyle(element).backgroundColor")
            assert swatch == "rgb({}, {}, {})".format(*rgb(classes[value]["colour"]))
        # The drawn grid, one image pixel per cell, north row first as in the CoverageJSON.
        pixels = page.evaluate("""() => {
            const image = document.querySelector('img.ogc-coverage');
            const canvas = document.createElement('canvas');
            canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
            const context = canvas.getContext('2d');
            context.drawImage(image, 0, 0);
            return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data);
        }""")
        assert len(pixels) == 4 * len(values)
        for cell, value in enumerate(values):
            drawn = pixels[4 * cell:4 * cell + 4]
            if value is None:
                assert drawn[3] == 0, (cell, drawn)
            else:
                assert drawn_in(drawn, classes[value]["colour"]), (cell, value, drawn)
        if dataset_id == "land-cover":  # a known place: the lake is water, drawn as water
            x, y = coverage["domain"]["axes"]["x"], coverage["domain"]["axes"]["y"]
            col = round((ISSYK_KUL[0] - x["start"]) / ((x["stop"] - x["start"]) / (x["num"] - 1)))
            row = round((ISSYK_KUL[1] - y["start"]) / ((y["stop"] - y["start"]) / (y["num"] - 1)))
            cell = row * width + col
            assert classes[values[cell]]["name"] == "water"
            assert drawn_in(pixels[4 * cell:4 * cell + 4], classes[values[cell]]["colour"])

    open_page(browser, server.url + path, check, language)
