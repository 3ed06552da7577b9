"""The portal's Analysis tab in a real browser (Debian's Chromium via Playwright) against the
real server: site screening and coverage statistics through /ogc/processes, compared with
what the API answers directly for the same inputs.

As in test_portal.py, a test fails on any console error, page error or request to another host;
the only console error allowed is the one Chromium logs for a 400 a test provokes on purpose.
"""

from __future__ import annotations

import csv
import json
import re
import urllib.parse
from collections.abc import Iterator

import fiona
import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from catalog.portal import i18n
from tests.test_portal import Watch, browser, open_portal, screenshot, wait_for_map  # noqa: F401

SCREENING = "/ogc/processes/site-screening/execution"
COVERAGE = "/ogc/processes/coverage-statistics/execution"
RUN = 90_000  # ms to wait for a run: the machine is shared, a job may queue behind others
CRITERIA = {"max_slope_deg": 5, "coverage": "4G", "max_settlement_distance_km": 30,
            "min_settlement_population": 10000, "max_airport_distance_km": 100, "limit": 20}


class AnalysisWatch(Watch):
    """Watch, plus the 400 responses a test expects (Chromium logs each as a console error)."""

    def __init__(self, page: Page):
        self.expected_400: list[str] = []
        super().__init__(page)

    def _console(self, message) -> None:
        url = (message.location or {}).get("url", "")
        if (message.type == "error" and "status of 400" in message.text
                and any(url.endswith(path) for path in self.expected_400)):
            return
        super()._console(message)


@pytest.fixture()
def watched(browser: Browser, request) -> Iterator[tuple[Page, AnalysisWatch]]:  # noqa: F811
    size = getattr(request, "param", {"width": 1280, "height": 800})
    context = browser.new_context(viewport=size, accept_downloads=True, locale="en-GB")
    page = context.new_page()
    watch = AnalysisWatch(page)
    page.set_default_timeout(30_000)
    yield page, watch
    context.close()
    assert not watch.problems, "\n".join(watch.problems)


@pytest.fixture()
def page(watched) -> Page:
    return watched[0]


def api(server, path: str, inputs: dict) -> dict:
    response = requests.post(server.url + path, json={"inputs": inputs}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def open_analysis(page: Page, server, query: str = "?lang=en") -> None:
    open_portal(page, server, query)
    page.click("#tab-analysis")
    expect(page.locator("#analysis-form")).to_be_visible(timeout=RUN)
    # a prompt + the 8 units with a polygon (Osh City has none: it is not an area to pick)
    expect(page.locator("#analysis-region option")).to_have_count(9)


def fill_criteria(page: Page, criteria: dict) -> None:
    page.click("#analysis-form details summary")
    for name, value in criteria.items():
        field = page.locator(f'#analysis-form [name="{name}"]')
        if name == "coverage":
            field.select_option(value)
        else:
            field.fill(str(value))


def hash_params(page: Page) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).fragment))


def rendered(page: Page, layer: str, key: str) -> set:
    """Distinct values of `key` among the features MapLibre draws on `layer` in the view."""
    return set(page.evaluate(
        """([layer, key]) => window.portal.map.queryRenderedFeatures({layers: [layer]})
              .map(f => f.properties[key])""", [layer, key]))


def test_whole_country_screening_matches_the_api_and_downloads_open(page, server, tmp_path):
    sent: list[tuple[str, str | None]] = []
    page.on("request", lambda r: sent.append((r.url, r.headers.get("prefer"))))
    open_analysis(page, server)
    fill_criteria(page, CRITERIA)
    page.click("#analysis-run")
    count = page.locator("#screening-count")
    expect(count).to_be_visible(timeout=RUN)
    reference = api(server, SCREENING, CRITERIA)
    assert reference["numberMatched"] > reference["numberReturned"] == 20
    assert int(count.get_attribute("data-matched")) == reference["numberMatched"]
    assert int(count.get_attribute("data-returned")) == reference["numberReturned"]
    items = page.locator("#screening-results > li")
    expect(items).to_have_count(reference["numberReturned"])
    # The whole country is large: it ran as an asynchronous job, polled to its results.
    assert any(url.endswith(SCREENING) and prefer == "respond-async" for url, prefer in sent)
    assert any(re.search(r"/ogc/jobs/[\w-]+/results$", url) for url, _ in sent)
    # Same candidates, in the same order, with the values behind them.
    ranks = [int(r) for r in items.evaluate_all("nodes => nodes.map(n => n.dataset.rank)")]
    assert ranks == [f["properties"]["rank"] for f in reference["features"]]
    best = reference["features"][0]["properties"]
    expect(items.first).to_contain_text(best["settlement_name"])
    expect(items.first).to_contain_text(best["airport_name"])
    wait_for_map(page)
    assert rendered(page, "analysis-sites", "rank") == set(range(1, 21))
    screenshot(page, "analysis-screening")
    # A row zooms to its candidate and opens its popup.
    items.first.locator("button.candidate").click()
    popup = page.locator(".maplibregl-popup")
    expect(popup).to_contain_text("Candidate #1")
    expect(popup).to_contain_text(best["settlement_name"])
    wait_for_map(page)
    assert page.evaluate("window.portal.map.getZoom()") > 8
    assert rendered(page, "analysis-selected", "rank") == {1}
    screenshot(page, "analysis-candidate")
    # Downloads: the GeoJSON opens in fiona, the CSV has a row per candidate.
    with page.expect_download() as download:
        page.click("#download-geojson")
    path = tmp_path / "candidates.geojson"
    download.value.save_as(path)
    with fiona.open(path) as layer:
        features = list(layer)
    assert [f.properties["rank"] for f in features] == ranks
    assert features[0].geometry.type == "Polygon"
    assert features[0].properties["settlement_name"] == best["settlement_name"]
    with page.expect_download() as download:
        page.click("#download-csv")
    csv_path = tmp_path / "candidates.csv"
    download.value.save_as(csv_path)
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["rank"]) for r in rows] == ranks
    assert float(rows[0]["airport_distance_km"]) == best["airport_distance_km"]
    # The URL carries the run.
    params = hash_params(page)
    assert params["analysis"] == "screening" and params["area"] == "country"
    assert params["max_slope_deg"] == "5" and params["coverage"] == "4G"


def test_coverage_statistics_for_a_region_then_for_a_drawn_polygon(page, server, tmp_path):
    open_analysis(page, server)
    page.check('input[name="tool"][value="coverage"]')
    page.select_option("#analysis-region", "KG-C")
    page.click("#analysis-run")
    total = page.locator("#coverage-population-total")
    expect(total).to_be_visible(timeout=RUN)
    reference = api(server, COVERAGE, {"region": "KG-C", "include_regions": True})
    population = reference["table"]["area"]["population_total"]
    assert int(total.get_attribute("data-value")) == population
    expect(total).to_have_text(f"{population:,}")
    expect(page.locator("#coverage-title")).to_contain_text("Natural Earth 1:10m outline")
    # Per-region table (Osh City too, as a city) and the region outlines on the map.
    rows = page.locator("#coverage-regions tbody tr")
    expect(rows).to_have_count(len(reference["table"]["regions"]))
    for row in reference["table"]["regions"]:
        cell = page.locator(f'#coverage-regions tr[data-region="{row["region"]}"] td').first
        assert int(cell.get_attribute("data-value")) == row["population_total"]
    expect(page.locator("#analysis-results")).to_contain_text("Natural Earth 1:10m (generalised")
    expect(page.locator("#coverage-by-construction")).to_contain_text("true by construction")
    wait_for_map(page)
    assert "KG-C" in rendered(page, "analysis-regions-fill", "region")
    screenshot(page, "analysis-coverage-region")
    with page.expect_download() as download:
        page.click("#download-json")
    path = tmp_path / "coverage.json"
    download.value.save_as(path)
    assert json.loads(path.read_text(encoding="utf-8")) == reference["table"]

    # Draw a polygon around Bishkek with the mouse, closing it on its first corner.
    corners = [(74.3, 42.65), (75.0, 42.6), (75.05, 42.95), (74.35, 43.0)]
    page.evaluate("window.portal.map.jumpTo({center: [74.65, 42.8], zoom: 8})")
    wait_for_map(page)
    page.click("#draw-polygon")
    expect(page.locator("#draw-bar")).to_be_visible()
    box = page.locator("#map").bounding_box()
    for lon, lat in [*corners, corners[0]]:
        point = page.evaluate("c => window.portal.map.project(c)", [lon, lat])
        page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    expect(page.locator("#draw-bar")).to_be_hidden()
    expect(page.locator("#drawn-note")).to_have_text("(4 corners)")
    page.click("#analysis-run")
    expect(page.locator("#coverage-title")).to_have_text("Drawn on the map", timeout=RUN)
    area = hash_params(page)["area"]
    assert area.startswith("poly:")
    drawn = [tuple(map(float, pair.split(","))) for pair in area[5:].split(";")]
    flat = [value for corner in corners for value in corner]
    assert [v for corner in drawn for v in corner] == pytest.approx(flat, abs=0.01)  # the clicks
    polygon = {"type": "Polygon", "coordinates": [[*map(list, drawn), list(drawn[0])]]}
    drawn_reference = api(server, COVERAGE, {"area": polygon, "include_regions": True})
    expected = drawn_reference["table"]["area"]
    assert expected["settlements_total"] > 3  # Bishkek, Kant, ... are inside
    total = page.locator("#coverage-population-total")
    assert int(total.get_attribute("data-value")) == expected["population_total"]
    wait_for_map(page)
    screenshot(page, "analysis-coverage-drawn")
    # The language switch reloads the page in Kyrgyz (MapLibre's scale bar and buttons take
    # their words only when the map is made); the URL carries the drawn area, which runs again.
    page.click('.lang-switch a[data-lang="ky"]')
    expect(page.locator("#coverage-title")).to_have_text("Картада тартылган аймак", timeout=RUN)
    expect(page.locator("#coverage-area thead")).to_contain_text("конуштардын калкы")
    assert int(total.get_attribute("data-value")) == expected["population_total"]


def test_invalid_input_is_said_in_the_pages_language(watched, server):
    """The server's refusal carries a message code and params (its description stays English
    for API clients); the page says it from strings.yml with its own input labels and digits."""
    page, watch = watched
    watch.expected_400.append(SCREENING)
    open_analysis(page, server, "?lang=ru")
    fill_criteria(page, {"min_elevation_m": 3000, "max_elevation_m": 1000})
    response = requests.post(server.url + SCREENING, timeout=30, json={"inputs": {
        "region": "KG-T", "min_elevation_m": 3000, "max_elevation_m": 1000}})
    assert response.status_code == 400
    message = response.json()["description"]
    status = page.locator("#analysis-status")
    ru = i18n.translator("ru")
    def digits(number: int) -> str:  # the browser's own digits for Russian ("3 000")
        return page.evaluate("(n) => new Intl.NumberFormat('ru').format(n)", number)

    expected = ru("problem.range_order", low=ru("an.min_elevation"), low_value=digits(3000),
                  high=ru("an.max_elevation"), high_value=digits(1000))
    # The whole country runs as a job: its failed status carries the code too (said in
    # Russian; test_refusal_codes.py has more of failed jobs).
    page.click("#analysis-run")
    expect(status).to_have_text(f"{ru('an.failed')}: {expected}", timeout=RUN)
    assert message not in status.text_content()
    # A region runs synchronously: the server answers 400 with a code, said in Russian.
    page.select_option("#analysis-region", "KG-T")
    page.click("#analysis-run")
    expect(status).to_have_text(f"{ru('an.error')}: {expected}", timeout=RUN)
    assert message not in status.text_content()
    expect(page.locator("#an-min_elevation_m")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#an-max_elevation_m")).to_have_attribute("aria-invalid", "true")
    assert "analysis=" not in page.url  # a failed run is not written into the URL
    screenshot(page, "analysis-error-ru")
    # In Kyrgyz: a slope the server refuses as out of range.
    open_analysis(page, server, "?lang=ky")
    fill_criteria(page, {"max_slope_deg": 120})
    page.select_option("#analysis-region", "KG-T")
    page.click("#analysis-run")
    ky = i18n.translator("ky")
    expected = ky("problem.out_of_range", name=ky("an.max_slope"), value="120", low="0",
                  high="90")
    expect(status).to_have_text(f"{ky('an.error')}: {expected}", timeout=RUN)
    expect(page.locator("#an-max_slope_deg")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "analysis-error-ky")


def test_keyboard_alone_runs_coverage_statistics_for_the_map_view(page, server):
    open_portal(page, server, "?lang=en#map=8.00/42.8000/74.6000")
    page.focus("#tab-layers")
    page.keyboard.press("ArrowLeft")  # the tabs wrap around: Layers -> Analysis
    expect(page.locator("#tab-analysis")).to_be_focused()
    expect(page.locator("#analysis-form")).to_be_visible(timeout=RUN)
    page.keyboard.press("Tab")
    expect(page.locator('input[name="tool"][value="screening"]')).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page.locator('input[name="tool"][value="coverage"]')).to_be_checked()
    page.focus("#draw-view")
    page.keyboard.press("Enter")
    expect(page.locator('input[name="area-kind"][value="drawn"]')).to_be_checked()
    page.focus("#analysis-run")
    page.keyboard.press("Enter")
    expect(page.locator("#coverage-title")).to_have_text("Drawn on the map", timeout=RUN)
    # A region in the per-region table is a button: Enter zooms the map to its outline.
    talas = page.locator('#coverage-regions tr[data-region="KG-T"] button')
    talas.focus()
    page.keyboard.press("Enter")
    wait_for_map(page)
    centre = page.evaluate("window.portal.map.getCenter()")
    assert 71.5 < centre["lng"] < 73.5 and 41.8 < centre["lat"] < 42.8


@pytest.mark.parametrize("watched", [{"width": 390, "height": 844}], indirect=True)
def test_a_shared_link_restores_a_screening_on_a_phone(page, server):
    query = "?lang=ky#map=7.00/42.6000/74.8000&analysis=screening&area=KG-C&coverage=4G&limit=10"
    page.goto(f"{server.url}/{query}")
    page.wait_for_function("() => document.body?.dataset.mapReady === 'true'")
    count = page.locator("#screening-count")
    expect(count).to_have_attribute("data-returned", re.compile(r"^\d+$"), timeout=RUN)
    reference = api(server, SCREENING, {"region": "KG-C", "coverage": "4G", "limit": 10,
                                        "max_slope_deg": 15})
    assert int(count.get_attribute("data-matched")) == reference["numberMatched"]
    assert page.evaluate("window.portal.map.getZoom()") == pytest.approx(7, abs=0.01)
    expect(page.locator("#panel")).to_be_hidden()
    page.click(".panel-toggle")
    expect(page.locator("#tab-analysis")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#analysis-region")).to_have_value("KG-C")
    page.locator("#screening-results > li").first.scroll_into_view_if_needed()
    expect(page.locator("#screening-results > li").first).to_be_in_viewport()
    wait_for_map(page)
    screenshot(page, "analysis-phone")


def test_every_interface_string_has_all_three_languages():
    table = i18n.strings()  # strings.yml and the data's field titles (field.*)
    missing = [key for key, texts in table.items()
               if not all(isinstance(texts.get(lang), str) and texts[lang].strip()
                          for lang in i18n.LANGUAGES)]
    assert not missing
    assert any(key.startswith("an.") for key in table)
    assert any(key.startswith("field.") for key in table)
