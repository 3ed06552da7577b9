"""The investor portal in a real browser: Debian's Chromium driven by Playwright.

Every test fails on a console error, an uncaught exception, a Content-Security-Policy violation
or a request to any host other than 127.0.0.1. The server's policy allows no eval, so waits
take functions ("() => ..."), which Playwright calls without eval, never bare expressions.
Screenshots go to tests/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from catalog.portal.i18n import strings
from catalog.sources.findings import finding_texts
from catalog.stewards.report import TEXTS_FILE as REPORT_TEXTS
from tests.conftest import DATASETS, SAMPLE_IDS, start_server, stop_server, taza
from tests.stewards_support import make_manifest, polygon_features, write_geojson

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/install-system-deps"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# Injected by the browser before any page script (not subject to the page's policy).
REPORT_CSP_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) =>
  window.reportCspViolation(`${event.violatedDirective} refused ${event.blockedURI || "inline"}`
                            + ` in ${event.sourceFile}:${event.lineNumber}`));"""


class Watch:
    """What a page did wrong: console errors (CSP refusals in workers land there too), page
    errors, Content-Security-Policy violations, requests leaving 127.0.0.1. A test that
    provokes a refusal on purpose names it (allow_failed_load): only that one is let through."""

    def __init__(self, page: Page):
        self.problems: list[str] = []
        self.expected_failures: list[tuple[str, str]] = []
        page.expose_function("reportCspViolation",
                             lambda text: self.problems.append(f"CSP violation: {text}"))
        page.add_init_script(REPORT_CSP_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("request", self._request)

    def _console(self, message) -> None:
        if message.type == "error" and not self._expected(message):
            self.problems.append(f"console error: {message.text} ({message.location})")

    def _expected(self, message) -> bool:
        url = message.location.get("url", "")
        return message.text.startswith("Failed to load resource") and any(
            path in url and reason in message.text for path, reason in self.expected_failures)

    def _request(self, request) -> None:
        url = urllib.parse.urlsplit(request.url)
        if url.scheme in ("data", "blob"):
            return
        if url.hostname != "127.0.0.1":
            self.problems.append(f"request to another host: {request.url}")


WATCHES: dict[Page, Watch] = {}


def allow_failed_load(page: Page, path: str, reason: str) -> None:
    """Let a failed request the test provokes on purpose (its path, the status or network
    error Chromium logs) through the page's console check."""
    WATCHES[page].expected_failures.append((path, reason))


@pytest.fixture()
def page(browser: Browser, request) -> Iterator[Page]:
    size = getattr(request, "param", {"width": 1280, "height": 800})
    context = browser.new_context(viewport=size, accept_downloads=True, locale="en-GB")
    opened = context.new_page()
    watch = Watch(opened)
    WATCHES[opened] = watch
    opened.set_default_timeout(20_000)
    yield opened
    context.close()
    WATCHES.pop(opened)
    assert not watch.problems, "\n".join(watch.problems)


def open_portal(page: Page, server, fragment: str = "") -> None:
    page.goto(f"{server.url}/{fragment}")
    page.wait_for_function("() => document.body?.dataset.mapReady === 'true'")
    wait_for_map(page)


def wait_for_map(page: Page) -> None:
    """Until MapLibre has loaded every tile it asked for (its 'idle' state)."""
    page.wait_for_function("() => window.portal.map.loaded() && window.portal.map.areTilesLoaded()"
                           " && !window.portal.map.isMoving()")
    page.wait_for_timeout(300)


def screenshot(page: Page, name: str) -> np.ndarray:
    """Save a screenshot to tests/artifacts and return the map area's pixels (RGB)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"portal-{name}.png")
    data = page.locator("#map").screenshot() if page.locator("#map").count() else page.screenshot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(data) as memory, memory.open() as image:
            return image.read()[:3]


def test_every_layer_turns_on_and_the_map_is_drawn(page, server):
    tiles: list[str] = []
    page.on("response", lambda r: tiles.append(r.url) if "/tiles/" in r.url and r.ok else None)
    open_portal(page, server)
    # The basemap alone: relief with tints and hillshade, not a blank canvas.
    pixels = screenshot(page, "basemap")
    assert pixels.std() > 20 and np.unique(pixels.reshape(3, -1), axis=1).shape[1] > 500
    for dataset_id in SAMPLE_IDS:
        page.check(f"#toggle-{dataset_id}")
    wait_for_map(page)
    visible = page.evaluate("""() => window.portal.layers.map(l => [l.id,
        window.portal.map.getStyle().layers.filter(s => s.source === l.id)
          .every(s => (s.layout || {}).visibility !== 'none')])""")
    assert dict(visible) == dict.fromkeys(SAMPLE_IDS, True)
    assert any(u.endswith(".mvt") for u in tiles) and any("/values/" in u for u in tiles)
    # Every legend is drawn and the URL names every layer (the view can be shared).
    for dataset_id in SAMPLE_IDS:
        assert page.locator(f'[data-legend="{dataset_id}"] > *').count() > 0
    layers = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).fragment)["layers"][0]
    assert {part.split("@")[0] for part in layers.split(",")} == set(SAMPLE_IDS)
    pixels = screenshot(page, "all-layers")
    assert pixels.std() > 20


def test_the_basemap_draws_lakes_as_water(page, server):
    open_portal(page, server, "?lang=en#map=8.00/42.4500/77.3000")
    wait_for_map(page)
    centre = page.evaluate("""() => {
        const p = window.portal.map.project([77.3, 42.45]);
        return [p.x, p.y, window.portal.map.queryRenderedFeatures(p, {layers: ['basemap-water']})
                  .map(f => f.properties.lake_id)];
    }""")
    assert centre[2] == ["issyk-kul"]
    pixels = screenshot(page, "basemap-water")
    red, green, blue = pixels[:, int(centre[1]), int(centre[0])]
    assert (red, green, blue) == (0x9c, 0xc3, 0xe4)  # the water colour, not relief tints


def test_a_shared_url_restores_view_layers_and_opacity(page, server):
    open_portal(page, server, "?lang=en#map=8.00/42.5000/75.0000&layers=slope@40,airports")
    state = page.evaluate("""() => ({zoom: window.portal.map.getZoom(),
        center: window.portal.map.getCenter(),
        on: window.portal.layers.filter(l => l.visible).map(l => [l.id, l.opacity])})""")
    assert state["zoom"] == pytest.approx(8, abs=0.01)
    assert state["center"]["lat"] == pytest.approx(42.5, abs=1e-3)
    assert sorted(state["on"]) == [["airports", 90], ["slope", 40]]
    expect(page.locator("#toggle-slope")).to_be_checked()
    expect(page.locator('.layer-opacity[data-layer="slope"]')).to_have_value("40")
    page.locator('.layer-opacity[data-layer="slope"]').fill("70")
    page.wait_for_function("() => location.hash.includes('slope@70')")


def test_popup_shows_the_attributes_of_a_clicked_feature(page, server):
    open_portal(page, server, "#map=10.00/42.8700/74.6000&layers=settlements,elevation")
    bishkek = page.evaluate("""async () => {
        const url = '/ogc/collections/settlements/items?f=json&limit=1000';
        const items = await (await fetch(url)).json();
        const f = items.features.find(f => f.properties.name === 'Bishkek');
        const p = window.portal.map.project(f.geometry.coordinates);
        return {x: p.x, y: p.y, id: f.properties.geonames_id, population: f.properties.population};
    }""")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + bishkek["x"], box["y"] + bishkek["y"])
    popup = page.locator(".maplibregl-popup")
    expect(popup).to_contain_text("Bishkek")
    # Labels in words, not field names (issue 17).
    expect(popup).to_contain_text("Population (people)")
    assert "population" not in popup.locator("th").all_text_contents()
    # Identifiers print as they are; quantities get digit grouping.
    id_cell = popup.locator('tr[data-field="geonames_id"]').locator("td")
    expect(id_cell).to_have_text(str(bishkek["id"]))
    expect(popup.locator('tr[data-field="population"]').locator("td")).to_have_text(
        f"{bishkek['population']:,}")
    expect(popup.locator(".raster-value")).to_have_text(re.compile(r"^\d[\d,.\s]* m$"))
    screenshot(page, "popup")


def test_class_legends_and_a_time_step_in_russian(page, server):
    """The class rasters' legends list their classes in the page's language; a time series
    offers its months and draws the one chosen; its popup shows that month's value."""
    tiles: list[str] = []
    page.on("response", lambda r: tiles.append(r.url) if "/tiles/" in r.url and r.ok else None)
    open_portal(page, server, "?lang=ru#map=9.00/42.8700/74.6000"
                              "&layers=land-cover,urbanisation,temperature-normals")
    legend = page.locator('[data-legend="land-cover"] li')
    expect(legend).to_have_count(17)
    expect(page.locator('[data-legend="land-cover"]')).to_contain_text("Водные объекты")
    expect(page.locator('[data-legend="urbanisation"]')).to_contain_text("Городской центр")
    step = page.locator('.layer-step[data-layer="temperature-normals"]')
    expect(step.locator("option")).to_have_count(12)
    expect(step.locator("option").nth(6)).to_have_text(re.compile("^июль$", re.IGNORECASE))
    step.select_option("7")
    wait_for_map(page)
    assert any("/temperature-normals/" in u and "/values-7/" in u for u in tiles)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    popup = page.locator(".maplibregl-popup")
    expect(popup).to_contain_text("Городской центр")  # the urbanisation class under Bishkek
    values = popup.locator(".raster-value").all_text_contents()
    assert any(re.fullmatch(r"18,4 degC", v.replace("\u00a0", " ")) for v in values), values
    screenshot(page, "classes-and-time-step")


def test_search_with_free_text_extent_and_facets(page, server):
    open_portal(page, server)
    page.click("#tab-search")
    page.fill("#search-q", "airport")
    page.click("#search-form button[type=submit]")
    results = page.locator("#search-results > li")
    expect(results.first).to_be_visible()
    assert "airports" in results.evaluate_all("nodes => nodes.map(n => n.dataset.collection)")
    # No text, whole catalogue: the theme facet narrows the list to that theme's datasets.
    page.fill("#search-q", "")
    page.click("#search-form button[type=submit]")
    expect(results).to_have_count(len(SAMPLE_IDS))
    page.click('#search-facets button[data-facet="theme"][data-value="land"]')
    land = [d for d in SAMPLE_IDS if yaml.safe_load(
        (DATASETS / f"{d}.yaml").read_text(encoding="utf-8"))["theme"] == "land"]
    expect(results).to_have_count(len(land))
    screenshot(page, "search")
    # Map extent: a view far from Kyrgyzstan finds nothing.
    page.evaluate("window.portal.map.jumpTo({center: [58, 33], zoom: 8})")
    page.check("#search-extent")
    expect(page.locator("#search-status")).to_have_text(re.compile("Nothing found"))


def test_filter_builder_counts_match_the_api(page, server):
    open_portal(page, server)
    page.click("#tab-filter")
    page.select_option("#filter-layer", "settlements")
    condition = page.locator("#filter-conditions > li").first
    condition.locator("select.property").select_option("population")
    condition.locator("select.operator").select_option("gt")
    condition.locator("input.value").fill("20000")
    page.click("#filter-add")
    second = page.locator("#filter-conditions > li").nth(1)
    second.locator("select.property").select_option("region_en")
    second.locator("select.operator").select_option("like")
    second.locator("input.value").fill("osh")
    cql = page.locator("#filter-cql").text_content()
    assert cql == "(population > 20000) AND (CASEI(region_en) LIKE CASEI('%osh%'))"
    page.click("#filter-apply")
    count = page.locator("#filter-count")
    expect(count).to_be_visible()
    shown = int(count.get_attribute("data-count"))
    api = server.get("/ogc/collections/settlements/items",
                     params={"f": "json", "limit": 1, "filter": cql}).json()
    assert shown == api["numberMatched"] > 0
    expect(page.locator("#filter-results > li")).to_have_count(shown)
    wait_for_map(page)
    screenshot(page, "filter")
    # The download link carries the same filter.
    csv = page.locator("#filter-downloads").get_by_role("link", name="CSV", exact=True)
    href = csv.get_attribute("href")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["filter"] == [cql]
    # No downloads are offered for 0 matches.
    condition.locator("input.value").fill("100000000")
    page.click("#filter-apply")
    expect(count).to_have_attribute("data-count", "0")
    expect(page.locator("#filter-downloads")).to_be_hidden()


def test_language_switch_relabels_interface_and_metadata(page, server):
    open_portal(page, server)
    page.click('.lang-switch a[data-lang="ru"]')
    expect(page.locator("#tab-layers")).to_have_text("Слои")
    expect(page.locator('label[for="toggle-airports"]')).to_have_text(
        "Аэропорты и аэродромы Кыргызстана")
    assert "lang=ru" in page.url
    page.click('.lang-switch a[data-lang="ky"]')
    expect(page.locator("#tab-layers")).to_have_text("Катмарлар")
    expect(page.locator("#theme-land h2")).to_have_text("Жер жана рельеф")
    screenshot(page, "kyrgyz")
    page.reload()
    page.wait_for_function("() => document.body?.dataset.mapReady === 'true'")
    expect(page.locator("html")).to_have_attribute("lang", "ky")
    expect(page.locator("#tab-filter")).to_have_text("Сүзгүч")


def test_dataset_pages_and_downloads_open_in_gis_libraries(page, server, tmp_path):
    open_portal(page, server)
    page.click('.lang-switch a[data-lang="ru"]')
    page.click("#dataset-airports .layer-details")
    expect(page.locator("h1")).to_have_text("Аэропорты и аэродромы Кыргызстана")
    expect(page.locator("#description")).to_contain_text("MIT")
    expect(page.locator("#connect")).to_contain_text(f"{server.url}/ogc")
    expect(page.locator("#versions")).to_contain_text("1")
    screenshot(page, "dataset-airports")
    with page.expect_download() as download:
        page.click('a.download[href$="airports.gpkg"]')
    path = tmp_path / "airports.gpkg"
    download.value.save_as(path)
    with fiona.open(path) as layer:
        assert len(layer) == 17
    with page.expect_download() as download:
        page.click("#csv-download")
    csv_path = tmp_path / "airports.csv"
    download.value.save_as(csv_path)
    assert len(csv_path.read_text(encoding="utf-8").strip().splitlines()) == 18
    # A raster's page offers the COG, and the modelled layer says so.
    page.goto(f"{server.url}/datasets/elevation?lang=en")
    with page.expect_download() as download:
        page.click('a.download[href$="elevation.tif"]')
    tif = tmp_path / "elevation.tif"
    download.value.save_as(tif)
    with rasterio.open(tif) as raster:
        assert raster.crs.to_epsg() == 4326 and raster.overviews(1)
    page.goto(f"{server.url}/datasets/mobile-coverage?lang=en")
    expect(page.locator("#nature-label")).to_contain_text("modelled estimate")


@pytest.mark.parametrize("page", [{"width": 390, "height": 844}], indirect=True)
def test_phone_sized_screen_keeps_map_and_panel_usable(page, server):
    open_portal(page, server)
    panel = page.locator("#panel")
    expect(panel).to_be_hidden()
    page.click(".panel-toggle")
    expect(panel).to_be_visible()
    page.check("#toggle-settlements")
    wait_for_map(page)
    pixels = screenshot(page, "phone")
    assert pixels.std() > 20


def test_keyboard_alone_turns_a_layer_on_and_opens_a_popup(page, server):
    open_portal(page, server, "#map=9.00/42.8747/74.5698")
    page.focus("#toggle-airports")
    page.keyboard.press("Space")
    expect(page.locator("#toggle-airports")).to_be_checked()
    page.focus("#tab-layers")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-search")).to_be_focused()
    expect(page.locator("#pane-search")).to_be_visible()
    page.click('.lang-switch a[data-lang="en"]')
    # Enter on the focused map opens the popup at its centre (Bishkek's airport is near it).
    page.evaluate("window.portal.map.jumpTo({center: [74.4776, 43.0613], zoom: 11})")
    wait_for_map(page)
    page.focus(".maplibregl-canvas")
    page.keyboard.press("Enter")
    expect(page.locator(".maplibregl-popup")).to_contain_text("UCFM")


@pytest.fixture(scope="module")
def stewards_server(tmp_path_factory):
    """A server on its own empty catalog home: a steward with a one-time link to set her
    password (as `taza users add` prints it), a steward and a reviewer with passwords."""
    home = tmp_path_factory.mktemp("portal-stewards")
    running = start_server(home)
    added = taza("users", "add", "alice", "--role", "steward", "--org", "ministry-a",
                 "--public-url", running.url, home=home).stdout
    link = re.search(r"password link: (\S+)", added).group(1)
    for name, role, organisation in (("anna", "steward", "ministry-a"),
                                     ("rita", "reviewer", None)):
        taza("users", "add", name, "--role", role, "--password-stdin",
             *(["--org", organisation] if organisation else []), home=home,
             input=f"{name}-password-1\n")
    yield running, link
    stop_server(running)


def sign_in(page: Page, name: str, password: str) -> None:
    page.fill("#signin-name", name)
    page.fill("#signin-password", password)
    page.click("#signin button[type=submit]")


def test_steward_sets_a_password_signs_in_and_out_and_never_sees_a_token_field(
        page, stewards_server):
    server, link = stewards_server
    page.goto(link)
    expect(page.locator("#set-password")).to_be_visible()
    assert "set-password" not in page.url  # the code left the address bar at once
    page.fill("#new-password", "alices-password")
    page.fill("#repeat-password", "alices-password")
    page.click("#set-password button[type=submit]")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#signin-status")).to_have_text("Your password is set: now sign in")
    expect(page.locator("#signin-name")).to_have_value("alice")
    sign_in(page, "alice", "alices-password")
    expect(page.locator("#who-text")).to_contain_text("alice")
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("#datasets-box")).to_be_visible()
    assert page.locator("input#token, input[name=token]").count() == 0
    # A reload keeps the session (the HttpOnly cookie); the page cannot read the cookie.
    page.reload()
    expect(page.locator("#who-text")).to_contain_text("alice")
    assert "taza_session" not in page.evaluate("document.cookie")
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#who")).to_be_hidden()
    expect(page.locator("#datasets-box")).to_be_hidden()
    assert page.evaluate("fetch('/api/session').then((r) => r.json())")["signed_in"] is False
    # The link, used once, is refused (400, by its messageCode) in the page's words.
    allow_failed_load(page, "/api/password", "400")
    page.goto("about:blank")  # the page reads the link's #fragment once, when it loads
    page.goto(link)
    page.fill("#new-password", "alices-password-2")
    page.fill("#repeat-password", "alices-password-2")
    page.click("#set-password button[type=submit]")
    expect(page.locator("#signin-status")).to_have_text(words("st.link_invalid", "en"))


BOWTIE = {"type": "Polygon", "coordinates": [[[74, 42], [75, 43], [75, 42], [74, 43], [74, 42]]]}
# Interface strings: any control or status showing the English text of a key whose
# translation differs, or a raw key, was left untranslated.
INTERFACE_TEXT = ("label > span, legend, button, summary, h1, h2, h3, dt, th, td, option, "
                  ".status, .meta, .licence-allows")


def assert_translated(page: Page, language: str) -> None:
    english = {entry["en"] for entry in strings().values() if entry[language] != entry["en"]}
    texts = page.locator(f"#main :is({INTERFACE_TEXT})").evaluate_all(
        "(nodes) => nodes.filter((n) => n.offsetParent !== null).map((n) => n.textContent.trim())")
    left = [text for text in texts
            if text in english or re.fullmatch(r"(st|rv|pb|steward)[._]\w+", text)]
    assert not left, f"untranslated in {language}: {left}"


def full_screenshot(page: Page, folder: Path, name: str) -> None:
    """The whole page, in the test's tmp dir and in tests/artifacts, for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    for target in (folder / f"{name}.png", ARTIFACTS / f"portal-{name}.png"):
        page.screenshot(path=target, full_page=True)


def fill_manifest_form(page: Page, manifest: dict) -> None:
    form = page.locator("#manifest-form")
    for key in ("title", "description"):
        for lang, text in manifest[key].items():
            form.locator(f'[name="{key}.{lang}"]').fill(text)
    for lang, words in manifest["keywords"].items():
        form.locator(f'[name="keywords.{lang}"]').fill(", ".join(words))
    for key in ("theme", "nature", "update_frequency"):
        form.locator(f'[name="{key}"]').select_option(manifest[key])
    form.locator('[name="licence-choice"]').select_option("CC-BY-4.0")
    form.locator('[name="attribution"]').fill(manifest["attribution"])
    for part in ("name", "organisation", "email"):
        form.locator(f'[name="steward.{part}"]').fill(manifest["steward"][part])
    form.locator('[name="provenance.method"]').fill(manifest["provenance"]["method"])
    for part in ("title", "href", "licence"):
        form.locator(f'[name="provenance.derived_from.0.{part}"]').fill(
            manifest["provenance"]["derived_from"][0][part])
    form.locator('[name="temporal_extent.start"]').fill(str(manifest["temporal_extent"]["start"]))


def assert_report_page(page: Page, server, folder: Path, language: str, dataset_id: str) -> None:
    """The report as a page (the API's HTML), opened from the page's link: its words and
    findings in the page's language, no server path, internal flag or API parameter."""
    link = page.locator("#report a[target=_blank]")
    expect(link).to_have_attribute("href", f"/api/datasets/{dataset_id}/draft/report"
                                   f"?f=html&lang={language}")
    report = page.context.new_page()
    report.goto(server.url + link.get_attribute("href"))
    texts = report_texts()
    expect(report.locator("h1")).to_have_text(
        texts["title"][language].replace("{dataset}", dataset_id))
    expect(report.locator("tr.repaired td").first).to_have_text(texts["status_repaired"][language])
    expect(report.locator("tr.repaired")).to_contain_text(
        finding_texts()["geometry_repaired"][language].split("(")[0])
    expect(report.locator("#upload")).to_contain_text(texts["feature_count"][language])
    text = report.locator("body").inner_text()
    assert not any(word in text for word in ("repair=", "/api/", "/tmp", "flags=")), text
    if language != "en":
        english = [entry["en"] for entry in texts.values()
                   if entry["en"] != entry[language] and "{" not in entry["en"]]
        assert not [word for word in english if word in text], text
    ARTIFACTS.mkdir(exist_ok=True)
    for target in (folder / f"{language}-report-page.png",
                   ARTIFACTS / f"portal-{language}-report-page.png"):
        report.screenshot(path=target, full_page=True)
    report.close()


def report_texts() -> dict:
    return yaml.safe_load(REPORT_TEXTS.read_text(encoding="utf-8"))


PREVIEW_COLOUR = np.array([214, 51, 108])  # steward-preview.js COLOUR


def assert_preview_drawn(scope, shown: str) -> None:
    """The report's map preview finished drawing the upload's features in its colour."""
    preview = scope.locator(".preview-map")
    expect(preview).to_have_attribute("data-preview-state", "drawn", timeout=30_000)
    expect(preview).to_have_attribute("data-preview-shown", shown)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(preview.screenshot()) as memory, memory.open() as image:
            pixels = np.moveaxis(image.read()[:3], 0, -1).astype(int)
    outlined = np.abs(pixels - PREVIEW_COLOUR).sum(axis=-1) < 60
    assert outlined.sum() > 100, f"{outlined.sum()} pixels of the preview's colour"


def words(key: str, language: str, **values) -> str:
    """The page's text for a strings.yml key in `language`, as i18n.js fills it."""
    text = strings()[key][language]
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), text)


def register(page: Page, server, language: str, name: str) -> None:
    """A new steward registers as the service offers it: an admin adds the account (`taza
    users add` prints a one-time link), the steward opens the link and sets a password."""
    added = taza("users", "add", name, "--role", "steward", "--org", "ministry-a",
                 "--public-url", server.url, home=server.home).stdout
    link = re.search(r"password link: (\S+)", added).group(1)
    page.goto(link.replace("/stewards", f"/stewards?lang={language}", 1))
    page.fill("#new-password", f"{name}-password-1")
    page.fill("#repeat-password", f"{name}-password-1")
    page.click("#set-password button[type=submit]")
    expect(page.locator("#signin-status")).to_have_text(words("st.password_set", language))
    sign_in(page, name, f"{name}-password-1")
    expect(page.locator("#who-text")).to_contain_text(name)


@pytest.mark.parametrize("language", ["ky", "ru", "en"])
def test_steward_registers_fills_uploads_repairs_submits_reviewer_publishes_steward_rolls_back(
        page, stewards_server, tmp_path, language):
    """Issue 17's steward journey, whole, in one language: screenshots of every step in
    tmp_path (and tests/artifacts/portal-<language>-<step>.png)."""
    server, _ = stewards_server
    steward, dataset_id = f"aiym-{language}", f"parcels-{language}"
    print(f"screenshots: {tmp_path} and {ARTIFACTS}/portal-{language}-*.png")
    step = iter(range(1, 100))

    def shot(name: str) -> None:
        assert_translated(page, language)
        full_screenshot(page, tmp_path, f"{language}-{next(step):02d}-{name}")

    # Refusals this journey provokes on purpose (the page shows each one in its own words):
    # a manifest and an upload with findings (422), an upload cut off by the network, a
    # dataset id taken already (409).
    for path, reason in (("/draft/manifest", "422"), ("/draft/source", "422"),
                         ("/draft/source", "net::ERR_FAILED"), ("/api/datasets", "409")):
        allow_failed_load(page, path, reason)
    register(page, server, language, steward)
    shot("registered")
    # A bad id is refused in the page's own words before anything is sent.
    page.fill("#new-id", "Parcels_2024")
    page.click("#new-dataset button[type=submit]")
    expect(page.locator("#datasets-status")).to_have_text(words("steward_id_invalid", language))
    page.fill("#new-id", dataset_id)
    page.click("#new-dataset button[type=submit]")
    expect(page.locator("#draft-title")).to_contain_text(dataset_id)
    # The server's refusal (the id is taken now: 409) is said in the page's language too, from
    # its messageCode and params, not in the English description.
    page.fill("#new-id", dataset_id)
    page.click("#new-dataset button[type=submit]")
    taken = words("problem.dataset_exists", language, id=dataset_id, organisation="ministry-a")
    expect(page.locator("#datasets-status")).to_have_text(taken)
    shot("server-refusal")
    # The form, built from the manifest's schema: the English title left out is a finding.
    manifest = make_manifest(dataset_id, licence="CC-BY-4.0")
    without_english = {lang: text for lang, text in manifest["title"].items() if lang != "en"}
    fill_manifest_form(page, {**manifest, "title": without_english})
    expect(page.locator(".licence-allows")).to_have_text(
        words("steward_licence_allows_CC-BY-4.0", language))
    page.click("#manifest-form button[type=submit]")
    missing = page.locator("#report tr", has_text="title.en")
    expect(missing.locator(".finding-text")).to_have_text(
        finding_texts()["manifest_missing_english"][language])
    shot("form-finding")
    page.locator('[name="title.en"]').fill(manifest["title"]["en"])
    page.click("#manifest-form button[type=submit]")
    expect(page.locator("#report tr", has_text="title.en")).to_have_count(0)
    expect(page.locator("#report")).to_contain_text(finding_texts()["no_source"][language])
    # The YAML is the same manifest, still editable as text.
    assert "title:" in page.locator("#manifest").input_value()
    # Upload: a failure offers a restart; the restart shows progress with the buttons disabled.
    source = write_geojson(tmp_path / "parcels.geojson",
                           polygon_features(4) + [{**polygon_features(1)[0], "geometry": BOWTIE}])
    page.set_input_files("#source", str(source))
    page.route("**/draft/source*", lambda route: route.abort())
    page.click("#source-form button[type=submit]")
    expect(page.locator("#upload-retry")).to_be_visible()
    failed = words("steward_upload_failed", language, reason="")
    expect(page.locator("#upload-status")).to_contain_text(failed.strip())
    shot("upload-failed")
    page.unroute("**/draft/source*")
    # Half the file reached the server before a cut (sent here as the page would have, with
    # the fingerprint computed here as resume.py defines it): the restart, whose page computes
    # the same fingerprint with crypto.subtle, resumes from there instead of sending it all
    # again (a different fingerprint would make it start from byte 0).
    data = source.read_bytes()
    digests = b"".join(hashlib.sha256(data[at:at + (8 << 20)]).digest()
                       for at in range(0, len(data), 8 << 20))
    fingerprint = f"sha256-blocks:{hashlib.sha256(digests).hexdigest()}"
    half = page.evaluate("""async ([dataset, fingerprint]) => {
      const file = document.getElementById("source").files[0];
      const half = Math.floor(file.size / 2);
      const session = await (await fetch("/api/session")).json();
      const answer = await fetch(`/api/datasets/${dataset}/draft/source?filename=${file.name}`
        + `&fingerprint=${fingerprint}`,
        { method: "PUT", body: file.slice(0, half), headers: { "X-CSRF-Token": session.csrf_token,
          "Content-Range": `bytes 0-${half - 1}/${file.size}`,
          "Content-Type": "application/octet-stream" } });
      return answer.status === 202 ? half : -answer.status; }""", [dataset_id, fingerprint])
    assert half > 0, half
    page.evaluate("""() => { window.uploadLog = [];
      const bar = document.getElementById("upload-progress");
      new MutationObserver(() => window.uploadLog.push({ value: bar.value, state: bar.dataset.state,
        locked: document.querySelector("#source-form button[type=submit]").disabled }))
        .observe(bar, { attributes: true }); }""")
    page.click("#upload-retry")
    expect(page.locator("#upload-progress")).to_have_attribute("data-state", "done",
                                                               timeout=30_000)
    expect(page.locator("#upload-progress")).to_have_attribute("data-resumed-from", str(half))
    log = page.evaluate("() => window.uploadLog")
    assert any(entry["value"] == 100 and entry["locked"] for entry in log), log
    assert all(entry["locked"] for entry in log if entry["state"] == "uploading"), log
    assert not page.locator("#source-form button[type=submit]").is_disabled()
    # The report: the data's facts and extent, the map preview, the finding in the page's
    # language and terms, a repair button.
    facts = page.locator("#report-facts")
    expect(facts.locator('dd[data-fact="steward_fact_count"]')).to_have_text("5")
    expect(facts.locator('dd[data-fact="steward_fact_geometry"]')).to_have_text("Polygon: 5")
    expect(facts.locator('dd[data-fact="steward_fact_fields"]')).to_contain_text("code")
    assert_preview_drawn(page.locator("#report"), "5")
    expect(facts.locator('dd[data-fact="steward_fact_extent"]')).to_have_text(
        "x 74 … 75, y 42 … 43 (EPSG:4326) · "
        + words("steward_extent_wgs84", language, west=74, east=75, south=42, north=43))
    expect(page.locator("#report .preview-note")).to_have_text(
        words("steward_preview_shown", language, shown=5, total=5))
    invalid = finding_texts()["invalid_geometry"][language].split("(")[0]
    expect(page.locator("#report tr.finding-blocking .finding-text")).to_contain_text(invalid)
    report_text = page.locator("#report").inner_text()
    assert not any(word in report_text for word in ("repair=", "/api/", "/tmp", "flags="))
    expect(page.locator("#report-verdict")).to_have_attribute("data-publishable", "false")
    shot("report-with-finding")
    page.click("#repair")  # the same file again, with repair=geometry
    repaired = finding_texts()["geometry_repaired"][language].split("(")[0]
    expect(page.locator("#report tr.finding-repaired .finding-text")).to_contain_text(
        repaired, timeout=30_000)
    expect(page.locator("#report-verdict")).to_have_attribute("data-publishable", "true")
    shot("repaired")
    assert_report_page(page, server, tmp_path, language, dataset_id)
    page.click("#submit-draft")
    expect(page.locator("#draft-state")).to_have_text(words("steward_state_submitted", language))
    shot("submitted")
    page.click("#signout")
    expect(page.locator("#who")).to_be_hidden()

    # The reviewer sees manifest, facts, preview and report, approves and publishes.
    page.goto(f"{server.url}/review?lang={language}")
    sign_in(page, "rita", "rita-password-1")
    item = page.locator(f'#queue li[data-dataset="{dataset_id}"]')
    expect(item.locator("#report-verdict")).to_have_attribute("data-publishable", "true")
    expect(item.locator(".manifest-text")).to_contain_text(f"id: {dataset_id}")
    expect(item.locator('#report-facts dd[data-fact="steward_fact_count"]')).to_have_text("5")
    assert_preview_drawn(item, "5")
    expect(item.locator("tr.finding-notice .finding-text")).to_have_text(
        finding_texts()["repaired_copy"][language])
    shot("review-queue")
    item.locator("button.approve").click()
    expect(item.locator(".status").last).to_contain_text(words("steward_state_approved", language))
    item.locator("button.publish").click()
    expect(item.locator("progress.publish-progress")).to_have_attribute("data-state", "succeeded",
                                                                        timeout=60_000)
    expect(item.locator(".publish-status")).to_contain_text(
        words("pb.succeeded", language, version=1))
    expect(item.locator(".publish-status a")).to_have_attribute(
        "href", f"/datasets/{dataset_id}?lang={language}")
    shot("published")
    page.click("#signout")

    # The steward: the dataset by title and state in words, the form starting from the
    # published manifest, the versions naming the reviewer who published; withdraw, then roll
    # back to version 1.
    page.goto(f"{server.url}/stewards?lang={language}")
    sign_in(page, steward, f"{steward}-password-1")
    entry = page.locator(f'#datasets li[data-dataset="{dataset_id}"]')
    expect(entry).to_contain_text(manifest["title"][language])
    expect(entry).to_contain_text(words("steward_live_version", language, version=1))
    entry.locator("button").click()
    expect(page.locator("#form-origin")).to_be_visible()
    expect(page.locator('[name="title.en"]')).to_have_value(manifest["title"]["en"])
    expect(page.locator('[name="licence-choice"]')).to_have_value("CC-BY-4.0")
    version = page.locator('#versions li[data-version="1"]')
    expect(version.locator(".published-by")).to_contain_text("rita")
    shot("versions")
    version.locator("button.withdraw").click()
    expect(page.locator("#versions-status")).to_have_text(words("steward_withdrawn", language))
    page.locator('#versions li[data-version="1"] button.rollback').click()
    expect(page.locator("#versions-status")).to_have_text(
        words("steward_rolled_back", language, version=1))
    expect(page.locator('#versions li[data-version="1"] button.withdraw')).to_be_visible()
    shot("rolled-back")


def test_the_stewards_page_sends_a_file_of_several_blocks_in_pieces_that_match_its_fingerprint(
        page, stewards_server, tmp_path):
    """The page's fingerprint (crypto.subtle over 8 MiB blocks) of a 17 MiB file is the one the
    server computes (catalog/stewards/resume.py): its three pieces arrive and the file is
    checked (a mismatch would answer 409 and the upload fail)."""
    server, _ = stewards_server
    register(page, server, "en", "blocks-steward")
    page.fill("#new-id", "three-blocks")
    page.click("#new-dataset button[type=submit]")
    expect(page.locator("#draft-title")).to_contain_text("three-blocks")
    data = np.random.default_rng(17).bytes((17 << 20) + 12345)
    source = tmp_path / "noise.geojson"
    source.write_bytes(data)
    digests = b"".join(hashlib.sha256(data[at:at + (8 << 20)]).digest()
                       for at in range(0, len(data), 8 << 20))
    fingerprint = f"sha256-blocks:{hashlib.sha256(digests).hexdigest()}"
    pieces = []
    page.on("request", lambda request: pieces.append(
        (request.headers.get("content-range"), urllib.parse.parse_qs(
            urllib.parse.urlsplit(request.url).query).get("fingerprint")))
        if "/draft/source" in request.url and request.method == "PUT" else None)
    allow_failed_load(page, "/draft/source", "422")  # random bytes: the check finds them bad
    page.set_input_files("#source", str(source))
    page.click("#source-form button[type=submit]")
    expect(page.locator("#upload-progress")).to_have_attribute("data-state", "done",
                                                               timeout=120_000)
    size = len(data)
    assert pieces == [(f"bytes 0-{(8 << 20) - 1}/{size}", [fingerprint]),
                      (f"bytes {8 << 20}-{(16 << 20) - 1}/{size}", [fingerprint]),
                      (f"bytes {16 << 20}-{size - 1}/{size}", [fingerprint])], pieces
