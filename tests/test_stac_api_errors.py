"""Bad input to the STAC API: HTTP 400 with a JSON body naming the parameter, never a 500."""

from __future__ import annotations

import pytest
import requests

GET_CASES = [
    ("/stac/search", {"color": "red"}, "color"),
    ("/stac/search", {"bbox": "1,2,3"}, "bbox"),
    ("/stac/search", {"bbox": "a,b,c,d"}, "bbox"),
    ("/stac/search", {"bbox": "10,50,20,40"}, "bbox"),  # south > north
    ("/stac/search", {"bbox": "170,0,-170,10"}, "bbox"),  # antimeridian: refused, not ignored
    ("/stac/search", {"bbox": "0,0,1,1", "intersects": '{"type":"Point","coordinates":[0,0]}'},
     "intersects"),
    ("/stac/search", {"intersects": "{not json"}, "intersects"),
    ("/stac/search", {"intersects": '{"type":"Polygon","coordinates":[[[0,0],[1,1]]]}'},
     "intersects"),
    ("/stac/search", {"datetime": "1985-04-12"}, "datetime"),
    ("/stac/search", {"datetime": "2020-01-01T00:00:00"}, "datetime"),  # no time zone
    ("/stac/search", {"datetime": "../.."}, "datetime"),
    ("/stac/search", {"datetime": "2021-01-01T00:00:00Z/2020-01-01T00:00:00Z"}, "datetime"),
    ("/stac/search", {"datetime": "1985-13-12T23:20:50Z"}, "datetime"),
    ("/stac/search", {"limit": "0"}, "limit"),
    ("/stac/search", {"limit": "-1"}, "limit"),
    ("/stac/search", {"limit": "ten"}, "limit"),
    ("/stac/search", {"ids": ""}, "ids"),
    ("/stac/search", {"collections": ",,"}, "collections"),
    ("/stac/search", {"filter": "id = "}, "filter"),
    ("/stac/search", {"filter": "id = 'a'", "filter-lang": "sql"}, "filter-lang"),
    ("/stac/search", {"filter-lang": "cql2-text"}, "filter-lang"),
    ("/stac/search", {"filter": "id = 'a'", "filter-crs": "EPSG:3857"}, "filter-crs"),
    ("/stac/search", {"filter": '{"op": "=", "args": [1]', "filter-lang": "cql2-json"},
     "filter"),
    ("/stac/search", {"filter": "title = 5"}, "filter"),  # title is text
    ("/stac/search", {"filter": "T_BEFORE(title, TIMESTAMP('2020-01-01T00:00:00Z'))"}, "filter"),
    ("/stac/search", {"filter": "\"bad name;\" = 1"}, "filter"),
    ("/stac/search", {"sortby": "-geometry"}, "sortby"),
    ("/stac/search", {"sortby": "properties.a b"}, "sortby"),
    ("/stac/search", {"sortby": "-properties.no_such_field"}, "sortby"),  # issue 11, item 9
    ("/stac/search", {"sortby": "title,nonexistent"}, "sortby"),
    ("/stac/collections/airports/items", {"sortby": "nonexistent"}, "sortby"),
    ("/stac/search", {"fields": "properties.a b"}, "fields"),
    ("/stac/search", {"q": " , "}, "q"),
    ("/stac/search", {"q": "---"}, "q"),
    ("/stac/search", {"token": "not-a-token"}, "token"),
    ("/stac/collections", {"theme": ""}, "theme"),
    ("/stac/collections", {"bbox": "1,2"}, "bbox"),
    ("/stac/collections", {"filter": "id='x'"}, "filter"),
    ("/stac/collections", {"token": "x"}, "token"),
    ("/stac/collections/elevation/items", {"collections": "slope"}, "collections"),
    ("/stac/collections/elevation/items", {"limit": "x"}, "limit"),
    ("/stac/collections/elevation", {"f": "json"}, "f"),
    ("/stac", {"page": "2"}, "page"),
    ("/stac/conformance", {"x": "1"}, "x"),
    ("/stac/queryables", {"x": "1"}, "x"),
]

POST_CASES = [
    ({"bbox": "0,0,1,1"}, "bbox"),  # JSON bodies carry arrays
    ({"intersects": {"type": "Polygon"}}, "intersects"),
    ({"limit": "many"}, "limit"),
    ({"limit": True}, "limit"),
    ({"ids": [1, 2]}, "ids"),
    ({"collections": [None]}, "collections"),
    ({"sortby": [{"field": "id", "direction": "up"}]}, "sortby"),
    ({"sortby": [{"name": "id"}]}, "sortby"),
    ({"sortby": [{"field": "properties.no_such_field", "direction": "asc"}]}, "sortby"),
    ({"fields": None}, "fields"),
    ({"fields": {"include": "id"}}, "fields"),
    ({"filter": "id = 'a'"}, "filter"),  # a string where cql2-json (the default) is expected
    ({"filter": {"op": "nonsense", "args": []}}, "filter"),
    ({"filter": {"op": "=", "args": [{"property": "id"}, "a"]}, "filter-lang": "cql3"},
     "filter-lang"),
    ({"datetime": 20200101}, "datetime"),
    ({"q": 5}, "q"),
    ({"token": 5}, "token"),
    ({"unknown": 1}, "unknown"),
]


def assert_json_400(response: requests.Response, name: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["description"].startswith(f"{name}") or name in body["description"], body


@pytest.mark.parametrize(("path", "params", "name"), GET_CASES)
def test_bad_query_parameters_answer_400_naming_them(server, path, params, name):
    assert_json_400(server.get(path, params=params), name)


@pytest.mark.parametrize(("body", "name"), POST_CASES)
def test_bad_search_bodies_answer_400_naming_the_field(server, body, name):
    response = requests.post(f"{server.url}/stac/search", json=body, timeout=30)
    assert_json_400(response, name)


def test_repeated_parameters_and_malformed_bodies(server):
    assert_json_400(server.get("/stac/search?limit=1&limit=2"), "limit")
    not_json = requests.post(f"{server.url}/stac/search", data="{", timeout=30,
                             headers={"Content-Type": "application/json"})
    assert_json_400(not_json, "body")
    array = requests.post(f"{server.url}/stac/search", json=[1], timeout=30)
    assert_json_400(array, "body")
    too_big = requests.post(f"{server.url}/stac/search", timeout=30,
                            data=b'{"q": "' + b"a" * (2 << 20) + b'"}',
                            headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["status"] == 413


def test_sortby_on_known_fields_still_sorts(server):
    """The 400 for unknown sortby fields leaves every queryable sortable (GET and POST)."""
    titles = [f["properties"]["title"] for f in server.get(
        "/stac/search", params={"sortby": "-properties.title", "limit": 100}).json()["features"]]
    assert titles == sorted(titles, reverse=True) and len(titles) > 1
    body = {"sortby": [{"field": "title", "direction": "asc"}], "limit": 100}
    posted = requests.post(f"{server.url}/stac/search", json=body, timeout=30).json()
    assert [f["properties"]["title"] for f in posted["features"]] == sorted(titles)
    for field in ("id", "collection", "datetime", "properties.proj:epsg"):
        assert server.get("/stac/search", params={"sortby": field}).status_code == 200, field


def test_unknown_objects_answer_404_json(server):
    for path in ("/stac/collections/nope", "/stac/collections/nope/items",
                 "/stac/collections/elevation/items/nope", "/stac/nope.json",
                 "/stac/..%2f..%2fcurrent.json"):
        response = server.get(path)
        assert response.status_code == 404, path
        assert response.json()["status"] == 404


@pytest.mark.parametrize("path, named", [("nope.json", "nope.json"),
                                         ("land/nope/collection.json", "land/nope/collection.json"),
                                         ("..%2f..%2fcurrent.json", "../../current.json")])
def test_a_missing_static_stac_document_is_named_in_its_404(server, path, named):
    """On both profiles alike (files on the embedded one, the release's rows on PostgreSQL)."""
    response = server.get(f"/stac/{path}")
    assert response.status_code == 404
    assert response.json()["description"] == f"no STAC document {named!r}"


def test_sql_metacharacters_are_values_not_sql(server):
    # Quotes, comments and FTS operators travel as bound values: no error, no match.
    for params in ({"ids": "x' OR '1'='1"}, {"collections": "a\"; DROP TABLE items; --"},
                   {"q": "NEAR(a b) OR \"x"}, {"filter": "id = 'x OR 1=1; --'"}):
        response = server.get("/stac/search", params=params)
        assert response.status_code == 200, (params, response.text)
        assert response.json()["features"] == []
    assert server.get("/stac/search").json()["numberReturned"] > 0  # the table is still there
