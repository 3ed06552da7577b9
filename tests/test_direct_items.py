"""The direct GeoJSON items writer (catalog/ogc/items.py) answers exactly what pygeoapi answers.

Two real servers share one catalog home: the normal one, and a reference with
TAZA_DIRECT_ITEMS=0 where every items request goes through pygeoapi's own pipeline. The same
requests go to both; bodies (but the timestamp and the port in links), status codes and the
headers clients read must be equal, and the Server-Timing header shows which writer answered.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import start_server, stop_server

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
COMPARED_HEADERS = ("Content-Type", "Content-Crs", "Content-Language", "Content-Disposition")
SETTLEMENTS = "/ogc/collections/settlements/items"


@pytest.fixture(scope="module")
def reference(published_home):
    """pygeoapi's own items pipeline over the same catalog."""
    running = start_server(published_home, env={"TAZA_DIRECT_ITEMS": "0"},
                           log_name="reference-server.log")
    yield running
    stop_server(running)


def written_directly(response) -> bool:
    return "direct GeoJSON writer" in response.headers.get("Server-Timing", "")


def comparable(response, server) -> dict | str:
    """The body with the server's own URL and the per-request timestamp taken out."""
    text = response.text.replace(server.url, "http://server")
    if not response.headers.get("Content-Type", "").startswith("application/"):
        return text
    body = json.loads(text)
    if isinstance(body, dict):
        body.pop("timeStamp", None)
    return body


def assert_same(server, reference, path: str, params=None, headers=None, direct=True):
    ours = server.get(path, params=params, headers=headers)
    theirs = reference.get(path, params=params, headers=headers)
    assert not written_directly(theirs)
    assert written_directly(ours) is direct, (path, params, ours.status_code, ours.text[:300])
    assert ours.status_code == theirs.status_code, (params, ours.text[:300], theirs.text[:300])
    for name in COMPARED_HEADERS:
        assert ours.headers.get(name) == theirs.headers.get(name), (name, params)
    assert comparable(ours, server) == comparable(theirs, reference), (path, params)
    return ours


CASES = [
    ("settlements", {}),
    ("settlements", {"limit": "100"}),
    ("settlements", {"limit": "7", "offset": "30"}),
    ("settlements", {"limit": "10000", "offset": "100"}),
    ("settlements", {"offset": "5000"}),
    ("settlements", {"f": "json", "limit": "3", "offset": "3"}),
    ("settlements", {"bbox": "73,40,76,43", "limit": "20"}),
    ("settlements", {"sortby": "-population,name", "limit": "15", "offset": "4"}),
    ("settlements", {"properties": "name,population", "limit": "5"}),
    ("settlements", {"skipGeometry": "true", "limit": "5"}),
    ("settlements", {"region_en": "Osh Region", "limit": "50"}),
    ("settlements", {"q": "kara", "limit": "50"}),
    ("settlements", {"filter": "population > 20000 AND name LIKE 'B%'", "limit": "50"}),
    ("settlements", {"filter": '{"op": ">", "args": [{"property": "population"}, 50000]}',
                     "filter-lang": "cql2-json"}),
    ("settlements", {"resulttype": "hits"}),
    ("settlements", {"datetime": "2020-01-01/..", "limit": "2"}),
    ("settlements", {"lang": "ru", "limit": "2"}),
    ("airports", {"limit": "50"}),
    ("airports", {"sortby": "elevation_m", "properties": "iata,elevation_m"}),
    ("mobile-coverage", {"limit": "3"}),
    ("kyrgyzstan-boundary", {}),
]


@pytest.mark.parametrize(("collection", "params"), CASES)
def test_direct_pages_equal_pygeoapi_pages(server, reference, collection, params):
    assert_same(server, reference, f"/ogc/collections/{collection}/items", params)


@pytest.mark.parametrize("headers", [
    {"Accept": "application/geo+json"},
    {"Accept": "application/json"},
    {"Accept-Language": "ky"},
    {"Accept-Language": "ru-RU,ru;q=0.9"},
])
def test_negotiated_json_is_written_directly(server, reference, headers):
    assert_same(server, reference, SETTLEMENTS, {"limit": "4"}, headers=headers)


@pytest.mark.parametrize(("params", "headers"), [
    ({"f": "html", "limit": "2"}, None),
    ({"f": "jsonld", "limit": "2"}, None),
    ({"f": "csv", "limit": "2"}, None),
    ({"limit": "2"}, {"Accept": "text/html"}),
    ({"limit": "2", "crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, None),
    ({"bbox": "8300000,4900000,8400000,5300000",
      "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, None),
])
def test_other_formats_and_crs_stay_with_pygeoapi(server, reference, params, headers):
    response = server.get(SETTLEMENTS, params=params, headers=headers)
    assert response.status_code == 200
    assert not written_directly(response)
    assert response.headers["Content-Type"] == \
        reference.get(SETTLEMENTS, params=params, headers=headers).headers["Content-Type"]


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "10001"}, {"limit": "ten"}, {"offset": "-1"},
    {"bbox": "1,2,3"}, {"bbox": "10,50,0,40"}, {"sortby": "nosuch"},
    {"properties": "nosuch"}, {"filter": "population >"}, {"filter": "nosuch = 1"},
    {"filter-lang": "sql"}, {"datetime": "yesterday"}, {"resulttype": "everything"},
])
def test_bad_requests_get_the_same_error(server, reference, params):
    response = assert_same(server, reference, SETTLEMENTS, params, direct=False)
    assert response.status_code == 400
    assert response.json()["description"]


@st.composite
def item_queries(draw) -> dict:
    params: dict[str, str] = {}
    if draw(st.booleans()):
        params["limit"] = str(draw(st.sampled_from([1, 2, 10, 37, 100, 10000])))
    if draw(st.booleans()):
        params["offset"] = str(draw(st.integers(0, 120)))
    if draw(st.booleans()):
        west, south = draw(st.floats(69, 79)), draw(st.floats(39, 42.5))
        width, height = draw(st.floats(0.05, 5)), draw(st.floats(0.05, 3))
        params["bbox"] = f"{west},{south},{west + width},{south + height}"
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(["name", "population", "region_en",
                                              "elevation_gebco_m", "geonames_id"]),
                             min_size=1, max_size=3, unique=True))
        params["sortby"] = ",".join(draw(st.sampled_from(["", "-", "+"])) + k for k in keys)
    if draw(st.booleans()):
        params["properties"] = ",".join(draw(st.lists(
            st.sampled_from(["name", "population", "region_ru", "region_ky"]), min_size=1,
            max_size=3, unique=True)))
    if draw(st.booleans()):
        params["skipGeometry"] = draw(st.sampled_from(["true", "false"]))
    if draw(st.booleans()):
        params["filter"] = draw(st.sampled_from([
            "population > 5000", "region_en IN ('Chuy Region', 'Naryn Region')",
            "name LIKE '%a%' OR population < 2000",
            "S_INTERSECTS(geometry, POLYGON((72 40, 76 40, 76 42, 72 42, 72 40)))",
            "CASEI(region_en) = CASEI('osh region')", "population BETWEEN 3000 AND 9000"]))
    if draw(st.booleans()):
        params["resulttype"] = "hits"
    return params


@SETTINGS
@given(params=item_queries())
def test_generated_queries_answer_alike(server, reference, params):
    assert_same(server, reference, SETTLEMENTS, params)


def test_whole_features_come_from_stored_text(server, published_home):
    """Whole features are copied from the text stored at publish time; pages with a property
    selection or without geometry are written from the GeoPackage rows."""
    folder = published_home / "datasets" / "settlements"
    stored = list(folder.glob("*/settlements.features.sqlite"))
    assert stored, "publishing wrote no stored feature text"
    for params, source in (({"limit": "5", "sortby": "-population"}, "stored feature text"),
                           ({"limit": "5", "properties": "name"}, "GeoPackage rows"),
                           ({"limit": "5", "skipGeometry": "true"}, "GeoPackage rows")):
        response = server.get(SETTLEMENTS, params=params)
        assert source in response.headers["Server-Timing"], params
    # An index of the GeoPackage, not a download.
    record = json.loads((stored[0].parent / "record.json").read_text())
    files = [asset["file"] for asset in record["assets"]]
    assert "settlements.gpkg" in files and "settlements.features.sqlite" not in files
    version = stored[0].parent.name
    assert server.get(f"/assets/settlements/{version}/settlements.features.sqlite") \
        .status_code == 404
