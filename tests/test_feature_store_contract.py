"""The FeatureStore contract (catalog/features/store.py), checked against an independent
reference computed in Python on the source features (tests/feature_reference.py).

Every backend in BACKENDS runs every test. A backend is made once per module from the pytest
request and the synthetic GeoPackage's path, and returns an opener taking the store options the
contract uses (id_field, time_field, temporal_extent): the PostGIS backend loads the GeoPackage
into a database of the session's private PostgreSQL (tests/conftest.py) as publishing does.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import mapbox_vector_tile
import numpy as np
import orjson
import psycopg
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_json
from pygeofilter.parsers.cql2_text import parse as parse_text
from shapely.geometry import shape

from catalog.core.parse import ParameterError
from catalog.core.webmercator import TileBounds
from catalog.features import (
    CRS84,
    FeatureStore,
    GeoPackageFeatureStore,
    ItemsQuery,
    LayerDescription,
)
from catalog.features.postgis import PostgisFeatureStore
from catalog.postgis import load_layer
from tests.feature_reference import (
    BY_FID,
    EXTENT,
    FILTERS,
    SORT_KEYS,
    SOURCE,
    TEXT,
    N,
    boxes,
    evaluate,
    ref_ids,
    sort_reference,
    to_json,
    to_text,
    write_geopackage,
)

Opener = Callable[..., FeatureStore]


def geopackage_backend(request: pytest.FixtureRequest, source: str) -> Opener:
    return lambda **options: GeoPackageFeatureStore(source, table="places", **options)


def postgis_backend(request: pytest.FixtureRequest, source: str) -> Opener:
    cluster = request.getfixturevalue("private_postgres")
    url = cluster.create_database("feature_store_contract")
    with psycopg.connect(url) as connection:
        layer = load_layer(connection, "places", 1, source, "places")
    return lambda **options: PostgisFeatureStore(url, layer, **options)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, str], Opener]] = {
    "geopackage": geopackage_backend,
    "postgis": postgis_backend,
}
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_geopackage(str(tmp_path_factory.mktemp("contract") / "places.gpkg"))


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def open_store(request, source: str) -> Callable[..., FeatureStore]:
    return BACKENDS[request.param](request, source)


@pytest.fixture(scope="module")
def store(open_store) -> FeatureStore:
    return open_store(temporal_extent=EXTENT)


def ids(features: list[dict]) -> list:
    return [f["id"] for f in features]


def everything(store: FeatureStore, **query) -> list:
    """The ids of every feature a query selects (all on one page, without geometries)."""
    return ids(store.page(ItemsQuery(limit=N + 10, skip_geometry=True, **query)).features)


def problem(store: FeatureStore, **query) -> str:
    with pytest.raises(ParameterError) as err:
        store.page(ItemsQuery(**query))
    return str(err.value)


# --- describe, queryables, pages ---------------------------------------------------------------

FIELDS = {
    "code": {"type": "string"}, "name": {"type": "string"}, "region": {"type": "string"},
    "pop": {"type": "integer"}, "area": {"type": "number"},
    "founded": {"type": "string", "format": "date"},
    "updated": {"type": "string", "format": "date-time"}, "active": {"type": "boolean"},
}


def test_the_store_is_a_feature_store(store: FeatureStore) -> None:
    assert isinstance(store, FeatureStore)


def test_describe(store: FeatureStore, open_store) -> None:
    described = store.describe()
    assert isinstance(described, LayerDescription)
    assert described.fields == FIELDS and list(described.fields) == list(FIELDS)  # table order
    assert described.total == N and described.storage_crs == CRS84 and described.geographic
    assert described.time_field is None
    described.fields["pop"]["x-ogc-role"] = "id"  # callers may change what they get
    assert "x-ogc-role" not in store.describe().fields["pop"]
    assert open_store(id_field="code").describe().id_field == "code"
    assert open_store(time_field="founded").describe().time_field == "founded"


def test_queryables(store: FeatureStore) -> None:
    assert store.queryables() == FIELDS


def test_default_page_and_feature_shape(store: FeatureStore) -> None:
    page = store.page(ItemsQuery())
    assert page.matched == N and ids(page.features) == list(range(1, 11))
    for feature in page.features:
        src = BY_FID[feature["id"]]
        props = src["properties"]
        assert feature["type"] == "Feature"
        assert feature["properties"]["active"] is props["active"]
        assert feature["properties"]["founded"] == (props["founded"] and
                                                    props["founded"].isoformat())
        if props["updated"] is not None:
            assert datetime.fromisoformat(feature["properties"]["updated"]) == props["updated"]
        geom = feature["geometry"]
        assert (geom is None) == (src["geometry"] is None)
        if geom is not None:
            assert shape(geom).equals_exact(src["geometry"], 0)
    json.dumps(page.features)  # plain values


@settings(max_examples=60, **SETTINGS)
@given(offset=st.integers(0, N + 5), limit=st.integers(0, 40))
def test_paging(store: FeatureStore, offset: int, limit: int) -> None:
    page = store.page(ItemsQuery(offset=offset, limit=limit, skip_geometry=True))
    assert ids(page.features) == list(range(1, N + 1))[offset: offset + limit]
    assert page.matched == N


def test_count(store: FeatureStore) -> None:
    query = ItemsQuery(equals=[("region", "Osh")], limit=1)
    expected = len(ref_ids(lambda f: f["properties"]["region"] == "Osh"))
    assert store.count(query) == expected == store.page(query).matched


def test_properties_and_skip_geometry(store: FeatureStore) -> None:
    page = store.page(ItemsQuery(properties=["pop", "name"], skip_geometry=True, limit=5))
    for feature in page.features:
        assert list(feature["properties"]) == ["name", "pop"]  # layer order
        assert feature["geometry"] is None
        assert feature["properties"]["pop"] == BY_FID[feature["id"]]["properties"]["pop"]


def test_get_by_id_field(store: FeatureStore, open_store) -> None:
    feature = store.get("7")
    assert feature["id"] == 7 and feature["properties"]["code"] == "KG-0007"
    by_code = open_store(id_field="code")
    feature = by_code.get("KG-0042")
    assert feature["id"] == "KG-0042" and feature["properties"]["code"] == "KG-0042"
    assert ids(by_code.page(ItemsQuery(limit=2)).features) == ["KG-0001", "KG-0002"]
    for missing, layer in [("9999", store), ("abc", store), ("KG-9999", by_code)]:
        assert layer.get(missing) is None


def test_page_json_holds_the_same_features(store: FeatureStore) -> None:
    """The fast form (for orjson) and the plain form of a page are the same features."""
    for query in (ItemsQuery(limit=N), ItemsQuery(limit=7, offset=30, sortby=[("pop", True)]),
                  ItemsQuery(limit=50, bbox=[70, 39, 76, 42]),
                  ItemsQuery(limit=50, properties=["name"], skip_geometry=True),
                  ItemsQuery(limit=50, filter=parse_text("region = 'Osh' OR active = false"))):
        fast, plain = store.page_json(query), store.page(query)
        written = orjson.dumps(fast.features, option=orjson.OPT_SERIALIZE_NUMPY)
        assert fast.matched == plain.matched and fast.source
        assert json.loads(written) == json.loads(json.dumps(plain.features))


def test_iterate_yields_every_feature(store: FeatureStore) -> None:
    seen = [feature for batch in store.iterate(batch=37) for feature in batch]
    assert [f.id for f in seen] == list(range(1, N + 1))
    for feature in seen:
        src = BY_FID[feature.id]
        assert feature.properties["region"] == src["properties"]["region"]
        assert feature.properties["active"] is src["properties"]["active"]
        if src["geometry"] is None:
            assert feature.geometry is None
        else:
            assert feature.geometry.equals_exact(src["geometry"], 0)


def test_tile_holds_the_features_in_it(store: FeatureStore) -> None:
    """A map tile over part of the layer: every feature meeting the tile is in it, none far
    from it (a tile draws a small buffer beyond its edges)."""
    tile = TileBounds.checked(6, 44, 23)  # 67.5-73.1 E, 40.98-45.09 N
    west, south, east, north = tile.lonlat
    decoded = mapbox_vector_tile.decode(store.tile(tile, "places"))
    found = {feature["id"] for feature in decoded["places"]["features"]}
    inside = set(ref_ids(lambda f: f["geometry"] is not None and
                         f["geometry"].intersects(shapely.box(west, south, east, north))))
    pad = (east - west) / 8
    near = set(ref_ids(lambda f: f["geometry"] is not None and f["geometry"].intersects(
        shapely.box(west - pad, south - pad, east + pad, north + pad))))
    assert inside and inside <= found <= near
    empty = TileBounds.checked(6, 10, 10)
    assert store.tile(empty, "places") == b""


# --- bbox, equality, sortby, q -----------------------------------------------------------------

@settings(max_examples=80, **SETTINGS)
@given(box=boxes())
def test_bbox(store: FeatureStore, box: tuple) -> None:
    rect = shapely.box(*box)
    expected = ref_ids(lambda f: f["geometry"] is not None and f["geometry"].intersects(rect))
    assert everything(store, bbox=list(box)) == expected
    assert store.count(ItemsQuery(bbox=list(box))) == len(expected)


def test_bbox_touching_edge_and_antimeridian(store: FeatureStore) -> None:
    point = next(f for f in SOURCE if isinstance(f["geometry"], shapely.Point))
    x, y = point["geometry"].x, point["geometry"].y
    assert point["fid"] in everything(store, bbox=[x, y, x + 1, y + 1])
    # Degenerate boxes (a point, a line) are valid queries too.
    for box, literal in [
        ((x, y, x, y), shapely.Point(x, y)),
        ((x, y - 0.5, x, y + 0.5), shapely.LineString([(x, y - 0.5), (x, y + 0.5)])),
    ]:
        expected = ref_ids(
            lambda f, g=literal: f["geometry"] is not None and f["geometry"].intersects(g))
        assert point["fid"] in expected
        assert everything(store, bbox=list(box)) == expected
    west = ref_ids(lambda f: f["geometry"] is not None and f["geometry"].bounds[0] <= 75)
    assert everything(store, bbox=[170, -90, 75, 90]) == west  # minx > maxx: across 180


def test_property_equality(store: FeatureStore) -> None:
    some = SOURCE[11]["properties"]
    cases = [
        ([("region", "Osh")], lambda p: p["region"] == "Osh"),
        ([("pop", str(some["pop"]))], lambda p: p["pop"] == some["pop"]),
        ([("area", str(some["area"]))], lambda p: p["area"] == some["area"]),
        ([("active", "true"), ("region", "Naryn")],
         lambda p: p["active"] and p["region"] == "Naryn"),
        ([("active", "0")], lambda p: not p["active"]),
        ([("founded", some["founded"].isoformat())], lambda p: p["founded"] == some["founded"]),
        ([("name", "no such name")], lambda p: False),
    ]
    for equals, predicate in cases:
        expected = ref_ids(lambda f, pr=predicate: pr(f["properties"]))
        assert everything(store, equals=equals) == expected, equals


@settings(max_examples=60, **SETTINGS)
@given(keys=SORT_KEYS, offset=st.integers(0, N), limit=st.integers(1, 60))
def test_sortby(store: FeatureStore, keys: list, offset: int, limit: int) -> None:
    sortby = [(name, order == "-") for name, order in keys]
    page = store.page(ItemsQuery(sortby=sortby, offset=offset, limit=limit, skip_geometry=True))
    assert ids(page.features) == sort_reference(keys)[offset: offset + limit]


@pytest.mark.parametrize("q", ["bish", "ош", "Кара", "ысык", "_", "%", "50% z", "kg-000",
                               "naryn,talas", " , ak-", "zzz", "көл"])
def test_q(store: FeatureStore, q: str) -> None:
    terms = [t.strip().lower() for t in q.split(",") if t.strip()]
    expected = ref_ids(
        lambda f: any(term in (f["properties"][c] or "").lower() for term in terms for c in TEXT))
    assert everything(store, q=q) == expected


# --- datetime ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "hit"), [
    ("2020-06-01", True), ("2020-06-01T12:00:00Z", True), ("2015-01-01", True),
    ("2014-12-31", False), ("2014-12-31T23:59:59Z", False), ("2025-01-01", False),
    ("2024-12-31T23:59:59.5Z", True), ("2010-01-01/2015-01-01", True),
    ("2010-01-01/2014-12-31", False), ("../2015-01-01T00:00:00Z", True),
    ("2025-01-01/..", False), ("2024-12-31/..", True), ("../..", True), ("/2016-01-01", True),
    ("2020-01-01T10:00:00+06:00/2021-01-01", True),
])
def test_datetime_against_temporal_extent(store: FeatureStore, value: str, hit: bool) -> None:
    assert store.count(ItemsQuery(datetime=value)) == (N if hit else 0)


def _in_span(value, start: datetime | None, end: datetime | None) -> bool | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):  # a date is its whole day
        lo = datetime(value.year, value.month, value.day, tzinfo=UTC)
        hi = lo + timedelta(days=1) - timedelta(milliseconds=1)
    else:
        lo = hi = value
    return (start is None or hi >= start) and (end is None or lo <= end)


@pytest.mark.parametrize("field", ["founded", "updated"])
@pytest.mark.parametrize(("value", "start", "end"), [
    ("2020-03-04", datetime(2020, 3, 4, tzinfo=UTC),
     datetime(2020, 3, 4, 23, 59, 59, 999000, UTC)),
    ("2018-01-01/2019-06-30", datetime(2018, 1, 1, tzinfo=UTC),
     datetime(2019, 6, 30, 23, 59, 59, 999000, UTC)),
    ("../2016-02-01T00:00:00Z", None, datetime(2016, 2, 1, tzinfo=UTC)),
    ("2021-07-01T06:00:00+06:00/..", datetime(2021, 7, 1, tzinfo=UTC), None),
])
def test_datetime_on_time_field(open_store, field: str, value: str, start, end) -> None:
    timed = open_store(time_field=field)
    expected = ref_ids(lambda f: _in_span(f["properties"][field], start, end))
    assert everything(timed, datetime=value) == expected


def test_datetime_without_temporal_information(open_store) -> None:
    assert "datetime" in problem(open_store(), datetime="2020-01-01")


# --- CQL2 --------------------------------------------------------------------------------------

@settings(max_examples=150, **SETTINGS)
@given(tree=FILTERS)
def test_cql2_filters_match_reference(store: FeatureStore, tree: tuple) -> None:
    expected = ref_ids(lambda f: evaluate(tree, f) is True)
    for parsed in (parse_text(to_text(tree)), parse_json(json.dumps(to_json(tree)))):
        assert everything(store, filter=parsed) == expected, to_text(tree)
        assert store.count(ItemsQuery(filter=parsed)) == len(expected)


def test_cql2_combined_with_other_parameters(store: FeatureStore) -> None:
    box = (70, 39.5, 76, 42.5)
    tree = ("or", ("cmp", "pop", ">", 5000), ("like", "name", "%1", False, False))
    expected = ref_ids(lambda f: evaluate(tree, f) is True and f["properties"]["active"]
                       and f["geometry"] is not None
                       and f["geometry"].intersects(shapely.box(*box)))
    page = store.page(ItemsQuery(filter=parse_text(to_text(tree)), bbox=list(box),
                                 equals=[("active", "true")], sortby=[("area", True)], limit=7,
                                 offset=3, skip_geometry=True))
    by_area = sorted(expected, key=lambda fid: -BY_FID[fid]["properties"]["area"])
    assert ids(page.features) == by_area[3:10] and page.matched == len(expected)


@pytest.mark.parametrize(("text", "predicate"), [
    ("pop + 10 > area * 2", lambda p: p["pop"] + 10 > p["area"] * 2),
    ("pop / 4 >= 100.5", lambda p: p["pop"] / 4 >= 100.5),
    ("pop / 4 * 4 <> pop", lambda p: p["pop"] / 4 * 4 != p["pop"]),  # real division
    ("pop / 4 < 1", lambda p: p["pop"] / 4 < 1),
    ("pop - area < 0", lambda p: p["pop"] - p["area"] < 0),
    ("pop > area", lambda p: p["pop"] > p["area"]),
    ("ACCENTI(name) LIKE 'Bokonbaev%'", lambda p: (p["name"] or "").startswith("Bökönbaev")),
    ("ACCENTI(name) = ACCENTI('Bökönbaev 7')", lambda p: p["name"] == "Bökönbaev 7"),
    ("CASEI(region) = CASEI('OSH')", lambda p: p["region"] == "Osh"),
    ("updated > TIMESTAMP('2020-06-01T06:00:00Z')",
     lambda p: p["updated"] > datetime(2020, 6, 1, 6, tzinfo=UTC)),
    ("founded >= TIMESTAMP('2020-06-01T12:00:00Z')", lambda p: p["founded"] > date(2020, 6, 1)),
    ("founded = '2019-05-05'", lambda p: p["founded"] == date(2019, 5, 5)),
    ("INCLUDE", lambda p: True),
    ("EXCLUDE", lambda p: False),
])
def test_cql2_expressions(store: FeatureStore, text: str, predicate) -> None:
    def safe(f: dict) -> bool:
        try:
            return bool(predicate(f["properties"]))
        except TypeError:  # a NULL operand: unknown, so not matched
            return False

    assert everything(store, filter=parse_text(text)) == ref_ids(safe)


def test_cql2_spatial_literal_first_and_other_predicates(store: FeatureStore) -> None:
    poly = shapely.Polygon([(70, 39), (78, 40), (74, 43)])
    line = shapely.LineString([(69, 40), (80, 42)])
    first = next(f["geometry"] for f in SOURCE if f["geometry"] is not None)
    for text, predicate in [
        (f"S_INTERSECTS(geometry, {poly.wkt})", lambda g: g.intersects(poly)),
        (f"S_DISJOINT(geometry, {poly.wkt})", lambda g: g.disjoint(poly)),
        (f"S_CONTAINS({poly.wkt}, geometry)", lambda g: poly.contains(g)),
        (f"S_WITHIN({poly.wkt}, geometry)", lambda g: g.contains(poly)),
        (f"S_CROSSES(geometry, {line.wkt})", lambda g: g.crosses(line)),
        (f"S_OVERLAPS(geometry, {poly.wkt})", lambda g: g.overlaps(poly)),
        (f"S_TOUCHES(geometry, {poly.wkt})", lambda g: g.touches(poly)),
        (f"S_EQUALS(geometry, {first.wkt})", lambda g: g.equals(first)),
    ]:
        expected = ref_ids(lambda f, pr=predicate: f["geometry"] is not None and pr(f["geometry"]))
        assert everything(store, filter=parse_text(text)) == expected, text
    assert everything(store, filter=parse_text(f"S_CROSSES(geometry, {line.wkt})"))
    # A polygon collapsed to a line (invalid): answered as shapely answers it.
    flat = shapely.from_wkt("POLYGON ((72 39, 72 39, 69 39, 69 39, 72 39))")
    for op in ("intersects", "within", "disjoint", "contains", "touches"):
        expected = ref_ids(lambda f, o=op: f["geometry"] is not None and
                           getattr(shapely, o)(f["geometry"], flat))
        found = everything(store, filter=parse_text(f"S_{op.upper()}(geometry, {flat.wkt})"))
        assert found == expected, op
    assert ref_ids(lambda f: f["geometry"] is not None and f["geometry"].intersects(flat))
    # Two literals: a constant, true for every row (NULL geometries included) or for none.
    constant = parse_text(f"S_INTERSECTS({poly.wkt}, POINT(74 41))")
    assert store.count(ItemsQuery(filter=constant)) == N
    constant = parse_text(f"S_INTERSECTS({poly.wkt}, POINT(0 0))")
    assert store.count(ItemsQuery(filter=constant)) == 0


def test_cql2_temporal_predicates(store: FeatureStore, open_store) -> None:
    timed = open_store(time_field="founded")
    day = date(2020, 1, 1)
    span = (date(2018, 1, 1), date(2019, 12, 31))
    founded = {"property": "founded"}
    cases = [
        ({"op": "t_before", "args": [founded, {"date": "2020-01-01"}]}, lambda d: d < day),
        ({"op": "t_after", "args": [founded, {"date": "2020-01-01"}]}, lambda d: d > day),
        ({"op": "t_equals", "args": [founded, {"date": "2020-01-01"}]}, lambda d: d == day),
        ({"op": "t_intersects", "args": [founded, {"interval": ["2018-01-01", "2019-12-31"]}]},
         lambda d: span[0] <= d <= span[1]),
        ({"op": "t_during", "args": [founded, {"interval": ["2018-01-01", "2019-12-31"]}]},
         lambda d: span[0] < d < span[1]),
        # pygeofilter's JSON parser knows no t_disjoint: build the node.
        (ast.TimeDisjoint(ast.Attribute("founded"), values.Interval(None, date(2019, 12, 31))),
         lambda d: d > span[1]),
        ({"op": "not", "args": [{"op": "t_before", "args": [founded, {"date": "2020-01-01"}]}]},
         lambda d: d >= day),
    ]
    for expression, predicate in cases:
        expected = ref_ids(lambda f, pr=predicate: f["properties"]["founded"] is not None
                           and pr(f["properties"]["founded"]))
        parsed = expression if isinstance(expression, ast.Node) else parse_json(expression)
        assert everything(timed, filter=parsed) == expected, expression
    assert "temporal" in problem(store, filter=parse_json(cases[0][0]))


# --- what a store refuses -----------------------------------------------------------------------

POINT = values.Geometry({"type": "Point", "coordinates": [1, 2]})


@pytest.mark.parametrize(("query", "words"), [
    ({"filter": parse_text("nosuch = 1")}, ["filter", "nosuch"]),
    ({"filter": parse_text("S_INTERSECTS(nosuch, POINT(1 2))")}, ["filter", "nosuch"]),
    ({"filter": parse_text("pop = 'many'")}, ["filter", "pop", "integer"]),
    ({"filter": parse_text("name = 5")}, ["filter", "name", "string"]),
    ({"filter": parse_text("founded > 'soon'")}, ["filter", "soon"]),
    ({"filter": parse_text("myfunc(name) = 'x'")}, ["filter", "myfunc"]),
    ({"filter": parse_text("name LIKE 5")}, ["filter", "LIKE"]),
    ({"filter": parse_text("name + 1 > 2")}, ["filter", "arithmetic"]),
    ({"filter": parse_text("geometry = 'x'")}, ["filter", "S_"]),
    ({"filter": ast.Relate(ast.Attribute("geometry"), POINT, "T********")},
     ["unsupported CQL2", "Relate"]),
    ({"filter": ast.ArrayEquals(ast.Attribute("name"), ["a"])}, ["unsupported CQL2"]),
    ({"filter": ast.DistanceWithin(ast.Attribute("geometry"), POINT, 5, "meters")},
     ["unsupported CQL2"]),
    ({"filter": "pop = 1"}, ["filter"]),  # text, not a parsed tree
    ({"sortby": [("nosuch", False)]}, ["sortby", "nosuch"]),
    ({"equals": [("nosuch", "1")]}, ["nosuch"]),
    ({"equals": [("pop", "lots")]}, ["pop", "lots"]),
    ({"equals": [("active", "maybe")]}, ["active", "maybe"]),
    ({"equals": [("founded", "yesterday")]}, ["founded", "yesterday"]),
    ({"properties": ["nosuch"]}, ["properties", "nosuch"]),
    ({"datetime": "last tuesday"}, ["datetime", "last tuesday"]),
    ({"datetime": "2020-13-01"}, ["datetime"]),
    ({"datetime": "2021-01-01/2020-01-01"}, ["datetime", "after"]),
    ({"datetime": "2020-01-01/2020-02-01/2020-03-01"}, ["datetime"]),
    ({"bbox": [1, 2, 3]}, ["bbox"]),
    ({"bbox": [1, 2, 0, 3, 4, 5]}, ["bbox", "3D"]),
    ({"bbox": [70, 42, 71, 41]}, ["bbox"]),
    ({"bbox": ["a", 1, 2, 3]}, ["bbox"]),
    ({"q": " , "}, ["q"]),
    ({"limit": -1}, ["limit"]),
    ({"offset": "5"}, ["offset"]),
])
def test_what_cannot_be_applied_is_a_parameter_error(store: FeatureStore, query: dict,
                                                    words: list) -> None:
    text = problem(store, **query)
    for word in words:
        assert word in text, text
    with pytest.raises(ParameterError):
        store.count(ItemsQuery(**query))


def test_oversized_filters_are_parameter_errors(store: FeatureStore) -> None:
    chain = ast.Equal(ast.Attribute("pop"), 1)
    for _ in range(3000):
        chain = ast.And(chain, ast.Equal(ast.Attribute("pop"), 1))
    nots = ast.Equal(ast.Attribute("pop"), 1)
    for _ in range(3000):
        nots = ast.Not(nots)
    for node in (chain, nots):
        assert "too" in problem(store, filter=node)


# --- concurrency ---------------------------------------------------------------------------------

def test_one_store_serves_concurrent_queries(store: FeatureStore) -> None:
    """The store is shared by a worker's threads (one instance per live version)."""
    errors: list[BaseException] = []
    regions = sorted({f["properties"]["region"] for f in SOURCE})

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(50):
                low, high = sorted([rng.uniform(69, 80), rng.uniform(69, 80)])
                bbox = [low, 39.0, high, 43.0]
                region = rng.choice(regions)
                expected = ref_ids(lambda f, b=bbox, r=region: (
                    f["properties"]["region"] == r and f["geometry"] is not None
                    and f["geometry"].intersects(shapely.box(*b))))
                page = store.page(ItemsQuery(bbox=bbox, filter=parse_text(f"region = '{region}'"),
                                             limit=N, skip_geometry=rng.random() < 0.5))
                assert ids(page.features) == expected
        except BaseException as err:  # collected, reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_pages_of_numbers_are_plain_values(store: FeatureStore) -> None:
    """page() hands out plain Python values (json and templates take them), never numpy."""
    for feature in store.page(ItemsQuery(limit=N)).features:
        geometry = feature["geometry"]
        if geometry is not None:
            assert not isinstance(geometry["coordinates"], np.ndarray)
            json.dumps(geometry)
