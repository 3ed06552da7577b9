"""Nested and pathological request bodies (issue 11, item 9): every route that reads a body
answers 400 (or 413/415) with a JSON message naming the problem, never 500, and the server
keeps serving. Also the server errors the fuzzing found (tests/test_fuzz_openapi.py), each
replayed here by name."""

from __future__ import annotations

import json

import pytest
import requests
import yaml

from tests.conftest import home_on_run_profile, taza
from tests.stewards_support import make_manifest, running_api

DEEP_ARRAY = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 3000 + b"1" + b"}" * 3000
JSON = {"Content-Type": "application/json"}
# (method, path, content type) of every route that reads a JSON body without an account.
PUBLIC_JSON_ROUTES = [
    ("POST", "/stac/search", "application/json"),
    ("POST", "/ogc/collections/settlements/items", "application/json"),
    ("POST", "/ogc/collections/settlements/items", "application/query-cql-json"),
    ("POST", "/ogc/processes/coverage-statistics/execution", "application/json"),
    # pygeoapi reads an execute body whatever its declared type
    ("POST", "/ogc/processes/site-screening/execution", "text/plain"),
]
BILLION_LAUGHS = "\n".join(
    ["id: {id}", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    + ["title: {en: *a9, ru: x, ky: x}"]
)


def send(server, method: str, path: str, body: bytes, content_type: str) -> requests.Response:
    return requests.request(method, server.url + path, data=body, timeout=60,
                            headers={"Content-Type": content_type})


def assert_refused(response: requests.Response, *words: str, status: int = 400) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    message = response.json()["description"]
    for word in words:
        assert word in message, message
    return response.json()


@pytest.mark.parametrize(("method", "path", "content_type"), PUBLIC_JSON_ROUTES)
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_json_nested_thousands_deep_is_400(server, method, path, content_type, body):
    assert_refused(send(server, method, path, body, content_type), "nested")
    assert server.get("/healthz").status_code == 200


@pytest.mark.parametrize(("body", "words"), [
    (b'{"limit": 1' + b"0" * 5000 + b"}", ("out of range",)),  # 5,000 digits
    (b'{"limit": 99999999999999999999}', ("out of range",)),  # beyond 64 bits
    (b'{"limit": 1e999}', ("out of range",)),
    (b'{"limit": NaN}', ("not valid JSON",)),
    (b'{"q": "\xff\xfe"}', ("UTF-8",)),  # invalid UTF-8
    ('{"q": "аэропорт"}'.encode("utf-16"), ("not valid JSON",)),  # UTF-16: not UTF-8
    (b'\xef\xbb\xbf{"limit": 1}', ("byte order mark",)),
    (b'{"q": "\\udc00"}', ("surrogate",)),  # a lone surrogate no UTF-8 writer can encode
    (b'{"filter": {"op": "=", "args": [{"property": "id"}, 123456789012345678901234]}}',
     ("out of range",)),
    (b"", ("not valid JSON",)),
])
def test_pathological_json_values_are_400(server, body, words):
    for path in ("/stac/search", "/ogc/collections/settlements/items"):
        assert_refused(send(server, "POST", path, body, "application/json"), *words)


def test_chunked_bodies_over_the_limit_are_413_not_truncated(server):
    """Without Content-Length, werkzeug stopped at 1 MiB and the view parsed the first MiB
    as the whole body (a 400 about broken JSON, or a truncated document accepted)."""
    big = b'{"q": "' + b"a" * (2 << 20) + b'"}'
    response = requests.post(f"{server.url}/stac/search", data=iter([big]), timeout=60,
                             headers=JSON)  # an iterator: requests sends it chunked
    assert response.status_code == 413 and response.json()["status"] == 413
    small = requests.post(f"{server.url}/stac/search", data=iter([b'{"limit": 1}']),
                          headers=JSON, timeout=60)
    assert small.status_code == 200 and small.json()["numberReturned"] == 1


@pytest.mark.parametrize("path", ["/stac/search", "/ogc/collections", "/api/datasets",
                                  "/ogc/collections/settlements/items", "/healthz"])
def test_bodies_on_get_are_400(server, path):
    response = requests.get(server.url + path, data=b'{"limit": 1}', headers=JSON, timeout=30)
    assert_refused(response, "GET request takes no body")
    assert server.get(path).status_code == 200  # without a body: answered as usual


def test_deep_json_in_query_parameters_is_400(server):
    deep = "[" * 1200 + "]" * 1200  # enough for RecursionError, short enough for a URL
    assert_refused(server.get("/stac/search", params={"intersects": deep}), "intersects",
                   "nested")
    assert_refused(server.get("/stac/search", params={"filter": deep,
                                                      "filter-lang": "cql2-json"}), "filter")
    assert_refused(server.get("/ogc/collections/settlements/items",
                              params={"filter": deep, "filter-lang": "cql2-json"}), "filter")


def test_wrong_content_types(server):
    cql = json.dumps({"op": "=", "args": [{"property": "name"}, "Osh"]}).encode()
    items = "/ogc/collections/settlements/items"
    assert_refused(send(server, "POST", items, cql, "text/plain"), "CQL2 JSON", status=415)
    assert_refused(send(server, "POST", "/stac/search", b'{"limit": 1}', "text/plain"),
                   "Content-Type: application/json")
    found = send(server, "POST", items, cql, "application/json")
    assert found.status_code == 200 and [f["properties"]["name"] for f in
                                         found.json()["features"]] == ["Osh"]


def test_post_items_without_a_body_is_400_not_500(server):
    """Fuzzing (issue 11): POST /ogc/collections/settlements/items with an empty body and no
    Content-Type answered 500 (pygeoapi's view returned nothing)."""
    response = requests.post(f"{server.url}/ogc/collections/settlements/items", timeout=30)
    assert_refused(response, "CQL2 JSON", status=415)
    assert_refused(send(server, "POST", "/ogc/collections/settlements/items", b"",
                        "application/json"), "request body")
    assert_refused(send(server, "POST", "/ogc/collections/settlements/items", b"[1]",
                        "application/json"), "JSON object")


def test_coverage_bbox_crs_that_is_not_a_crs_is_400(server):
    """Fuzzing (issue 11): coverage?bbox=0,0,0,0&bbox-crs=https://0.com answered 500
    (pyproj's CRSError); bbox-crs is a CRS URI, never free text handed to PROJ."""
    coverage = "/ogc/collections/elevation/coverage"
    assert_refused(server.get(coverage, params={"bbox": "0,0,0,0",
                                                "bbox-crs": "https://0.com"}), "bbox-crs")
    assert_refused(server.get(coverage, params={
        "bbox": "74,42,75,43", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/99999999"}),
        "bbox-crs")
    assert_refused(server.get(coverage, params={"bbox-crs": "https://0.com"}), "without bbox")
    answer = server.get(coverage, params={
        "bbox": "74,42,74.1,42.1", "bbox-crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "f": "json"})
    assert answer.status_code == 200 and answer.json()["type"] == "Coverage"


@pytest.mark.parametrize("params", [
    # found by tests/test_fuzz_openapi.py with TAZA_FUZZ_SEED=123: OverflowError, 500
    {"bbox": "5.92654824370737e+16,1.4305228713686648e-190,1.7976931348623155e+308,"
             "4.098919747475513e+220"},
    {"bbox": "nan,0,1,1"},
    {"subset": "Long(1e308:1e309)"},  # 1e309 is infinity
])
def test_coverage_coordinates_far_out_or_not_finite_are_400(server, params):
    response = server.get("/ogc/collections/slope/coverage", params=params)
    assert_refused(response)
    assert "bbox" in response.text or "subset" in response.text or "overlap" in response.text


def test_coverage_subset_beyond_the_grid_is_clipped(server):
    """Lat(-1e308:1e308) covers the whole grid (OverflowError, 500 before): all of it."""
    whole = server.get("/ogc/collections/slope/coverage", params={
        "subset": "Lat(-1e308:1e308),Long(74:74.1)", "f": "json"})
    assert whole.status_code == 200, whole.text[:300]
    axes = whole.json()["domain"]["axes"]
    assert axes["y"]["num"] == 1002 and axes["x"]["num"] == 24


def test_coverage_bands_named_twice_are_400(server):
    """Fuzzing: properties=1,1,1,1 read the band four times (18 s, four copies in memory); a
    long list of repeats would exhaust a worker's memory."""
    response = server.get("/ogc/collections/slope/coverage", params={"properties": "1,1"})
    assert_refused(response, "more than once")


def test_process_input_of_the_wrong_json_type_is_400(server):
    """Fuzzing (the per-process execute schemas): zonal-statistics with "raster": {} answered
    500 (a dict is unhashable: TypeError inside the computation)."""
    for raster in ({}, [], 5, None):
        response = requests.post(f"{server.url}/ogc/processes/zonal-statistics/execution",
                                 json={"inputs": {"raster": raster}}, timeout=60)
        assert_refused(response, "raster")


BIG = "99999999999999999999999"  # beyond 64-bit integers


@pytest.mark.parametrize(("path", "params", "name"), [
    # SQLite cannot bind integers beyond 64 bits (OverflowError: 500 before)
    ("/ogc/collections/settlements/items", {"population": BIG}, "population"),
    ("/ogc/collections/settlements/items", {"filter": f"population = {BIG}"}, "filter"),
    ("/ogc/collections/settlements/items", {"filter": f"population = -{BIG} + 1"}, "filter"),
    ("/stac/search", {"filter": f"table:row_count = {BIG}"}, "filter"),
    # str.isdigit() takes '²', int() does not (ValueError: 500 before)
    ("/stac/collections", {"token": "²"}, "token"),
])
def test_out_of_range_and_non_ascii_numbers_in_queries_are_400(server, path, params, name):
    assert_refused(server.get(path, params=params), name)


NUL_FILTER_JSON = '{"op": "=", "args": [{"property": "id"}, "\\u0000"]}'


@pytest.mark.parametrize(("method", "path", "params", "body", "named"), [
    # pgstac: psycopg cannot bind a text with U+0000 (500 before, on PostgreSQL)
    ("GET", "/stac/search", {"ids": "\x00"}, None, "ids"),
    ("GET", "/stac/search", {"collections": "a\x00"}, None, "collections"),
    ("GET", "/stac/search", {"filter": "id = '\x00'"}, None, "filter"),
    ("GET", "/stac/search", {"filter": NUL_FILTER_JSON, "filter-lang": "cql2-json"}, None,
     "filter.args"),
    ("POST", "/stac/search", None, {"ids": ["\x00"]}, "body.ids"),
    ("POST", "/stac/search", None, {"filter": json.loads(NUL_FILTER_JSON)}, "body.filter.args"),
    ("GET", "/stac/collections", {"q": "\x00"}, None, "q"),
    # PostGIS: "filter: cannot be computed" on PostgreSQL, an empty page on SQLite
    ("GET", "/ogc/collections/settlements/items", {"name": "\x00"}, None, "name"),
    ("GET", "/ogc/collections/settlements/items", {"filter": "name = '\x00'"}, None, "filter"),
    ("GET", "/ogc/collections/settlements/items",
     {"filter": NUL_FILTER_JSON.replace("id", "name"), "filter-lang": "cql2-json"}, None,
     "filter.args"),
])
def test_a_nul_character_in_a_query_is_400_on_both_profiles(server, method, path, params, body,
                                                            named):
    answer = server.get(path, params=params) if method == "GET" else \
        requests.post(server.url + path, json=body, timeout=60)
    refused = assert_refused(answer, f"{named}: text cannot contain the NUL character")
    assert refused["messageCode"] == "text_nul"


@pytest.mark.parametrize("path", ["/stac/collections/a%00b",
                                  "/stac/collections/airports/items/%00"])
def test_an_id_with_a_nul_character_is_not_found_on_both_profiles(server, path):
    answer = server.get(path)  # pgstac: 500 before, on PostgreSQL
    assert answer.status_code == 404 and answer.json()["status"] == 404


def test_asset_version_with_a_non_ascii_digit_is_404(server):
    response = server.get("/assets/settlements/²/settlements.gpkg")
    assert response.status_code == 404 and response.json()["status"] == 404


# -- the stewards' API -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(request, tmp_path_factory):
    """The stewards' API over a home of the run's profile (its own database on PostgreSQL,
    which refuses some text SQLite stores: NUL characters)."""
    home = tmp_path_factory.mktemp("hostile-bodies") / "home"
    with home_on_run_profile(request, home), running_api(home, workers=1) as running:
        yield running


def test_api_json_bodies_deep_or_pathological_are_400(api):
    api.create("bodies-json")
    for path in ("/api/datasets", "/api/datasets/bodies-json/rollback",
                 "/api/datasets/bodies-json/draft/reject"):
        for body, words in ((DEEP_ARRAY, ("nested",)), (b'{"version": 1' + b"0" * 30 + b"}",
                                                        ("out of range",)),
                            (b'{"id": "\xff"}', ("UTF-8",))):
            response = api.post(path, "root", data=body, headers=JSON)
            assert_refused(response, *words)
    deep_manifest = api.put("/api/datasets/bodies-json/draft/manifest", "alice",
                            data=DEEP_OBJECT, headers=JSON)
    assert_refused(deep_manifest, "nested")
    form = api.post("/api/datasets", "alice", data="id=x-y-z")  # a form, not JSON
    assert_refused(form, "application/json", status=415)


@pytest.mark.parametrize("query", ["after=²", "limit=²", f"after={BIG}", "after=" + "9" * 5000,
                                   "limit=-1", "after=1.5", f"after={2 ** 63}", "limit=1001"])
def test_api_audit_paging_numbers_are_checked(api, query):
    """/api/audit?after=² or a 23-digit after answered 500 (int() and SQLite overflow)."""
    assert_refused(api.get(f"/api/audit?{query}", "root"), query.split("=")[0])


def test_api_audit_pages_after_the_largest_position_are_empty(api):
    answer = api.get(f"/api/audit?after={2 ** 63 - 1}&limit=1000", "root")
    assert answer.status_code == 200, answer.text
    assert answer.json()["entries"] == [] and answer.json()["next"] is None


def test_every_documented_api_json_body_is_authorised_first_then_parsed_safely(api):
    """Each /api operation that the OpenAPI document says takes JSON (new endpoints included,
    once described): a deep body is 401 without a token (token before body, issue 11 item 3)
    and 400 with one, never 500."""
    api.create("bodies-every")
    document = api.get("/api/openapi.json").json()
    checked = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            url = "/api" + path.replace("{dataset_id}", "bodies-every")
            anonymous = api.request(method.upper(), url, data=DEEP_ARRAY, headers=JSON)
            if {} in operation["security"]:  # sign-in and password links: anyone may call
                assert_refused(anonymous, "nested")
                checked.append(f"{method.upper()} {path}")
                continue
            assert anonymous.status_code == 401, (method, path, anonymous.text[:200])
            signed = api.request(method.upper(), url, "root", data=DEEP_ARRAY, headers=JSON)
            if (method, path) == ("post", "/tokens"):  # a token never mints tokens: refused
                assert signed.status_code == 403, signed.text  # before its body is read
            else:
                assert_refused(signed, "nested")
            checked.append(f"{method.upper()} {path}")
    assert len(checked) >= 7, checked  # datasets, manifest, reject, rollback, sign-in...


def test_api_organisation_that_is_not_a_string_is_400(api):
    """Fuzzing: {"id": "000", "organisation": [null, null]} answered 500 (TypeError)."""
    response = api.post("/api/datasets", "root", json={"id": "org-type", "organisation": [1]})
    assert_refused(response, "organisation")
    assert api.get("/api/datasets/org-type", "root").status_code == 404  # nothing registered


def test_yaml_bomb_manifest_is_400_and_not_stored(api):
    """A manifest with aliases standing for 9^9 values (billion laughs): refused before it is
    stored, so no later reader (report, pipeline) walks it."""
    api.create("bodies-bomb")
    bomb = BILLION_LAUGHS.replace("{id}", "bodies-bomb")
    response = api.put("/api/datasets/bodies-bomb/draft/manifest", "alice", data=bomb.encode(),
                       headers={"Content-Type": "application/yaml"})
    assert_refused(response, "aliases", "line 2")
    assert api.get("/api/datasets/bodies-bomb/draft", "alice").status_code == 404
    nested = "a: " + "[" * 1000 + "]" * 1000
    response = api.put("/api/datasets/bodies-bomb/draft/manifest", "alice",
                       data=nested.encode(), headers={"Content-Type": "application/yaml"})
    assert_refused(response, "nested")


@pytest.mark.parametrize(("line", "status", "words"), [
    ("note: !!binary aGVsbG8=", 400, ("YAML tags",)),  # bytes no report can write: 500
    ("note: !!python/object:os.system ls", 400, ("YAML tags",)),
    ("note: !!timestamp 2020-99-99", 400, ("YAML tags",)),
    ("note: 1" + "0" * 5000, 422, ("not valid YAML", "digits")),  # int(): ValueError, 500
    ("note: 2024-13-45", 422, ("not valid YAML", "month")),  # date(): ValueError, 500
])
def test_manifest_values_yaml_cannot_construct(api, line, status, words):
    """Fuzzing by hand after the YAML bombs: PyYAML raises ValueError (not YAMLError) for
    impossible dates and 5,000-digit integers, and builds bytes for !!binary: each answered
    500. Tags are refused before storing; the others are findings of the stored manifest."""
    dataset_id = f"bodies-tag-{status}-{len(line)}"
    api.create(dataset_id)
    text = f"id: {dataset_id}\n{line}\n"
    response = api.put(f"/api/datasets/{dataset_id}/draft/manifest", "alice",
                       data=text.encode(), headers={"Content-Type": "application/yaml"})
    assert response.status_code == status, response.text[:300]
    if status == 400:
        assert_refused(response, *words)
    else:
        messages = " ".join(f["message"] for f in response.json()["findings"])
        assert all(word in messages for word in words), messages


def test_surrogate_escapes_in_a_manifest(api):
    """Fuzzing: a JSON manifest with "\\ud9b9\\udd7b" answered 500 (YAML reads the escapes
    as two surrogates that the report could not write as UTF-8), after storing the manifest.
    A pair is now the character it stands for; a lone surrogate is refused before storing."""
    api.create("bodies-surrogate")
    manifest = make_manifest("bodies-surrogate")
    manifest["title"]["en"] += " 😀"
    text = json.dumps(manifest, default=str)  # ensure_ascii: the emoji as "\ud83d\ude00"
    assert "\\ud83d\\ude00" in text
    response = api.put("/api/datasets/bodies-surrogate/draft/manifest", "alice",
                       data=text.encode(), headers=JSON)
    assert response.status_code == 200, response.text
    report = api.get("/api/datasets/bodies-surrogate/draft/report", "alice")
    assert report.status_code == 200
    lone = text.replace("\\ude00", "")
    for media in ("application/json", "application/yaml"):
        response = api.put("/api/datasets/bodies-surrogate/draft/manifest", "alice",
                           data=lone.encode(), headers={"Content-Type": media})
        assert_refused(response, "surrogate")
    stored = api.get("/api/datasets/bodies-surrogate/draft/manifest", "alice").text
    assert stored == text  # the refused one was not stored


def test_yaml_bomb_manifest_on_disk_is_a_validation_problem(tmp_path):
    """`taza validate` (and publish) report aliases instead of expanding them for minutes."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS.replace("{id}", "bomb"), encoding="utf-8")
    result = taza("validate", str(path), home=tmp_path / "home", check=False)
    assert result.returncode != 0
    assert "anchors and aliases" in result.stdout + result.stderr
    assert yaml.safe_load(path.read_text())["a0"][0] == "lol"  # it is valid YAML otherwise


@pytest.mark.parametrize(("method", "path", "user", "body", "named"), [
    ("POST", "/api/session", None, {"name": "\x00root", "password": "x"}, "body.name"),
    ("GET", "/api/audit?actor=%00", "root", None, "actor"),
    ("GET", "/api/audit?dataset=a%00b", "root", None, "dataset"),
    ("POST", "/api/datasets", "alice", {"id": "nul-keys", "\x00": 1}, "body"),
    ("POST", "/api/datasets", "alice", {"id": "nul-lists", "x": [["\x00"]]}, "body.x"),
])
def test_api_text_with_a_nul_character_is_400_on_both_profiles(api, method, path, user, body,
                                                               named):
    """PostgreSQL's text cannot hold U+0000: a sign-in name or an audit filter with one was a
    500 on that profile (schemathesis found the sign-in), and SQLite stored it."""
    answer = api.request(method, path, user, **({"json": body} if body is not None else {}))
    refused = assert_refused(answer, f"{named}: text cannot contain the NUL character")
    assert refused["messageCode"] == "text_nul" and refused["params"] == {"name": named}
