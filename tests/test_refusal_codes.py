"""Refusals a person can cause from the portal, against the real server: the filter's (OGC API
Features), the search's (STAC API) and a failed background job's (OGC API Processes). Each
carries a stable `messageCode` and its `params` beside the unchanged English `code` and
`description` (or a job's `message`), and the portal says it in the page's language
(strings.yml `problem.<code>`); checked in Chromium in Kyrgyz and Russian.

As in test_portal.py, a browser test fails on any console error (the one Chromium logs for the
refusal the test provokes on purpose apart), page error or request to another host.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, Route, expect

from catalog.portal import i18n
from catalog.processes import jobs
from tests.conftest import Server, copy_home, start_server, stop_server
from tests.test_message_codes import PLACEHOLDER, problem_texts
from tests.test_portal import Watch, browser, open_portal, screenshot  # noqa: F401

SCREENING = "/ogc/processes/site-screening/execution"
ITEMS = "/ogc/collections/settlements/items"
RUN = 90_000  # ms: a job may queue behind others on the shared machine


def page_digits(page, number: float) -> str:
    """The number as the page writes it: the locale its i18n.js chooses for its language
    (Kyrgyz pages borrow Russian's digits: Chromium has no Kyrgyz number data)."""
    return page.evaluate(
        """async (n) => {
             const src = document.querySelector('script[type=module]').src;
             const { numberLocale } = await import(new URL('./i18n.js', src).href);
             return new Intl.NumberFormat(numberLocale(document.documentElement.lang),
                                          { maximumFractionDigits: 6 }).format(n);
           }""", number)


def assert_coded(response: requests.Response, code: str, params: dict,
                 description: str | re.Pattern | None = None, status: int = 400,
                 codes: tuple[str, ...] = ("InvalidParameterValue", "InvalidQuery")) -> dict:
    """A refusal (400 unless told) with this message code and params, whose texts'
    placeholders the params fill."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] in codes, body
    assert isinstance(body["description"], str) and body["description"], body
    if isinstance(description, str):
        assert body["description"] == description
    elif description is not None:
        assert description.search(body["description"]), body["description"]
    assert body["messageCode"] == code, body
    assert params.items() <= body["params"].items(), body["params"]
    for language, text in problem_texts()[code].items():
        missing = set(PLACEHOLDER.findall(text)) - set(body["params"])
        assert not missing, f"problem.{code} ({language}) needs params {missing}: {body}"
    return body


# -- the filter: OGC API Features items -----------------------------------------------------

@pytest.mark.parametrize(("params", "code", "expected", "description"), [
    ({"population": "1", "colour": "red"}, "unknown_parameter", {"name": "colour"},
     re.compile(r"^unknown query parameter 'colour' for /ogc/collections/settlements/items; "
                r"allowed: ")),
    ({"filter": "population >>> 3"}, "filter_syntax", {"param": "filter"},
     re.compile(r"^filter: not valid CQL2 \(cql2-text\): ")),
    ({"filter": "nothing_here = 3"}, "unknown_property", {"param": "filter",
                                                          "name": "nothing_here"},
     "filter: unknown property 'nothing_here'"),
    ({"filter": '{"op": "=", "args": [', "filter-lang": "cql2-json"}, "filter_syntax",
     {"param": "filter"}, None),
    ({"bbox": "70,40,75"}, "bbox_shape", {"param": "bbox", "value": "70,40,75"},
     "bbox: '70,40,75' must be 4 or 6 comma-separated finite numbers"),
    ({"bbox": "75,40,70,43"}, "bbox_order", {"param": "bbox", "value": "75,40,70,43"}, None),
    ({"datetime": "yesterday"}, "datetime_invalid", {"param": "datetime"}, None),
    ({"sortby": "-nothing_here"}, "sortby_unknown", {"name": "nothing_here"},
     "bad sortby property"),
    ({"limit": "many"}, "limit_invalid", {"value": "many"}, "limit value should be an integer"),
    ({"limit": "0"}, "limit_invalid", {"value": "0"}, "limit value should be strictly positive"),
    ({"offset": "-1"}, "offset_invalid", {"value": "-1"},
     "offset value should be positive or zero"),
    ({"properties": "name,nothing_here"}, "unknown_properties", {"names": "nothing_here"},
     "unknown properties specified"),
    ({"crs": "EPSG:9999"}, "crs_unsupported", {"param": "crs", "value": "EPSG:9999"}, None),
    ({"filter-lang": "sql", "filter": "population > 3"}, "filter_lang_unknown",
     {"value": "sql"}, "Invalid filter language"),
])
def test_filter_refusals_carry_a_message_code(server, params, code, expected, description):
    response = server.get(ITEMS, params={"f": "json", **params})
    assert_coded(response, code, expected, description)


def test_a_filter_the_store_cannot_apply_keeps_the_stores_code(server):
    """The store's own refusal (a value that does not fit its field) keeps its code."""
    response = server.get(ITEMS, params={"filter": "population > 'many'"})
    assert_coded(response, "filter_value", {"param": "filter"},
                 "filter: value 'many' does not fit property 'population' of type integer")


def test_a_refusal_rendered_as_html_keeps_its_page(server):
    """HTML clients get the exception page as before (no code needed there)."""
    response = server.get(ITEMS, params={"f": "html", "sortby": "nothing_here"})
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")


# -- the search: STAC API -------------------------------------------------------------------

@pytest.mark.parametrize(("path", "params", "code", "expected", "description"), [
    ("/stac/collections", {"q": "!!!"}, "q_no_words", {"term": "!!!"},
     "q: '!!!' has no words to search for"),
    ("/stac/collections", {"q": ",,"}, "q_terms", {"most": 100},
     "q: expected 1 to 100 non-empty terms"),
    ("/stac/collections", {"bbox": "-450.12345,-85,450.12345,85"}, "bbox_range",
     {"param": "bbox", "value": "-450.12345,-85,450.12345,85"},
     "bbox: expected WGS84 longitudes -180..180 and latitudes -90..90 with south <= north"),
    ("/stac/collections", {"bbox": "80,40,70,45"}, "bbox_order", {"param": "bbox"},
     "bbox: boxes crossing the antimeridian (west > east) are not supported; send two "
     "searches"),
    ("/stac/collections", {"colour": "red"}, "unknown_parameter", {"name": "colour"}, None),
    ("/stac/collections", {"limit": "-3"}, "limit_invalid", {"value": "-3"},
     "limit: expected a positive integer, got -3"),
    ("/stac/collections", {"datetime": "2020-01-01"}, "datetime_invalid",
     {"param": "datetime", "value": "2020-01-01"}, None),
    ("/stac/search", {"datetime": "2021-01-01T00:00:00Z/2020-01-01T00:00:00Z"},
     "datetime_order", {"param": "datetime"}, "datetime: the interval starts after it ends"),
    ("/stac/search", {"sortby": "-nothing_here"}, "sortby_unknown", {"name": "nothing_here"},
     None),
    ("/stac/search", {"filter": "title >>> 3"}, "filter_syntax", {"param": "filter"}, None),
    ("/stac/search", {"filter-lang": "sql", "filter": "x = 1"}, "filter_lang_unknown",
     {"value": "sql"}, None),
    ("/stac/search", {"token": "xyz"}, "page_token_invalid", {}, None),
])
def test_search_refusals_carry_a_message_code(server, path, params, code, expected,
                                              description):
    assert_coded(server.get(path, params=params), code, expected, description)


def test_a_repeated_search_parameter_has_a_code(server):
    response = server.get("/stac/search?limit=1&limit=2")
    assert_coded(response, "parameter_repeated", {"name": "limit"})


# -- failed jobs: OGC API Processes -----------------------------------------------------------

def run_job(server, inputs: dict) -> dict:
    """Submit an asynchronous job and poll its status (JSON) until it ends."""
    response = requests.post(server.url + SCREENING, json={"inputs": inputs}, timeout=60,
                             headers={"Prefer": "respond-async"})
    assert response.status_code == 201, response.text
    path = urllib.parse.urlsplit(response.headers["Location"]).path
    deadline = time.monotonic() + RUN / 1000
    while time.monotonic() < deadline:
        status = server.get(path, params={"f": "json"}).json()
        if status["status"] not in ("accepted", "running"):
            return status
        time.sleep(0.3)
    raise AssertionError(f"{path}: still {status['status']}")


def assert_job_failed_with(status: dict, code: str, params: dict) -> None:
    assert status["status"] == "failed", status
    assert status["messageCode"] == code, status
    assert params.items() <= status["params"].items(), status
    assert status["message"]  # pygeoapi's English message, unchanged
    for language, text in problem_texts()[code].items():
        missing = set(PLACEHOLDER.findall(text)) - set(status["params"])
        assert not missing, f"problem.{code} ({language}) needs params {missing}"


def test_a_failed_job_says_why_with_a_code(server):
    status = run_job(server, {"min_elevation_m": 3000, "max_elevation_m": 1000})
    assert_job_failed_with(status, "range_order", {
        "low": "min_elevation_m", "low_value": 3000, "high": "max_elevation_m",
        "high_value": 1000})
    assert status["message"] == "min_elevation_m (3000) is greater than max_elevation_m (1000)"
    # The English message pygeoapi keeps is the same as the synchronous refusal's description.
    sync = requests.post(server.url + SCREENING, timeout=60, json={"inputs": {
        "region": "KG-T", "min_elevation_m": 3000, "max_elevation_m": 1000}})
    assert sync.json()["description"] == status["message"]


def test_a_job_over_an_area_outside_the_country_fails_with_a_code(server):
    china = {"type": "Polygon", "coordinates": [[[85, 33], [87, 33], [87, 35], [85, 35],
                                                 [85, 33]]]}
    status = run_job(server, {"area": china})
    assert_job_failed_with(status, "outside_country", {})


def test_a_job_that_failed_without_a_code_has_none(server):
    status = run_job(server, {"weights": {"colour": 1}})  # refused without a message code
    assert status["status"] == "failed"
    assert "messageCode" not in status and status["message"].startswith("weights:")


def test_a_job_refused_for_a_value_not_on_the_list_fails_with_a_code(server):
    status = run_job(server, {"coverage": "5G"})
    assert_job_failed_with(status, "not_one_of", {"name": "coverage", "value": "5G"})
    assert status["message"].startswith("coverage: '5G' is not one of ")


# -- process inputs refused at once -----------------------------------------------------------

COVERAGE_STATISTICS = "/ogc/processes/coverage-statistics/execution"


@pytest.mark.parametrize(("path", "inputs", "code", "expected", "description"), [
    (SCREENING, {"region": "KG-T", "coverage": "5G"}, "not_one_of",
     {"name": "coverage", "value": "5G"}, re.compile(r"^coverage: '5G' is not one of \w")),
    (SCREENING, {"region": "KG-T", "min_elevation_m": "high"}, "not_a_number",
     {"name": "min_elevation_m", "value": "high"}, "min_elevation_m: 'high' is not a number"),
    (SCREENING, {"region": "KG-T", "limit": 2.5}, "not_whole_number",
     {"name": "limit", "value": 2.5}, "limit: 2.5 must be a whole number"),
    (SCREENING, {"region": "KG-ZZ"}, "region_unknown", {"value": "KG-ZZ"},
     re.compile(r"^region: 'KG-ZZ' is not a region code; codes: .*KG-T")),
    (SCREENING, {"area": [76, 40, 73, 43]}, "bbox_order", {"param": "area"},
     "area: bbox [76, 40, 73, 43]: west must be less than east and south less than north"),
    (SCREENING, {"area": [73, 40, 76, 91]}, "bbox_range", {"param": "area"},
     "area: latitude 91 is outside -90..90 (CRS84: lon, lat)"),
    (SCREENING, {"area": [1, 2, 3]}, "bbox_shape", {"param": "area"}, None),
    (SCREENING, {"area": {"bbox": [74.2, 42.6, 75.2, 43.0], "crs": "4326"}},
     "crs_unsupported", {"param": "area"}, None),
    (SCREENING, {"area": {"type": "Polygon", "coordinates": [[[74, 42], [75, 43], [75, 42],
                                                              [74, 43], [74, 42]]]}},
     "area_not_valid", {}, re.compile(r"^area: the polygon is not valid \(Self-intersection")),
    (SCREENING, {"area": {"type": "Polygon", "coordinates": []}}, "area_empty", {},
     "area: the polygon is empty"),
    (COVERAGE_STATISTICS, {"include_regions": "yes"}, "not_boolean",
     {"name": "include_regions", "value": "yes"}, "include_regions: 'yes' must be true or false"),
])
def test_process_input_refusals_carry_a_message_code(server, path, inputs, code, expected,
                                                     description):
    response = requests.post(server.url + path, json={"inputs": inputs}, timeout=60)
    assert_coded(response, code, expected, description)


# -- a busy server: the synchronous 503 answers of processes ---------------------------------

@pytest.fixture(scope="module")
def tight_server(published_catalog: Path, tmp_path_factory) -> Iterator[Server]:
    """A server whose synchronous computations have no time (TAZA_PROCESS_SECONDS=0: refused
    at their first step, warm caches or not) and whose job queue takes none."""
    home = copy_home(published_catalog, tmp_path_factory.mktemp("tight") / "home")
    running = start_server(home, workers=1, env={"TAZA_PROCESS_SECONDS": "0",
                                                 "TAZA_QUEUED_JOBS": "0"})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def slotless_server(published_catalog: Path, tmp_path_factory) -> Iterator[Server]:
    """A server with no computation slot (and a budget of half a second to wait for one)."""
    home = copy_home(published_catalog, tmp_path_factory.mktemp("slotless") / "home")
    running = start_server(home, workers=1, env={"TAZA_PROCESS_SECONDS": "0.5",
                                                 "TAZA_COMPUTE_SLOTS": "0"})
    yield running
    stop_server(running)


def assert_busy(response: requests.Response, code: str, params: dict, ogc_code: str) -> dict:
    body = assert_coded(response, code, params, status=503, codes=(ogc_code,))
    assert "Traceback" not in response.text
    return body


def test_a_computation_over_its_budget_answers_503_with_a_code(tight_server):
    response = requests.post(tight_server.url + SCREENING, timeout=60,
                             json={"inputs": {"region": "KG-T"}})
    body = assert_busy(response, "over_budget", {"seconds": 0}, "NoApplicableCode")
    assert body["description"].startswith("the computation did not finish within its 0 s")


def test_a_full_job_queue_answers_503_with_a_code(tight_server):
    response = requests.post(tight_server.url + SCREENING, timeout=60, json={"inputs": {}},
                             headers={"Prefer": "respond-async"})
    body = assert_busy(response, "job_queue_full", {}, "ServerBusy")
    assert body["description"] == ("the job queue is full (0 jobs per server process); "
                                   "retry later")


def test_no_free_computation_slot_answers_503_with_a_code(slotless_server):
    response = requests.post(slotless_server.url + COVERAGE_STATISTICS, timeout=60,
                             json={"inputs": {}})
    body = assert_busy(response, "no_compute_slot", {"seconds": 0.5}, "NoApplicableCode")
    assert body["description"] == ("the server is busy: no computation slot freed within "
                                   "0.5 s; retry later")


# -- the search's JSON bodies, intersects and fields (STAC API) -------------------------------

BOWTIE = {"type": "Polygon", "coordinates": [[[74, 42], [75, 43], [75, 42], [74, 43], [74, 42]]]}


@pytest.mark.parametrize(("params", "code", "expected"), [
    ({"intersects": "not json"}, "intersects_invalid", {}),
    ({"intersects": '{"type": "Feature"}'}, "intersects_invalid", {}),
    ({"fields": "properties.title,bad field"}, "fields_invalid", {"name": "fields"}),
])
def test_search_intersects_and_fields_refusals_carry_a_code(server, params, code, expected):
    assert_coded(server.get("/stac/search", params=params), code, expected)


@pytest.mark.parametrize(("body", "code", "expected"), [
    ({"intersects": BOWTIE}, "intersects_invalid", {}),
    ({"intersects": {"type": "Polygon", "coordinates": [[1, 2]]}}, "intersects_invalid", {}),
    ({"bbox": [74, 42, 75, 43], "intersects": {"type": "Point", "coordinates": [74.5, 42.5]}},
     "bbox_and_intersects", {}),
    ({"fields": ["properties.title"]}, "fields_invalid", {"name": "fields"}),
    ({"fields": {"include": "properties.title"}}, "fields_invalid",
     {"name": "fields.include"}),
    ({"fields": {"exclude": ["no spaces please"]}}, "fields_invalid",
     {"name": "fields.exclude"}),
    ([1, 2], "json_body_not_object", {}),
])
def test_search_body_refusals_carry_a_code(server, body, code, expected):
    assert_coded(requests.post(server.url + "/stac/search", json=body, timeout=60), code,
                 expected)


@pytest.mark.parametrize(("query", "data", "content_type", "code", "expected"), [
    ("", b"{", "application/json", "json_body_unreadable", {}),
    ("", b'{"limit": 1}', "text/plain", "json_body_type", {}),
    ("?limit=1", b'{"limit": 1}', "application/json", "body_query_parameter", {"name": "limit"}),
])
def test_a_search_body_that_cannot_be_read_has_a_code(server, query, data, content_type, code,
                                                      expected):
    response = requests.post(f"{server.url}/stac/search{query}", data=data, timeout=60,
                             headers={"Content-Type": content_type})
    # JSON no view can read is refused for the whole app before the view (request_bodies.py)
    assert_coded(response, code, expected,
                 codes=("InvalidParameterValue", "InvalidQuery", "Bad Request"))


# -- the filter's POST bodies (OGC API Features) ----------------------------------------------

@pytest.mark.parametrize(("data", "content_type", "status", "code", "expected"), [
    (b'{"op": "=", "args": [{"property": "name"}, "Osh"]}', "text/plain", 415,
     "body_media_type", {"types": "application/json or application/query-cql-json or "
                                  "application/cql2+json"}),
    (b'{"op": "=", "args": [', "application/json", 400, "json_body_unreadable", {}),
    (b'["Osh"]', "application/query-cql-json", 400, "json_body_not_object", {}),
])
def test_filter_body_refusals_carry_a_code(server, data, content_type, status, code, expected):
    response = requests.post(server.url + ITEMS, data=data, timeout=60,
                             headers={"Content-Type": content_type})
    assert_coded(response, code, expected, status=status,
                 codes=("InvalidParameterValue", "UnsupportedMediaType", "Bad Request"))


def test_a_successful_job_status_is_as_pygeoapi_answers_it(server):
    status = run_job(server, {"region": "KG-T", "limit": 1})
    assert status["status"] == "successful"
    assert "messageCode" not in status and "params" not in status


def test_jobs_files_from_before_get_the_failure_columns_and_orphans_their_code(tmp_path):
    """A jobs.sqlite made before the codes existed is migrated on start-up; a job whose
    server process is gone is failed with the code job_orphaned."""
    path = tmp_path / "jobs" / "jobs.sqlite"
    path.parent.mkdir()
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(jobs.SCHEMA)  # the table as it was first released
        assert "message_code" not in {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
        db.execute(jobs.INSERT_JOB, ("gone", "site-screening", "running", "computing", 10,
                                     "2026-01-01T00:00:00Z", None, None, None, None,
                                     "no-such-host-xyz/1/1"))
        db.execute(jobs.INSERT_JOB, ("dead", "site-screening", "running", "computing", 10,
                                     "2026-01-01T00:00:00Z", None, None, None, None,
                                     f"{socket.gethostname()}/999999999/1"))
    manager = jobs.SQLiteJobManager({"name": jobs.__name__, "connection": str(path),
                                     "output_dir": None})
    dead = manager.get_job("dead")
    assert (dead["status"], dead["message"]) == ("failed", jobs.ORPHANED)
    assert manager.failure("dead") == ("job_orphaned", {})
    assert manager.get_job("gone")["status"] == "running"  # another machine's: left alone
    assert manager.failure("gone") == (None, {})
    assert manager.failure("no-such-job") == (None, {})


# -- in the browser ---------------------------------------------------------------------------

class RefusalWatch(Watch):
    """Watch, plus the refusals (400, 415, 503) a test provokes on purpose (Chromium logs each
    as a console error): their path, query included."""

    def __init__(self, page: Page):
        self.expected_400: list[str] = []
        super().__init__(page)

    def _console(self, message) -> None:
        url = urllib.parse.unquote_plus((message.location or {}).get("url", ""))
        if (message.type == "error" and re.search(r"status of (400|415|503)\b", message.text)
                and any(path in url for path in self.expected_400)):
            return
        super()._console(message)


@pytest.fixture()
def watched(browser: Browser) -> Iterator[tuple[Page, RefusalWatch]]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    page = context.new_page()
    watch = RefusalWatch(page)
    page.set_default_timeout(30_000)
    yield page, watch
    context.close()
    assert not watch.problems, "\n".join(watch.problems)


def api_description(server, path: str, params: dict) -> str:
    return server.get(path, params=params).json()["description"]


@pytest.mark.parametrize("language", ["ky", "ru"])
def test_the_filter_panel_says_a_refusal_in_the_pages_language(watched, server, language):
    """The builder writes valid CQL2 from the layer's queryables; a field the server does not
    have (a link made before a new version dropped it, say) is refused by the server: the
    filter's request is sent on with such a filter, and the page says the server's refusal."""
    page, watch = watched
    bad = "vanished_field = 1"
    # Chromium logs the refusal under the URL the page asked for (before the route's change)
    watch.expected_400.append(f"{ITEMS}?f=json&limit=100&filter=population > 20000&")

    def stale_field(route: Route) -> None:
        url = urllib.parse.urlsplit(route.request.url)
        query = urllib.parse.parse_qsl(url.query)
        if not any(name == "filter" for name, _ in query):
            route.continue_()
            return
        query = [(n, bad if n == "filter" else v) for n, v in query]
        route.continue_(url=urllib.parse.urlunsplit(url._replace(
            query=urllib.parse.urlencode(query, quote_via=urllib.parse.quote))))

    page.route(re.compile(r"/ogc/collections/settlements/items\?"), stale_field)
    open_portal(page, server, f"?lang={language}")
    page.click("#tab-filter")
    page.select_option("#filter-layer", "settlements")
    condition = page.locator("#filter-conditions > li").first
    condition.locator("select.property").select_option("population")
    condition.locator("select.operator").select_option("gt")
    condition.locator("input.value").fill("20000")
    page.click("#filter-apply")
    t = i18n.translator(language)
    expected = f"{t('filter.error')}: " + t("problem.unknown_property",
                                             param=t("param.filter"), name="vanished_field")
    status = page.locator("#filter-status")
    expect(status).to_have_text(expected)
    english = api_description(server, ITEMS, {"filter": bad})
    assert english == "filter: unknown property 'vanished_field'"
    assert english not in status.text_content()
    screenshot(page, f"filter-refusal-{language}")


@pytest.mark.parametrize(("language", "text", "code", "params"), [
    ("ky", "!!!", "q_no_words", {"term": "!!!"}),
    ("ru", ", ,", "q_terms", {"most": 100, "length": 4000}),
])
def test_the_search_says_a_refusal_in_the_pages_language(watched, server, language, text, code,
                                                         params):
    """Text the STAC API cannot search for (no words in it; only separators) is refused;
    the page says the refusal in its language. (The map's extent cannot be refused: the map
    is bounded to the region.)"""
    page, watch = watched
    watch.expected_400.append(f"/stac/collections?limit=100&q={text}")
    open_portal(page, server, f"?lang={language}")
    page.click("#tab-search")
    page.fill("#search-q", text)
    page.click("#search-form button[type=submit]")
    t = i18n.translator(language)

    def digits(number: int) -> str:
        return page_digits(page, number)

    expected = t(f"problem.{code}", **{name: digits(value) if isinstance(value, int) else value
                                        for name, value in params.items()})
    status = page.locator("#search-status")
    expect(status).to_have_text(expected)
    expect(status).to_have_class(re.compile(r"\berror\b"))
    response = server.get("/stac/collections", params={"limit": 100, "q": text})
    assert_coded(response, code, params)
    assert response.json()["description"] not in status.text_content()
    screenshot(page, f"search-refusal-{language}")


@pytest.mark.parametrize("language", ["ky", "ru"])
def test_a_failed_job_is_said_in_the_pages_language(watched, server, language):
    """The whole country runs as a background job; one refused while it runs fails, and the
    page says why from the job's message code, with the form's own labels and digits."""
    page, watch = watched
    open_portal(page, server, f"?lang={language}")
    page.click("#tab-analysis")
    expect(page.locator("#analysis-form")).to_be_visible(timeout=RUN)
    page.click("#analysis-form details summary")
    page.locator('#analysis-form [name="min_elevation_m"]').fill("3000")
    page.locator('#analysis-form [name="max_elevation_m"]').fill("1000")
    jobs_seen: list[str] = []
    page.on("request", lambda r: jobs_seen.append(r.url) if "/ogc/jobs/" in r.url else None)
    page.click("#analysis-run")
    t = i18n.translator(language)

    def digits(number: int) -> str:  # the browser's own digits for the language
        return page_digits(page, number)

    expected = t("problem.range_order", low=t("an.min_elevation"), low_value=digits(3000),
                 high=t("an.max_elevation"), high_value=digits(1000))
    status = page.locator("#analysis-status")
    expect(status).to_have_text(f"{t('an.failed')}: {expected}", timeout=RUN)
    assert jobs_seen, "the run was not a background job"
    job = server.get(urllib.parse.urlsplit(jobs_seen[-1]).path).json()
    assert job["status"] == "failed" and job["message"] not in status.text_content()
    expect(page.locator("#an-min_elevation_m")).to_have_attribute("aria-invalid", "true")
    screenshot(page, f"job-failed-{language}")


def test_an_unknown_code_falls_back_to_the_description(watched, server):
    """A code the page has no text for (a newer server) is shown in the server's words."""
    page, _ = watched
    open_portal(page, server, "?lang=ru")
    said = page.evaluate(r"""async () => {
        // the page's own module (same URL: the same instance, with the page's strings)
        const app = document.querySelector('script[type=module]').src;
        const { problemText } = await import(app.replace(/app\.js$/, 'i18n.js'));
        return [problemText({messageCode: 'from_the_future', params: {}, description: 'D'}),
                problemText({messageCode: 'q_no_words', params: {term: 'x'}, description: 'D'}),
                problemText({status: 'failed', message: 'M'})];
    }""")
    assert said == ["D", i18n.translator("ru")("problem.q_no_words", term="x"), "M"]


@pytest.mark.parametrize("language", ["ky", "ru"])
def test_the_analysis_panel_says_a_busy_servers_503_in_the_pages_language(
        watched, tight_server, language):
    """On a server whose computations overrun their budget and whose job queue is full, the
    analysis panel says both 503 answers in the page's language: the whole country's figures
    it loads on opening (over_budget), then a run of the whole country as a job
    (job_queue_full)."""
    page, watch = watched
    watch.expected_400 += [COVERAGE_STATISTICS, SCREENING]
    open_portal(page, tight_server, f"?lang={language}")
    page.click("#tab-analysis")
    t = i18n.translator(language)
    status = page.locator("#analysis-status")
    expected = t("problem.over_budget", seconds=page_digits(page, 0))
    expect(status).to_have_text(f"{t('an.error')}: {expected}", timeout=RUN)
    expect(page.locator("#analysis-form")).to_be_visible(timeout=RUN)
    english = requests.post(tight_server.url + COVERAGE_STATISTICS, json={"inputs": {}},
                            timeout=60).json()["description"]
    assert english not in status.text_content()
    page.click("#analysis-run")
    expect(status).to_have_text(f"{t('an.error')}: {t('problem.job_queue_full')}", timeout=RUN)
    screenshot(page, f"busy-server-{language}")


def test_the_analysis_panel_says_no_free_slot_in_the_pages_language(watched, slotless_server):
    page, watch = watched
    watch.expected_400.append(COVERAGE_STATISTICS)
    open_portal(page, slotless_server, "?lang=ky")
    page.click("#tab-analysis")
    t = i18n.translator("ky")
    expected = t("problem.no_compute_slot", seconds=page_digits(page, 0.5))
    expect(page.locator("#analysis-status")).to_have_text(f"{t('an.error')}: {expected}",
                                                          timeout=RUN)
