"""OGC API Features over HTTP: every query parameter applied, checked against a reference
computed independently with fiona and shapely on the sample source files."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import urllib.parse
from functools import cache

import fiona
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import box, shape

from tests.conftest import SOURCES

ITEMS = "/ogc/collections/settlements/items"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@cache
def settlements() -> tuple[dict, ...]:
    """The source features as plain dicts: properties plus a shapely geometry."""
    with fiona.open(SOURCES / "settlements.geojson") as layer:
        return tuple({**dict(f.properties), "_geometry": shape(f.geometry)} for f in layer)


REGIONS = sorted({s["region_en"] for s in settlements()})
PREFIXES = sorted({s["name"][:2] for s in settlements()})


def matched(server, **params) -> int:
    response = server.get(ITEMS, params={**params, "resulttype": "hits"})
    assert response.status_code == 200, response.text
    return response.json()["numberMatched"]


def all_ids(server, **params) -> list[int]:
    """Walk every page through rel=next links, as a client would."""
    url, ids = f"{server.url}{ITEMS}", []
    query = {**params, "limit": 25}
    while url:
        response = server.get(url.removeprefix(server.url), params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [f["properties"]["geonames_id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        query = None  # the next link carries the query
    return ids


# -- generated CQL2 filters with their Python meaning -------------------------------------

OPERATORS = {"=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
             "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


@st.composite
def predicates(draw):
    kind = draw(st.sampled_from(["compare", "region", "like", "between", "in", "spatial",
                                 "casei"]))
    if kind == "compare":
        op = draw(st.sampled_from(sorted(OPERATORS)))
        value = draw(st.integers(0, 1_100_000))
        return f"population {op} {value}", lambda s: OPERATORS[op](s["population"], value)
    if kind == "region":
        region = draw(st.sampled_from(REGIONS))
        return f"region_en = '{region}'", lambda s: s["region_en"] == region
    if kind == "like":
        prefix = draw(st.sampled_from(PREFIXES))
        return f"name LIKE '{prefix}%'", lambda s: s["name"].startswith(prefix)
    if kind == "between":
        low, high = sorted(draw(st.lists(st.integers(0, 300_000), min_size=2, max_size=2)))
        return (f"population BETWEEN {low} AND {high}",
                lambda s: low <= s["population"] <= high)
    if kind == "in":
        chosen = draw(st.lists(st.sampled_from(REGIONS), min_size=1, max_size=3, unique=True))
        listed = ", ".join(f"'{r}'" for r in chosen)
        return f"region_en IN ({listed})", lambda s: s["region_en"] in chosen
    if kind == "casei":
        region = draw(st.sampled_from(REGIONS))
        return (f"CASEI(region_en) = CASEI('{region.upper()}')",
                lambda s: s["region_en"].lower() == region.lower())
    west, south = draw(st.floats(69, 79)), draw(st.floats(39, 42.5))
    width, height = draw(st.floats(0.1, 4)), draw(st.floats(0.1, 2))
    area = box(west, south, west + width, south + height)
    function = draw(st.sampled_from(["S_INTERSECTS", "S_WITHIN", "S_DISJOINT"]))
    tests = {"S_INTERSECTS": lambda g: g.intersects(area), "S_WITHIN": lambda g: g.within(area),
             "S_DISJOINT": lambda g: g.disjoint(area)}
    return (f"{function}(geometry, {area.wkt})", lambda s: tests[function](s["_geometry"]))


@st.composite
def filters(draw, depth=2):
    if depth == 0 or draw(st.booleans()):
        return draw(predicates())
    left_text, left = draw(filters(depth=depth - 1))
    right_text, right = draw(filters(depth=depth - 1))
    if draw(st.booleans()):
        return f"({left_text}) AND ({right_text})", lambda s: left(s) and right(s)
    return f"({left_text}) OR ({right_text})", lambda s: left(s) or right(s)


@SETTINGS
@given(case=filters())
def test_cql2_filters_match_the_reference(server, case):
    text, meaning = case
    expected = sorted(s["geonames_id"] for s in settlements() if meaning(s))
    assert sorted(all_ids(server, filter=text)) == expected, text


@SETTINGS
@given(case=predicates())
def test_cql2_json_and_post_give_the_same_answers(server, case):
    text, meaning = case
    expected = sum(1 for s in settlements() if meaning(s))
    if "BETWEEN" in text:  # also exercise the CQL2 1.0 three-argument JSON form
        low, high = (int(v) for v in re.findall(r"\d+", text))
        document = {"op": "between", "args": [{"property": "population"}, low, high]}
        assert matched(server, filter=json.dumps(document), **{"filter-lang": "cql2-json"}) \
            == expected
    assert matched(server, filter=text) == expected


@SETTINGS
@given(west=st.floats(69, 79.5), south=st.floats(39, 43), size=st.floats(0.01, 3))
def test_bbox_matches_the_reference(server, west, south, size):
    area = box(west, south, west + size, south + size)
    expected = sorted(s["geonames_id"] for s in settlements() if s["_geometry"].intersects(area))
    bbox = ",".join(str(v) for v in area.bounds)
    assert sorted(all_ids(server, bbox=bbox)) == expected


SORT_KEYS = ["population", "name", "region_en", "elevation_gebco_m"]


@SETTINGS
@given(keys=st.lists(st.tuples(st.sampled_from(SORT_KEYS), st.booleans()), min_size=1,
                     max_size=3, unique_by=lambda k: k[0]))
def test_sortby_orders_like_python(server, keys):
    sortby = ",".join(("-" if descending else "+") + name for name, descending in keys)
    response = server.get(ITEMS, params={"sortby": sortby, "limit": 200})
    got = [tuple(f["properties"][name] for name, _ in keys) for f in response.json()["features"]]
    expected = [tuple(s[name] for name, _ in keys) for s in settlements()]
    for name, descending in reversed(keys):  # stable sorts, last key first
        index = [k for k, _ in keys].index(name)
        expected.sort(key=lambda row, i=index: row[i], reverse=descending)
    assert got == expected


def test_paging_visits_every_feature_once(server):
    ids = all_ids(server)
    assert len(ids) == len(set(ids)) == len(settlements())
    page = server.get(ITEMS, params={"limit": 10, "offset": 20}).json()
    rels = {link["rel"] for link in page["links"]}
    assert {"next", "prev"} <= rels
    assert page["numberMatched"] == 112 and page["numberReturned"] == 10


def test_limit_bounds(server):
    assert len(server.get(ITEMS, params={"limit": 10000}).json()["features"]) == 112
    response = server.get(ITEMS, params={"limit": 10001})
    assert response.status_code == 400 and "limit" in response.json()["description"].lower()


def test_properties_skip_geometry_and_equality(server):
    page = server.get(ITEMS, params={"properties": "name,population", "skipGeometry": "true",
                                     "region_en": "Naryn Region", "limit": 200}).json()
    expected = sum(1 for s in settlements() if s["region_en"] == "Naryn Region")
    assert page["numberMatched"] == expected > 0
    for feature in page["features"]:
        assert set(feature["properties"]) == {"name", "population"}
        assert feature["geometry"] is None


def test_free_text_search(server):
    expected = sum(1 for s in settlements() if "osh" in s["name"].lower()
                   or any("osh" in str(s[k]).lower() for k in s if isinstance(s[k], str)))
    assert matched(server, q="osh") == expected > 0


def test_queryables_have_json_schema_types(server):
    queryables = server.get("/ogc/collections/settlements/queryables").json()
    with fiona.open(SOURCES / "settlements.geojson") as layer:
        schema = dict(layer.schema["properties"])
    types = {"int": "integer", "int32": "integer", "int64": "integer", "float": "number",
             "str": "string"}
    for name, fiona_type in schema.items():
        assert queryables["properties"][name]["type"] == types[fiona_type.split(":")[0]], name


CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def test_output_crs_with_axis_order_and_header(server):
    source = next(s for s in settlements() if s["geonames_id"] == 1528249)["_geometry"]
    latlon = server.get(f"{ITEMS}/1528249", params={"crs": f"{EPSG}4326"})
    assert latlon.headers["Content-Crs"] == f"<{EPSG}4326>"
    assert latlon.json()["geometry"]["coordinates"] == pytest.approx([source.y, source.x])
    mercator = server.get(f"{ITEMS}/1528249", params={"crs": f"{EPSG}3857"}).json()
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(source.x,
                                                                                   source.y)
    assert mercator["geometry"]["coordinates"] == pytest.approx([x, y], abs=0.01)
    default = server.get(ITEMS, params={"limit": 1})
    assert default.headers["Content-Crs"] == f"<{CRS84}>"


@pytest.mark.parametrize("zone", [42, 43])
def test_items_in_the_local_utm_zones(server, zone):
    """WGS 84 / UTM 42N and 43N, the local projected CRSs, are offered and applied (metres,
    easting then northing), in the collection's CRS list and in CSV downloads."""
    uri = f"{EPSG}326{zone}"
    assert uri in server.get("/ogc/collections/settlements?f=json").json()["crs"]
    source = next(s for s in settlements() if s["geonames_id"] == 1528249)["_geometry"]
    answer = server.get(f"{ITEMS}/1528249", params={"crs": uri})
    assert answer.headers["Content-Crs"] == f"<{uri}>"
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:326{zone}", always_xy=True).transform(
        source.x, source.y)
    assert answer.json()["geometry"]["coordinates"] == pytest.approx([x, y], abs=0.01)
    table = server.get(ITEMS, params={"f": "csv", "crs": uri, "limit": 200})
    rows = {row["geonames_id"]: row
            for row in csv.DictReader(io.StringIO(table.content.decode("utf-8-sig")))}
    assert [float(rows["1528249"]["x"]), float(rows["1528249"]["y"])] == \
        pytest.approx([x, y], abs=0.01)


def test_bbox_crs_in_lat_lon_and_mercator(server):
    expected = matched(server, bbox="74,42,75,43")
    assert expected > 0
    assert matched(server, bbox="42,74,43,75", **{"bbox-crs": f"{EPSG}4326"}) == expected
    to_mercator = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (west, east), (south, north) = to_mercator.transform([74, 75], [42, 43])
    assert matched(server, bbox=f"{west},{south},{east},{north}",
                   **{"bbox-crs": f"{EPSG}3857"}) == expected


def test_writes_are_refused(server):
    assert server.get(ITEMS).status_code == 200  # the route exists; only writes are refused
    created = requests.post(server.url + ITEMS, data="{}", timeout=10,
                            headers={"Content-Type": "application/geo+json"})
    deleted = requests.delete(f"{server.url}{ITEMS}/1528249", timeout=10)
    assert created.status_code == deleted.status_code == 405


# -- GDAL, as investors' tools use it --------------------------------------------------------

GDAL_FILTERS = {
    "population > 100000": lambda s: s["population"] > 100000,
    "region_en = 'Chuy Region'": lambda s: s["region_en"] == "Chuy Region",
    "name LIKE 'Kara%'": lambda s: s["name"].startswith("Kara"),
    "population >= 20000 AND population < 100000": lambda s: 20000 <= s["population"] < 100000,
    "population BETWEEN 10000 AND 50000": lambda s: 10000 <= s["population"] <= 50000,
    "NOT (population > 1000)": lambda s: not s["population"] > 1000,
}


@pytest.mark.parametrize("where", GDAL_FILTERS)
def test_ogrinfo_where_is_evaluated_by_the_server(server, where):
    result = subprocess.run(["ogrinfo", "-ro", "-q", "--debug", "on",
                             f"OAPIF:{server.url}/ogc", "settlements", "-where", where],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = sum(1 for s in settlements() if GDAL_FILTERS[where](s))
    assert result.stdout.count("OGRFeature(settlements)") == expected
    assert "filter=" in result.stderr and "client side" not in result.stderr


def test_ogrinfo_spatial_filter(server):
    result = subprocess.run(["ogrinfo", "-ro", "-q", "--debug", "on", f"OAPIF:{server.url}/ogc",
                             "settlements", "-spat", "72", "40", "74", "41.5"],
                            capture_output=True, text=True, timeout=120)
    area = box(72, 40, 74, 41.5)
    expected = sum(1 for s in settlements() if s["_geometry"].intersects(area))
    assert result.stdout.count("OGRFeature(settlements)") == expected > 0
    assert "bbox=72" in result.stderr  # the server, not GDAL, applied it


def test_csv_downloads_keep_geometry(server):
    points = server.get(ITEMS, params={"f": "csv", "limit": 200})
    assert points.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(points.content.decode("utf-8-sig"))))
    by_id = {int(r["geonames_id"]): r for r in rows}
    assert len(by_id) == len(settlements())
    for settlement in settlements():
        row = by_id[settlement["geonames_id"]]
        assert float(row["x"]) == pytest.approx(settlement["_geometry"].x)
        assert float(row["y"]) == pytest.approx(settlement["_geometry"].y)
    polygons = server.get("/ogc/collections/kyrgyzstan-boundary/items", params={"f": "csv"})
    (boundary,) = csv.DictReader(io.StringIO(polygons.content.decode("utf-8-sig")))
    assert boundary["wkt"].startswith("POLYGON")
    bare = server.get(ITEMS, params={"f": "csv", "skipGeometry": "true", "limit": 5})
    assert bare.status_code == 200 and "x" not in bare.text.splitlines()[0].split(",")


def test_csv_opens_in_excel_in_cyrillic_and_every_download_is_named(server):
    """Excel reads a CSV without a byte-order mark in the system's code page (Cyrillic comes
    out garbled); browsers and clients save items and files under the names given here."""
    csv_answer = server.get("/ogc/collections/kyrgyzstan-boundary/items", params={"f": "csv"})
    assert csv_answer.content.startswith(b"\xef\xbb\xbf")
    (row,) = csv.DictReader(io.StringIO(csv_answer.content.decode("utf-8-sig")))
    assert row["name_ru"] == "Кыргызстан"
    assert csv_answer.headers["Content-Disposition"] == \
        "attachment; filename=kyrgyzstan-boundary.csv"
    geojson = server.get(ITEMS, params={"f": "json", "limit": 1})
    assert geojson.headers["Content-Disposition"] == "inline; filename=settlements.geojson"
    default = server.get(ITEMS, params={"limit": 1})
    assert default.headers["Content-Disposition"] == "inline; filename=settlements.geojson"
    collection = server.get("/ogc/collections/airports?f=json").json()
    asset = next(link["href"] for link in collection["links"] if link["href"].endswith(".gpkg"))
    file_answer = server.get(urllib.parse.urlsplit(asset).path)
    assert file_answer.headers["Content-Disposition"] == "inline; filename=airports.gpkg"


@pytest.mark.embedded_only(
    "reads the stored feature text of the GeoPackage path (settlements.features.sqlite) and "
    "its Server-Timing names; PostGIS pages: tests/test_postgis_features.py")
def test_whole_features_come_from_stored_text(server, published_home):
    """Whole features are copied from the text stored at publish time; pages with a property
    selection or without geometry are written from the GeoPackage rows, and both writers give
    the same features. The stored text is an index of the GeoPackage, not a download."""
    folder = published_home / "datasets" / "settlements"
    stored = list(folder.glob("*/settlements.features.sqlite"))
    assert stored, "publishing wrote no stored feature text"
    query = {"limit": "40", "offset": "3", "sortby": "-population,name"}
    whole = server.get(ITEMS, params=query)
    assert "stored feature text" in whole.headers["Server-Timing"]
    every_property = ",".join(server.get("/ogc/collections/settlements/queryables")
                              .json()["properties"].keys() - {"geometry"})
    from_rows = server.get(ITEMS, params={**query, "properties": every_property})
    assert "GeoPackage rows" in from_rows.headers["Server-Timing"]
    assert whole.json()["features"] == from_rows.json()["features"]
    bare = server.get(ITEMS, params={"limit": "5", "skipGeometry": "true"})
    assert "GeoPackage rows" in bare.headers["Server-Timing"]
    record = json.loads((stored[0].parent / "record.json").read_text())
    files = [asset["file"] for asset in record["assets"]]
    assert "settlements.gpkg" in files and "settlements.features.sqlite" not in files
    version = stored[0].parent.name
    assert server.get(f"/assets/settlements/{version}/settlements.features.sqlite") \
        .status_code == 404


@pytest.mark.parametrize(("headers", "params", "expected"), [
    ({}, {}, "Population (people)"),
    ({}, {"lang": "ru"}, "Население (человек)"),
    ({"Accept-Language": "ky"}, {}, "Калктын саны (адам)"),
])
def test_queryables_carry_field_titles_in_the_requests_language(server, headers, params,
                                                                expected):
    """issue 17: the field's title, not its name, in the language asked by lang= or
    Accept-Language (English by default); a field without a known title keeps its name."""
    answer = requests.get(f"{server.url}/ogc/collections/settlements/queryables",
                          params={"f": "json", **params}, headers=headers, timeout=30)
    properties = answer.json()["properties"]
    assert properties["population"]["title"] == expected
    listed = {q["id"]: q["title"] for q in answer.json()["queryables"]}
    assert listed["population"] == expected
