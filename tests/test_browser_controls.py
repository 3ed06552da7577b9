"""Controls whose words Chromium writes itself, replaced by ours (issue 17): the stewards'
file input ("Choose File", "No file chosen") and date inputs ("mm/dd/yyyy") on the stewards'
page and in the filter builder, in Kyrgyz and Russian.

Chromium through Playwright against real servers, with test_portal's watch: every test fails
on a console error, a page error, a CSP violation or a request leaving 127.0.0.1. A native
file input's button text is not in the DOM, so the tests assert that the native input is not
visible and that the visible control's text is ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from tests import test_portal
from tests.conftest import Server, start_server, stop_server, taza
from tests.stewards_support import make_manifest
from tests.test_portal import open_portal, register, words

browser = test_portal.browser
page = test_portal.page
stewards_server = test_portal.stewards_server

CHROMIUM_ENGLISH = ("Choose File", "No file chosen", "mm/dd/yyyy", "Choose file", "Browse")
# Every text a person reads on the page: text nodes and the attributes a browser shows.
READABLE = """() => [document.body.innerText,
  ...[...document.querySelectorAll("[placeholder], [title], [aria-label], [value]")]
    .flatMap((n) => ["placeholder", "title", "aria-label"].map((a) => n.getAttribute(a) || ""))]
  .join("\\n")"""


def no_chromium_words(page: Page) -> None:
    text = page.evaluate(READABLE)
    left = [word for word in CHROMIUM_ENGLISH if word in text]
    assert not left, left
    # and no native date or file control is on show
    shown = page.locator("input[type=date], input[type=datetime-local], input[type=file]")
    for index in range(shown.count()):
        expect(shown.nth(index)).to_be_hidden()


@pytest.mark.parametrize("language", ["ky", "ru"])
def test_stewards_file_and_date_controls_speak_the_pages_language(
        page, stewards_server, tmp_path, language):
    server, _ = stewards_server
    register(page, server, language, f"nurlan-{language}")
    page.fill("#new-id", f"controls-{language}")
    page.click("#new-dataset button[type=submit]")
    expect(page.locator("#draft-title")).to_contain_text(f"controls-{language}")

    # The file: the native input is hidden, our label is the visible button, the file's name
    # (none yet) is ours; the keyboard reaches the input and opens the picker.
    native = page.locator("#source")
    expect(native).to_be_hidden()
    button = page.locator("label[for=source]#source-button")
    expect(button).to_be_visible()
    expect(button).to_have_text(words("steward_choose_file", language))
    expect(page.locator("#source-name")).to_have_text(words("steward_no_file", language))
    no_chromium_words(page)
    # Upload with nothing chosen: our message, not the browser's "Please select a file."
    page.click("#source-form button[type=submit]")
    expect(page.locator("#upload-status")).to_have_text(words("steward_file_missing", language))
    page.focus("#yaml-box summary")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "source"
    source = tmp_path / "fields.geojson"
    source.write_text(json.dumps({"type": "FeatureCollection", "features": []}), encoding="utf-8")
    # (Space on the focused input opening the picker is Chromium's own behaviour, and on a loaded
    # machine its file-chooser event sometimes never came: what is ours is that the input takes
    # the focus, above, and that our button opens its picker, below.)
    with page.expect_file_chooser() as chooser:
        button.click()
    assert chooser.value.element.get_attribute("id") == "source"
    chooser.value.set_files(str(source))
    expect(page.locator("#source-name")).to_have_text("fields.geojson")

    # The dates: text inputs with the format in the page's language, checked by the page.
    start = page.locator('[name="temporal_extent.start"]')
    assert start.get_attribute("type") == "text"
    expect(start).to_have_attribute("placeholder", words("date.hint", language))
    no_chromium_words(page)
    field = words("steward_field_temporal_start", language)
    start.fill("2024-02-30")
    start.press("Tab")
    problem = page.locator(".date-problem")
    expect(problem).to_have_text(words("date.invalid", language, field=field))
    expect(start).to_have_attribute("aria-invalid", "true")
    expect(start).to_have_attribute("aria-describedby", problem.get_attribute("id"))
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url)
            if request.method == "PUT" and "/draft/manifest" in request.url else None)
    page.click("#manifest-form button[type=submit]")
    expect(page.locator("#draft-status")).to_have_text(words("date.invalid_form", language))
    assert page.evaluate("() => document.activeElement.name") == "temporal_extent.start"
    assert not sent, sent
    start.fill("2024-02-29")
    start.press("Tab")
    expect(problem).to_have_count(0)
    expect(start).not_to_have_attribute("aria-invalid", "true")
    test_portal.assert_translated(page, language)


@pytest.fixture(scope="module")
def dated_server(tmp_path_factory) -> Iterator[Server]:
    """A catalog of one small layer with a date field (the samples have none), published with
    `taza publish` as an administrator would."""
    home = tmp_path_factory.mktemp("browser-controls")
    folder = tmp_path_factory.mktemp("surveys")
    features = [{"type": "Feature", "id": i, "geometry": {"type": "Point",
                                                          "coordinates": [74 + i / 10, 42.5]},
                 "properties": {"survey_id": i, "surveyed": f"2024-0{i}-15"}}
                for i in range(1, 6)]
    (folder / "surveys.geojson").write_text(json.dumps(
        {"type": "FeatureCollection", "features": features}), encoding="utf-8")
    manifest = make_manifest("surveys", source="surveys.geojson", id_field="survey_id")
    (folder / "surveys.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True),
                                         encoding="utf-8")
    taza("publish", str(folder / "surveys.yaml"), home=home)
    running = start_server(home)
    yield running
    stop_server(running)


@pytest.mark.parametrize("language", ["ky", "ru"])
def test_filter_date_value_is_typed_with_our_hint_and_checked_in_the_pages_language(
        page, dated_server, language):
    open_portal(page, dated_server, f"?lang={language}")
    page.click("#tab-filter")
    page.select_option("#filter-layer", "surveys")
    condition = page.locator("#filter-conditions > li").first
    condition.locator("select.property").select_option("surveyed")
    condition.locator("select.operator").select_option("ge")
    value = condition.locator("input.value")
    assert value.get_attribute("type") == "text"
    expect(value).to_have_attribute("placeholder", words("date.hint", language))
    no_chromium_words(page)
    # A date that is not one: our message, and no filter is built from it.
    value.fill("2024-13-01")
    value.press("Tab")
    title = condition.locator("select.property option:checked").text_content()
    expect(condition.locator(".date-problem")).to_have_text(
        words("date.invalid", language, field=title))
    expect(page.locator("#filter-cql")).to_have_text("—")
    value.fill("2024-03-01")
    value.press("Tab")
    expect(condition.locator(".date-problem")).to_have_count(0)
    expect(page.locator("#filter-cql")).to_have_text("surveyed >= DATE('2024-03-01')")
    page.click("#filter-apply")
    expect(page.locator("#filter-count")).to_have_attribute("data-count", "3")
    no_chromium_words(page)


def test_no_template_or_script_asks_chromium_for_a_native_date_input():
    """type=date draws "mm/dd/yyyy" in Chromium's locale: the portal does not use it."""
    portal = Path(test_portal.__file__).resolve().parents[1] / "catalog" / "portal"
    files = [*portal.glob("templates/**/*.html"), *portal.glob("static/portal/*.js")]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert 'type="date"' not in text and "type: \"date\"" not in text, path
        assert 'date: "date"' not in text, path
