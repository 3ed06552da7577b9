"""The STAC API at /stac against the real server: stac-api-validator, pystac-client, GDAL STACIT.

Expected answers are computed here from the published records (bboxes, temporal extents, titles)
with shapely and plain Python, never from the API's own index code.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
import rasterio
import requests
import shapely
from pystac_client import Client
from rasterio.windows import Window

from catalog.store import CatalogStore
from tests.conftest import ITEM_IDS, ROOT, SAMPLE_IDS, SOURCES, home_profile

KYRGYZ_POLYGON = {"type": "Polygon",
                  "coordinates": [[[74, 42], [75, 42], [75, 43], [74, 43], [74, 42]]]}


# -- expectations from the records ---------------------------------------------------------


def published_items(home: Path) -> dict[str, dict]:
    """item id -> {collection, bbox, start, end, title, theme} from the live records (their
    record.json files as written, not through the code under test)."""
    items = {}
    store = CatalogStore(home)
    for dataset_id, version in store.current().datasets.items():
        record = json.loads((store.version_dir(dataset_id, version) / "record.json").read_text())
        manifest = record["manifest"]
        extent = manifest["temporal_extent"]
        start = dt.datetime.fromisoformat(extent["start"] + "T00:00:00+00:00")
        end = (dt.datetime.fromisoformat(extent["end"] + "T23:59:59+00:00") if extent["end"]
               else dt.datetime.fromisoformat(record["published_at"]))
        rasters = record.get("rasters") or [{"item_id": record["id"],
                                             "bbox": record["vector"]["bbox"]}]
        for facts in rasters:
            items[facts["item_id"]] = {"collection": record["id"], "bbox": facts["bbox"],
                                       "start": start, "end": end,
                                       "collection_start": start, "collection_end": end,
                                       "title": manifest["title"]["en"],
                                       "theme": manifest["theme"]}
            if "start" in facts:  # a step of a time series: its own interval
                items[facts["item_id"]].update(
                    start=dt.datetime.fromisoformat(facts["start"] + "T00:00:00+00:00"),
                    end=dt.datetime.fromisoformat(facts["end"] + "T23:59:59+00:00"))
    return items


def ids_intersecting(items: dict, geometry: shapely.Geometry) -> set[str]:
    return {i for i, facts in items.items() if shapely.box(*facts["bbox"]).intersects(geometry)}


def ids_in_time(items: dict, start: dt.datetime | None, end: dt.datetime | None) -> set[str]:
    return {i for i, facts in items.items()
            if (end is None or facts["start"] <= end) and (start is None or facts["end"] >= start)}


@pytest.fixture(scope="module")
def items(server) -> dict[str, dict]:
    with home_profile(server.home):
        return published_items(server.home)


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client.open(f"{server.url}/stac")


# -- stac-api-validator --------------------------------------------------------------------


def test_stac_api_validator_reports_no_errors(server, stac_schemas):
    assert stac_schemas is not None, "the offline STAC schemas (../shared/stac-schemas or " \
                                     "$TAZA_STAC_SCHEMAS) are needed: the validator cannot " \
                                     "download schemas here"
    classes = ["core", "browseable", "collections", "features", "item-search", "filter",
               "item-search#sort", "item-search#fields"]
    command = [sys.executable, "-m", "tests.stac_api_validator_offline", str(stac_schemas), "--",
               "--root-url", f"{server.url}/stac", "--collection", "elevation",
               "--geometry", json.dumps(KYRGYZ_POLYGON),
               "--fields-nested-property", "properties.title", "--log-level", "WARNING"]
    for name in classes:
        command += ["--conformance", name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    report = result.stdout + result.stderr
    # It exits 0 even when it crashes: read the report, not the exit code.
    assert "Failed." not in report and "Traceback" not in report, report[-4000:]
    assert re.search(r"^Errors: none$", report, re.MULTILINE), report[-4000:]
    assert "Warnings" in report  # the report was printed to the end


# -- pystac-client -------------------------------------------------------------------------


def test_pystac_client_bbox_search(client, items):
    bbox = [79.0, 42.0, 81.0, 43.5]
    found = {i.id for i in client.search(bbox=bbox, limit=2).items()}  # pages through next
    assert found == ids_intersecting(items, shapely.box(*bbox))
    assert 0 < len(found) < len(items)


def test_pystac_client_intersects_search(client, items):
    polygon = {"type": "Polygon", "coordinates": [[[78.9, 42.9], [80.5, 42.9], [79.5, 43.6],
                                                   [78.9, 42.9]]]}
    found = {i.id for i in client.search(intersects=polygon).items()}
    assert found == ids_intersecting(items, shapely.geometry.shape(polygon))


@pytest.mark.parametrize("interval", ["2023-06-01T00:00:00Z", "2021-01-01T00:00:00Z/..",
                                      "../2021-01-01T00:00:00Z",
                                      "2022-06-01T00:00:00Z/2022-12-31T00:00:00Z"])
def test_pystac_client_datetime_search(client, items, interval):
    found = {i.id for i in client.search(datetime=interval, method="GET").items()}
    parts = interval.split("/") if "/" in interval else [interval, interval]
    start, end = (None if p == ".." else dt.datetime.fromisoformat(p) for p in parts)
    assert found == ids_in_time(items, start, end)


def test_pystac_client_cql2_text_and_json_filters(client, items):
    text = "collection = 'slope' OR (id IN ('airports', 'settlements') AND NOT id = 'airports')"
    found = {i.id for i in client.search(filter=text, filter_lang="cql2-text",
                                         method="GET").items()}
    assert found == {i for i, f in items.items() if f["collection"] == "slope"} | {"settlements"}
    box = [79.0, 42.0, 81.0, 43.5]
    cql_json = {"op": "and", "args": [
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": box}]},
        {"op": "like", "args": [{"property": "title"}, "%Kyrgyzstan%"]}]}
    found = {i.id for i in client.search(filter=cql_json, filter_lang="cql2-json").items()}
    assert found == {i for i in ids_intersecting(items, shapely.box(*box))
                     if "Kyrgyzstan" in items[i]["title"]}


def test_cql2_json_between_in_the_form_of_cql2_1_0(client, items):
    """CQL2 1.0 writes BETWEEN as args [value, low, high] (pgstac and pystac-client send it so);
    pygeofilter 0.4 knows only the draft [value, [low, high]]: both forms answer alike."""
    for args in (["a", "m"], [["a", "m"]]):
        cql_json = {"op": "between", "args": [{"property": "id"}, *args]}
        found = {i.id for i in client.search(filter=cql_json, filter_lang="cql2-json").items()}
        assert found == {i for i in items if "a" <= i <= "m"}, args


def test_pystac_client_sortby_pages_in_order(client, items):
    for method in ("GET", "POST"):
        found = [i.id for i in client.search(sortby="-properties.title", limit=2,
                                             method=method).items()]
        expected = sorted(items, key=lambda i: (items[i]["title"], i), reverse=True)
        assert [items[i]["title"] for i in found] == [items[i]["title"] for i in expected]
        assert sorted(found) == sorted(items)
    newest_first = [i.id for i in client.search(limit=1).items()]
    assert [items[i]["start"] for i in newest_first] == sorted(
        (items[i]["start"] for i in items), reverse=True)


# -- GDAL STACIT ---------------------------------------------------------------------------


def test_gdal_stacit_mosaic_of_a_search_matches_the_source(server, tmp_path):
    search = f"{server.url}/stac/search?collections=elevation"
    out = tmp_path / "window.tif"
    result = subprocess.run(
        ["gdal_translate", "-q", "-srcwin", "1200", "400", "300", "200",
         f'STACIT:"{search}":asset=data', str(out)],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    with rasterio.open(out) as mosaic, rasterio.open(SOURCES / "elevation.tif") as source:
        expected = source.read(1, window=Window(1200, 400, 300, 200))
        got = mosaic.read(1)
        assert mosaic.crs == source.crs
        assert np.array_equal(got, expected)
        assert (expected != source.nodata).any()  # a window with real values


# -- collections, free text, fields, consistency with the static tree ------------------------


def test_collection_search_by_theme_bbox_datetime_and_text(server, items):
    def ids(**params) -> list[str]:
        response = server.get("/stac/collections", params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return sorted(c["id"] for c in response.json()["collections"])

    collections = {f["collection"]: f for f in items.values()}
    assert ids() == sorted(SAMPLE_IDS)
    assert ids(theme="land") == sorted(c for c, f in collections.items() if f["theme"] == "land")
    assert ids(theme="land,coverage", bbox="79,42,81,43.5") == sorted(
        c for c in ids_intersecting({c: collections[c] for c in collections},
                                    shapely.box(79, 42, 81, 43.5))
        if collections[c]["theme"] in ("land", "coverage"))
    assert ids(datetime="2023-06-01T00:00:00Z") == sorted(
        c for c in collections
        if collections[c]["collection_start"] <= dt.datetime(2023, 6, 1, tzinfo=dt.UTC)
        <= collections[c]["collection_end"])
    assert ids(q="аэропорт") == ["airports"]  # Russian
    assert ids(q="Аэропорттор") == ["airports"]  # Kyrgyz
    assert "elevation" in ids(q="бийиктик")  # Kyrgyz keyword of the elevation layer
    assert len(ids(limit="2")) == 2


def test_free_text_item_search_in_every_language(server):
    def ids(q: str) -> set[str]:
        response = server.get("/stac/search", params={"q": q, "fields": "id"})
        assert response.status_code == 200, response.text
        return {f["id"] for f in response.json()["features"]}

    assert ids("airports") == {"airports"}
    assert ids("аэропорт") == {"airports"}
    assert ids("рельеф") >= {"elevation", "slope"}
    assert ids("xyznothing") == set()
    assert ids("xyznothing, аэропорт") == {"airports"}  # comma = OR


def test_fields_and_post_paging_with_a_body(server):
    first = server.get("/stac/search", params={"limit": 2, "fields": "id,-links"}).json()
    assert all(set(f) == {"type", "stac_version", "id"} for f in first["features"])
    body = {"limit": 4, "fields": {"exclude": ["assets", "geometry"]}}
    page = requests.post(f"{server.url}/stac/search", json=body, timeout=30).json()
    next_link = next(link for link in page["links"] if link["rel"] == "next")
    assert next_link["method"] == "POST" and next_link["body"]["fields"] == body["fields"]
    rest = requests.post(next_link["href"], json=next_link["body"], timeout=30).json()
    assert not any("assets" in f or "geometry" in f for f in rest["features"])
    seen = [f["id"] for f in page["features"] + rest["features"]]
    while next_link := next((link for link in rest["links"] if link["rel"] == "next"), None):
        rest = requests.post(next_link["href"], json=next_link["body"], timeout=30).json()
        seen += [f["id"] for f in rest["features"]]
    assert sorted(seen) == sorted(ITEM_IDS)


DEFAULT_FIELDS = {"type", "stac_version", "id", "geometry", "bbox", "links", "assets",
                  "properties", "collection", "stac_extensions"}


@pytest.mark.parametrize("fields", [{}, {"include": None, "exclude": None},
                                    {"include": [], "exclude": []}, {"exclude": []}])
def test_empty_fields_give_the_default_set(server, fields):
    """STAC fields extension (issue 11, item 9): an empty fields object, or include and exclude
    both null or empty, returns the default set and nothing else, as GET fields= does."""
    body = {"fields": fields, "collections": ["elevation"], "limit": 1}
    (item,) = requests.post(f"{server.url}/stac/search", json=body, timeout=30).json()["features"]
    (by_get,) = server.get("/stac/search", params={"fields": "", "collections": "elevation",
                                                   "limit": 1}).json()["features"]
    assert set(item) == DEFAULT_FIELDS and item == by_get
    assert set(item["properties"]) <= {"datetime", "start_datetime", "end_datetime"}
    assert item["properties"]


def static_items(server) -> dict[str, tuple[str, dict]]:
    """Item id -> (its URL, its JSON), walking the static tree as plain JSON (pystac would
    migrate extension fields while reading)."""
    found, queue = {}, [f"{server.url}/stac/catalog.json"]
    while queue:
        url = queue.pop()
        document = requests.get(url, timeout=30).json()
        if document["type"] == "Feature":
            found[document["id"]] = (url, document)
        queue += [urljoin(url, link["href"]) for link in document["links"]
                  if link["rel"] in ("child", "item")]
    return found


def test_api_items_match_the_static_catalog(server):
    walked = static_items(server)
    api = {f["id"]: f for f in server.get("/stac/search", params={"limit": 100}).json()["features"]}
    assert set(api) == set(walked) == set(ITEM_IDS)
    for item_id, (url, item) in walked.items():
        served = api[item_id]
        for field in ("properties", "bbox", "geometry", "stac_extensions", "collection"):
            assert served[field] == item[field], field
        for key, asset in item["assets"].items():
            absolute = urljoin(url, asset["href"])
            assert served["assets"][key] == {**asset, "href": absolute}
            assert absolute.startswith(f"{server.url}/assets/")
        links = {link["rel"]: link["href"] for link in served["links"]}
        assert links["self"] == f"{server.url}/stac/collections/{served['collection']}/items/" \
                                f"{item_id}"
        assert server.get(links["self"].removeprefix(server.url)).json()["id"] == item_id


def test_queryables_are_json_schema(server):
    for path in ("/stac/queryables", "/stac/collections/airports/queryables"):
        response = server.get(path)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/schema+json")
        schema = response.json()
        assert schema["$id"] == f"{server.url}{path}"
        assert schema["type"] == "object"
        assert {"id", "collection", "geometry", "datetime"} <= set(schema["properties"])
    airports = server.get("/stac/collections/airports/queryables").json()["properties"]
    assert airports["table:row_count"] == {"type": "integer"}
