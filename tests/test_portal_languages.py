"""The investor's portal in Kyrgyz, Russian and English, shared by link (issue 17, items 2-5).

Chromium through Playwright against the real server, with test_portal's watch: every test
fails on a console error, a page error, a CSP violation or a request leaving 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from catalog.portal import i18n
from tests import test_portal
from tests.test_portal import ARTIFACTS, Watch, open_portal, screenshot, wait_for_map

# test_portal's fixtures: one Chromium for the module, a watched page per test.
browser = test_portal.browser
page = test_portal.page

# MapLibre's own English words, which the page must replace through its locale option.
MAPLIBRE_ENGLISH = {"Zoom in", "Zoom out", "Toggle attribution", "Map", "Reset bearing to north"}

# Every text node and every text a person reads in an attribute, with where it is.
VISIBLE_TEXTS = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest("script, style, .maplibregl-ctrl-attrib-inner")) continue;
    const text = node.textContent.trim();
    if (text) found.push([text, parent.tagName + (parent.id ? "#" + parent.id : "")]);
  }
  for (const node of document.querySelectorAll("[placeholder], [aria-label], [title]")) {
    for (const name of ["placeholder", "aria-label", "title"]) {
      const text = (node.getAttribute(name) || "").trim();
      if (text) found.push([text, `${node.tagName}[${name}]`]);
    }
  }
  return found;
}"""


def foreign_strings(language: str) -> dict[str, str]:
    """Interface strings of the other languages that differ from this language's own (text ->
    its key): any of them on the page is an interface string left untranslated."""
    foreign: dict[str, str] = {}
    for key, texts in i18n.strings().items():
        for other, text in texts.items():
            if other != language and text != texts[language]:
                foreign[text] = key
    if language != "en":
        foreign.update({text: "MapLibre's default" for text in MAPLIBRE_ENGLISH})
    return foreign


def untranslated(page: Page, language: str) -> list[str]:
    foreign = foreign_strings(language)
    return [f"{text!r} ({where}, {foreign[text]})" for text, where in page.evaluate(VISIBLE_TEXTS)
            if text in foreign]


def scale_unit(page: Page) -> str:
    text = page.locator(".maplibregl-ctrl-scale").text_content()
    return re.sub(r"[\d\s.,]", "", text)


@pytest.mark.parametrize("language", ["ky", "ru", "en"])
def test_every_investor_page_speaks_one_language(page, server, language):
    open_portal(page, server, f"?lang={language}#map=7.00/41.5000/74.5000&layers=settlements,"
                              "kyrgyzstan-boundary")
    for tab in ("layers", "search", "analysis", "filter"):
        page.click(f"#tab-{tab}")
    page.select_option("#filter-layer", "settlements")
    expect(page.locator("#filter-conditions select.property")).to_have_count(1)
    problems = untranslated(page, language)
    # The scale bar and the field labels in the page's language; counts in its plural forms.
    assert scale_unit(page) in {"ky": {"км", "м"}, "ru": {"км", "м"}, "en": {"km", "m"}}[language]
    options = page.locator("#filter-conditions select.property option").all_text_contents()
    assert "region_en" not in options and i18n.translator(language)("field.region_en") in options
    one_feature = page.locator('[data-legend="kyrgyzstan-boundary"] li').text_content()
    many = page.locator('[data-legend="settlements"] li').text_content()
    assert (one_feature, many) == {"ky": ("1 объект", "112 объект"),
                                   "ru": ("1 объект", "112 объектов"),
                                   "en": ("1 feature", "112 features")}[language]
    screenshot(page, f"languages-map-{language}")
    for path in ("/datasets/settlements", "/datasets/elevation"):
        page.goto(f"{server.url}{path}?lang={language}")
        # the manifest's attribution is one text, the source's own: the page says so
        expect(page.locator("#attribution-note")).to_have_text(
            f"({i18n.translator(language)('ds.attribution_own_words')})")
        problems += [f"{path}: {p}" for p in untranslated(page, language)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", ["ky", "ru", "en"])
def test_investor_filters_with_a_value_picker_shares_the_link_and_reopens_it(
        browser: Browser, page, server, language):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_portal(page, server, f"?lang={language}")
    page.click("#tab-filter")
    # Before a layer is chosen, the controls meant to be hidden are hidden.
    for hidden in ("#filter-match", "#filter-actions", "#filter-apply", "#filter-downloads"):
        expect(page.locator(hidden)).to_be_hidden()
    page.select_option("#filter-layer", "settlements")
    condition = page.locator("#filter-conditions > li").first
    condition.locator("select.property").select_option("region_en")
    condition.locator("select.operator").select_option("eq")
    picker = condition.locator("select.value.picker")
    expect(picker).to_have_attribute("data-ready", "true")
    # The picker's values and counts are the data's own.
    everything = server.get("/ogc/collections/settlements/items",
                            params={"f": "json", "limit": 1000}).json()["features"]
    counts: dict[str, int] = {}
    for feature in everything:
        region = feature["properties"]["region_en"]
        counts[region] = counts.get(region, 0) + 1
    offered = picker.locator("option[data-count]")
    assert {o.get_attribute("value"): int(o.get_attribute("data-count"))
            for o in offered.all()} == counts
    picker.select_option("Naryn Region")
    page.click("#filter-apply")
    count = page.locator("#filter-count")
    expect(count).to_have_attribute("data-count", str(counts["Naryn Region"]))
    # The map zooms to the matches: every one of them is in view.
    page.wait_for_function("() => !window.portal.map.isMoving()")
    naryn = [f["geometry"]["coordinates"] for f in everything
             if f["properties"]["region_en"] == "Naryn Region"]
    in_view = page.evaluate("""(points) => points.every(p =>
        window.portal.map.getBounds().contains(p))""", naryn)
    assert in_view and page.evaluate("() => window.portal.map.getZoom()") > 6
    expect(page.locator("#filter-downloads")).to_be_visible()
    # The local projected CRSs are offered for download (easting, northing in metres).
    utm = page.locator("#filter-downloads a.utm")
    expect(utm).to_have_count(2)
    assert {urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["crs"][0][-5:]
            for href in utm.evaluate_all("links => links.map(a => a.href)")} == {"32642", "32643"}
    page.wait_for_function("() => location.hash.includes('filter=settlements')")
    page.click("#copy-link")
    expect(page.locator("#copy-link-status")).not_to_be_empty()
    shared = page.evaluate("() => navigator.clipboard.readText()")
    assert shared == page.url and f"lang={language}" in shared
    screenshot(page, f"journey-filtered-{language}")
    # A fresh page (a new browser context: nothing remembered) opens in the same state.
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    fresh = context.new_page()
    watch = Watch(fresh)
    fresh.set_default_timeout(20_000)
    try:
        open_portal(fresh, server, shared.removeprefix(server.url + "/"))
        expect(fresh.locator("html")).to_have_attribute("lang", language)
        expect(fresh.locator("#pane-filter")).to_be_visible()
        expect(fresh.locator("#filter-count")).to_have_attribute(
            "data-count", str(counts["Naryn Region"]))
        expect(fresh.locator("#filter-conditions select.value.picker")).to_have_value(
            "Naryn Region")
        assert fresh.locator("#filter-cql").text_content() == \
            page.locator("#filter-cql").text_content()
        wait_for_map(fresh)
        ARTIFACTS.mkdir(exist_ok=True)
        fresh.screenshot(path=ARTIFACTS / f"portal-journey-reopened-{language}.png")
        assert not untranslated(fresh, language)
    finally:
        context.close()
    assert not watch.problems, "\n".join(watch.problems)


def test_a_pasted_link_is_applied_and_the_language_follows_the_investor(page, server):
    open_portal(page, server, "?lang=en")
    # A link pasted into the open portal changes only the hash: it is applied.
    page.evaluate("() => { location.hash = 'map=8.00/42.5000/75.0000&layers=airports&q=airport'; }")
    page.wait_for_function("() => document.body?.dataset.mapReady === 'true'"
                           " && window.portal.layers.some(l => l.id === 'airports' && l.visible)")
    assert page.evaluate("() => window.portal.map.getZoom()") == pytest.approx(8, abs=0.01)
    expect(page.locator("#search-results > li[data-collection=airports]")).to_be_visible()
    # The language switch keeps the state; "View on the map" from a Russian dataset page
    # opens the map in Russian.
    # The switch reloads the page: between the two documents there is no documentElement.
    with page.expect_navigation():
        page.click('.lang-switch a[data-lang="ru"]')
    page.wait_for_function("() => document.documentElement?.lang === 'ru'"
                           " && document.body?.dataset.mapReady === 'true'")
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).fragment)
    assert state["layers"] == ["airports"] and state["q"] == ["airport"]
    page.click("#tab-layers")
    page.click("#dataset-airports .layer-details")
    page.click("#open-on-map")
    page.wait_for_function("() => document.body?.dataset.mapReady === 'true'")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("#tab-layers")).to_have_text("Слои")
    expect(page.locator("#toggle-airports")).to_be_checked()
    assert scale_unit(page) in {"км", "м"}


def test_place_search_is_tolerant_of_script_and_spelling_and_flies_there(page, server):
    """Russian page; Cyrillic, Latin and a misspelling; the first answer is flown to (Naryn,
    town and region, near 76 E 41.4 N; Manas airport near 74.5 E 43.1 N)."""
    open_portal(page, server, "?lang=ru")
    page.click("#tab-search")
    for typed, expected, target in [
        ("нарын", "Нарынская область · регион", (75.9, 41.4)),
        ("Narin", "Нарын · населённый пункт", (75.9, 41.4)),
        ("манас", "Международный аэропорт Манас · аэропорт", (74.48, 43.06)),
    ]:
        page.fill("#place-q", typed)
        page.click("#place-form button[type=submit]")
        first = page.locator("#place-results > li").first
        expect(first).to_be_visible()
        expect(page.locator("#place-results > li", has_text=expected)).to_have_count(1)
        page.wait_for_function("""([x, y]) => { const c = window.portal.map.getCenter();
            return !window.portal.map.isMoving() && Math.abs(c.lng - x) < 1.5
                   && Math.abs(c.lat - y) < 1; }""", arg=list(target))
    page.fill("#place-q", "qqqqqq")
    page.click("#place-form button[type=submit]")
    expect(page.locator("#place-status")).to_have_text("Такое место не найдено")
    assert not untranslated(page, "ru")


@pytest.mark.parametrize(("language", "bishkek", "osh"),
                         [("ky", "Бишкек", "Ош"), ("ru", "Бишкек", "Ош"), ("en", "Bishkek", "Osh")])
def test_map_labels_and_popups_name_places_in_the_pages_language(page, server, language,
                                                                 bishkek, osh):
    open_portal(page, server, f"?lang={language}#map=6.00/41.7000/74.0000&layers=settlements")
    expect(page.locator(".place-label", has_text=bishkek).first).to_be_visible()
    expect(page.locator(".place-label", has_text=osh).first).to_be_visible()
    if language != "en":
        assert not page.locator(".place-label", has_text="Bishkek").count()
    # the popup of Bishkek's point leads with its name in the page's language
    page.evaluate("""() => { const m = window.portal.map; m.jumpTo({ center: [74.59, 42.87],
                                                                  zoom: 9 }); }""")
    wait_for_map(page)
    point = page.evaluate("() => window.portal.map.project([74.59, 42.87])")
    page.locator("#map canvas").click(position={"x": point["x"], "y": point["y"]})
    expect(page.locator(".popup-name", has_text=bishkek).first).to_be_visible()
    # where each name comes from, in words of the page's language, never the data's code
    t = i18n.translator(language)
    said = {t(f"value.name_source.{code}")
            for code in ("geonames", "region", "russian", "transliterated", "corrected")}
    for field in ("name_ru_source", "name_ky_source"):
        cell = page.locator(f'.popup tr[data-field="{field}"] td').first
        assert cell.text_content() in said, (field, cell.text_content())
    # Bishkek: GeoNames has one Cyrillic form, the Russian one: the Kyrgyz name says so
    expect(page.locator('.popup tr[data-field="name_ky_source"] td').first).to_have_text(
        t("value.name_source.russian"))
    expect(page.locator('.popup tr[data-field="region_source"] td').first).to_have_text(
        t("value.region_source.geonames"))
    screenshot(page, f"place-names-{language}")
    assert not untranslated(page, language)


@pytest.mark.parametrize("language", ["ky", "ru", "en"])
def test_popups_say_where_a_region_comes_from_in_the_pages_language(page, server, language):
    """Talas (7649203) has no region in GeoNames: its popup says, in the page's language, that
    the region is the nearest place's and which place (GeoNames 1527299), never the data's
    code; the parameter is said in that sentence, not as a row of its own. The airport named
    after Issyk-Kul says its names come from the oblast's."""
    t = i18n.translator(language)
    open_portal(page, server, f"?lang={language}#map=11.00/42.3547/72.6568&layers=settlements")
    point = page.evaluate("() => window.portal.map.project([72.65678, 42.35473])")
    page.locator("#map canvas").click(position={"x": point["x"], "y": point["y"]})
    section = page.locator(".popup-layer", has=page.locator('tr[data-field="geonames_id"] td',
                                                            has_text="7649203"))
    expect(section.locator('tr[data-field="region_source"] td')).to_have_text(
        t("value.region_source.nearest_place", place=1527299))
    expect(section.locator('tr[data-field="region_source_place"]')).to_have_count(0)
    expect(section.locator('tr[data-field="name_ky_source"] td')).to_have_text(
        t("value.name_source.region"))
    expect(section.locator(".popup-name")).to_have_text({"ky": "Талас", "ru": "Талас",
                                                         "en": "Talas"}[language])
    assert "nearest_place" not in section.text_content()
    assert not untranslated(page, language)
    page.goto("about:blank")  # a new page load, not a change of hash
    open_portal(page, server, f"?lang={language}#map=11.00/42.5883/76.7133&layers=airports")
    point = page.evaluate("() => window.portal.map.project([76.7133, 42.5883])")
    page.locator("#map canvas").click(position={"x": point["x"], "y": point["y"]})
    airport = page.locator(".popup-layer", has=page.locator('tr[data-field="icao"] td',
                                                            has_text="UCFL"))
    expect(airport.locator(".popup-name")).to_have_text(
        {"ky": "Ысык-Көл эл аралык аэропорту", "ru": "Международный аэропорт Иссык-Куль",
         "en": "Issyk-Kul International Airport"}[language])
    for field in ("name_ru_source", "name_ky_source"):
        expect(airport.locator(f'tr[data-field="{field}"] td')).to_have_text(
            t("value.name_source.region"))
    screenshot(page, f"region-source-{language}")
    assert not untranslated(page, language)


@pytest.mark.parametrize(("language", "start", "july"), [
    ("ky", "2020-ж. 2-февраль", "июль"),  # our own month names: Chromium has no Kyrgyz Intl
    ("ru", "2 февраля 2020 г.", "июль"),
    ("en", "February 2, 2020", "July"),
])
def test_dates_and_months_are_written_in_the_pages_language(page, server, language, start, july):
    """settlements' temporal extent starts 2020-02-02; its version's publication time is a
    timestamp; the monthly normals' time steps are months."""
    page.goto(f"{server.url}/datasets/settlements?lang={language}")
    expect(page.locator("#temporal-extent time").first).to_have_text(start)
    published = page.locator("#versions time").first
    expect(published).not_to_have_text(re.compile(r"\dT\d"))
    expect(published).to_have_text(re.compile(r"\b20\d\d\b.* \d\d:\d\d$"))
    if language == "ky":
        assert not re.search(r"[A-Za-z]", published.text_content())
    assert not untranslated(page, language)
    open_portal(page, server,
                f"?lang={language}#map=6.00/41.5000/74.5000&layers=temperature-normals")
    step = page.locator('.layer-step[data-layer="temperature-normals"]')
    expect(step.locator("option").nth(6)).to_have_text(re.compile(f"^{july}$", re.IGNORECASE))


@pytest.mark.parametrize(("language", "written"), [
    ("ky", "3\u00a0000,5"),  # CLDR ky: no-break space between thousands, decimal comma
    ("ru", "3\u00a0000,5"),
    ("en", "3,000.5"),
])
def test_numbers_are_written_as_the_pages_language_writes_them(page, server, language, written):
    """Chromium has no Kyrgyz number data: Intl alone would write "3,000.5" on a Kyrgyz page.
    The page's own formatter (util.js formatNumber, used for every figure shown) writes Kyrgyz
    numbers with Kyrgyz separators."""
    open_portal(page, server, f"?lang={language}")
    shown = page.evaluate(
        """async ([n, lang]) => {
             const src = document.querySelector('script[type=module]').src;
             const { formatNumber } = await import(new URL('./util.js', src).href);
             return formatNumber(n, lang);
           }""", [3000.5, language])
    assert shown == written


def test_plural_forms_cover_each_languages_categories():
    """Intl.PluralRules picks one of these forms: Russian needs one, few, many and other,
    English one and other, Kyrgyz other (its nouns do not change after a number)."""
    needed = {"ru": {"one", "few", "many", "other"}, "en": {"one", "other"}, "ky": {"other"}}
    table = yaml.safe_load(i18n.STRINGS.read_text(encoding="utf-8"))
    plural = {key: texts for key, texts in table.items() if texts["en"].startswith("one:")}
    assert {"layers.features", "search.results", "filter.count", "an.area_value"} <= set(plural)
    for key, texts in plural.items():
        for language, categories in needed.items():
            forms = {form.split(":")[0].strip() for form in texts[language].split("|")}
            assert categories <= forms, (key, language, json.dumps(texts, ensure_ascii=False))
