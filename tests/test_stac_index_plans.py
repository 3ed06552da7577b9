"""The SQLite STAC index answers box, time and filter searches with plans that use its indexes,
tests rectangles in SQL, and writes pages from rendered item texts (issue 14, STAC rows).

Plans are read with EXPLAIN QUERY PLAN (no timing): a regression that makes SQLite scan every
item, hide the time index behind julianday(dt) or walk the time order for a box with a
narrow filter fails here. The answers, page by page, are compared with a reference computed
in Python from the items themselves (shapely for geometry, datetime for time), with hypothesis
drawing boxes, windows and thresholds; items are rectangles and other polygons mixed.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from pathlib import Path

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from catalog.core.cql2 import box_geometry
from catalog.gpkg import decode, register_functions
from catalog.stac_index import cql, sqlite_backend
from catalog.stac_index.backend import ItemSearch, TimeRange
from catalog.stac_index.documents import RENDERED_BASE, Links, dumps, rendered_item, with_base
from catalog.stac_index.sqlite_backend import SqliteBackend, julian_day

COLLECTION = "plans"
START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
BASE = "http://127.0.0.1:8123"


def collection() -> dict:
    return {"type": "Collection", "stac_version": "1.1.0", "id": COLLECTION,
            "license": "CC0-1.0", "description": "SYNTHETIC test items", "links": [],
            "extent": {"spatial": {"bbox": [[70.0, 40.0, 72.0, 42.0]]},
                       "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}}}


def make_items(count: int, rng: random.Random) -> list[dict]:
    """Rectangles (most), triangles and rectangles given as rotated rings; instants and
    spans of up to 40 days; a cloud cover."""
    made = []
    for number in range(count):
        x, y = 70 + rng.random() * 1.8, 40 + rng.random() * 1.8
        w, h = rng.uniform(0.01, 0.2), rng.uniform(0.01, 0.2)
        shape_kind = rng.choice(["rectangle"] * 4 + ["triangle", "ring"])
        if shape_kind == "triangle":
            ring = [[x, y], [x + w, y], [x, y + h], [x, y]]
        elif shape_kind == "ring":  # the same rectangle, starting elsewhere, clockwise
            ring = [[x + w, y], [x, y], [x, y + h], [x + w, y + h], [x + w, y]]
        else:
            ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
        moment = START + dt.timedelta(minutes=rng.randrange(3 * 365 * 1440))
        properties: dict = {"eo:cloud_cover": round(rng.uniform(0, 100), 2)}
        if rng.random() < 0.2:
            properties["start_datetime"] = iso(moment)
            properties["end_datetime"] = iso(moment + dt.timedelta(days=rng.uniform(0, 40)))
            properties["datetime"] = None
        else:
            properties["datetime"] = iso(moment)
        made.append({"type": "Feature", "stac_version": "1.1.0", "id": f"item-{number:04d}",
                     "collection": COLLECTION, "bbox": [x, y, x + w, y + h],
                     "geometry": {"type": "Polygon", "coordinates": [ring]},
                     "properties": properties,
                     "assets": {"data": {"href": f"/taza-virtual/assets/{number}.tif",
                                         "type": "image/tiff"}},
                     "links": [{"rel": "license", "href": "/taza-virtual/licence.html"}]})
    return made


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteBackend, list[dict]]:
    made = make_items(1500, random.Random(23))
    backend = SqliteBackend(Path(tmp_path_factory.mktemp("stac-plans")) / "index.sqlite")
    backend.apply(1, [(COLLECTION, 1, collection(), made)], [])
    return backend, made


def all_pages(backend: SqliteBackend, query: ItemSearch) -> list[str]:
    ids: list[str] = []
    while True:
        page = backend.search(query)
        ids += [f["id"] for f in page.features]
        if page.next_token is None:
            return ids
        query = ItemSearch(**{**query.__dict__, "token": page.next_token})


def span(item: dict) -> tuple[dt.datetime, dt.datetime]:
    p = item["properties"]
    start = p["datetime"] or p["start_datetime"]
    end = p["datetime"] or p["end_datetime"]
    return dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)


def reference(made: list[dict], box: tuple | None, window: tuple | None,
              cloud_below: float | None, after: dt.datetime | None) -> list[str]:
    """Newest first (start time, then indexing order), as the index answers by default."""
    kept = []
    for position, item in enumerate(made):
        start, end = span(item)
        if box is not None and not shape(item["geometry"]).intersects(box_geometry(*box)):
            continue
        if window is not None and not (start <= window[1] and end >= window[0]):
            continue
        if cloud_below is not None and not item["properties"]["eo:cloud_cover"] < cloud_below:
            continue
        if after is not None and not start >= after:
            continue
        kept.append((start, position, item["id"]))
    return [i for *_, i in sorted(kept, reverse=True)]


def plan_text(backend: SqliteBackend, query: ItemSearch) -> str:
    return "\n".join(backend.plan(query))


# -- what is stored ------------------------------------------------------------------------


def test_rectangles_keep_their_exact_bounds_and_other_shapes_none(indexed):
    backend, made = indexed
    rows = {r[0]: list(r[1:]) for r in backend.connect().execute(
        "SELECT id, rminx, rminy, rmaxx, rmaxy FROM items")}
    for item in made:
        bounds = rows[item["id"]]
        polygon = shape(item["geometry"])
        if polygon.equals(shapely.box(*polygon.bounds)):
            assert bounds == list(polygon.bounds), item["id"]
        else:
            assert bounds == [None] * 4, item["id"]
    assert any(b == [None] * 4 for b in rows.values())


def test_a_rectangle_whose_bbox_says_otherwise_is_tested_as_a_geometry(tmp_path: Path):
    item = make_items(1, random.Random(1))[0]
    item["geometry"]["coordinates"] = [[[70, 40], [71, 40], [71, 41], [70, 41], [70, 40]]]
    item["bbox"] = [70, 40, 71.5, 41]
    backend = SqliteBackend(tmp_path / "index.sqlite")
    backend.apply(1, [(COLLECTION, 1, collection(), [item])], [])
    row = backend.connect().execute("SELECT rminx, page IS NOT NULL FROM items").fetchone()
    assert row == (None, 1)


JSON_TEXT = st.text(alphabet=st.sampled_from(["u", "0", "\\", "\0", "a", "\ud800", "é"]),
                    max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | JSON_TEXT
    | st.integers(min_value=-2**70, max_value=2**70),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(JSON_TEXT | st.integers(0, 9), inner, max_size=3), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(properties=JSON_VALUES)
def test_an_item_is_rendered_exactly_when_its_json_text_holds_no_u0000(properties):
    """rendered_item looks for the text 'u0000' in the item's JSON with orjson when it has no
    text (the pgstac backend): the same answer as json's text, what orjson refuses included
    (integers beyond 64 bits, keys that are not text, lone surrogates)."""
    item = {"type": "Feature", "id": "x", "collection": COLLECTION, "links": [], "assets": {},
            "properties": {"p": properties}}
    assert rendered_item(item) == rendered_item(item, dumps(item))


def test_rendered_items_are_what_the_links_write(indexed):
    backend, _ = indexed
    base_json = dumps(BASE)[1:-1]
    for query in (ItemSearch(limit=25), ItemSearch(limit=7, bbox=(70.5, 40.5, 71.2, 41.0))):
        rendered = backend.search(query, rendered=True)
        plain = backend.search(query)
        assert rendered.features == [] and rendered.rendered
        assert rendered.next_token == plain.next_token
        assert [with_base(t, base_json) for t in rendered.rendered] == \
            [dumps(Links(BASE).item(f)) for f in plain.features]


def test_an_item_holding_the_placeholder_text_is_served_from_its_document(tmp_path: Path):
    items = make_items(3, random.Random(2))
    items[1]["properties"]["title"] = "a \\u0000 b and a real \x00 too"
    backend = SqliteBackend(tmp_path / "index.sqlite")
    backend.apply(1, [(COLLECTION, 1, collection(), items)], [])
    pages = [r[0] for r in backend.connect().execute("SELECT page FROM items ORDER BY pk")]
    assert pages[1] is None and pages[0] is not None and RENDERED_BASE in pages[0]
    page = backend.search(ItemSearch(limit=10), rendered=True)
    assert page.rendered is None
    assert {f["id"] for f in page.features} == {i["id"] for i in items}
    assert page.features[[f["id"] for f in page.features].index(items[1]["id"])][
        "properties"]["title"] == items[1]["properties"]["title"]


def test_an_index_of_the_previous_schema_is_emptied_for_reindexing(tmp_path: Path):
    path = tmp_path / "index.sqlite"
    backend = SqliteBackend(path)
    backend.apply(4, [(COLLECTION, 1, collection(), make_items(5, random.Random(3)))], [])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    reopened = SqliteBackend(path)
    assert reopened.indexed_release() is None
    assert reopened.indexed_versions() == {}
    assert reopened._meta("schema_version") == sqlite_backend.SCHEMA_VERSION == "4"
    reopened.apply(5, [(COLLECTION, 1, collection(), make_items(5, random.Random(3)))], [])
    assert len(reopened.search(ItemSearch(limit=10)).features) == 5


# -- plans ---------------------------------------------------------------------------------


def test_a_datetime_filter_reads_a_range_of_the_time_index(indexed):
    backend, _ = indexed
    query = ItemSearch(limit=10, collections=(COLLECTION,), filter=cql.parse(
        "datetime >= TIMESTAMP('2021-06-01T00:00:00Z')", "cql2-text"))
    plan = plan_text(backend, query)
    assert "USING INDEX items_by_collection_dt (collection=? AND dt>?)" in plan, plan
    assert "julianday(dt)" not in backend._search_sql(query)[0]


def test_a_datetime_range_bounds_the_time_index_on_both_sides(indexed):
    backend, _ = indexed
    window = TimeRange(julian_day(dt.datetime(2021, 1, 1, tzinfo=dt.UTC)),
                       julian_day(dt.datetime(2021, 3, 1, tzinfo=dt.UTC)))
    plan = plan_text(backend, ItemSearch(limit=10, collections=(COLLECTION,),
                                         datetime=window))
    assert "(collection=? AND dt>? AND dt<?)" in plan, plan


@pytest.mark.parametrize("query", [
    ItemSearch(limit=10, collections=(COLLECTION,), bbox=(70.5, 40.5, 71.0, 41.0),
               datetime=TimeRange(2459000.5, 2459100.5)),
    ItemSearch(limit=10, collections=(COLLECTION,), filter=cql.parse(
        {"op": "and", "args": [
            {"op": "between", "args": [{"property": "eo:cloud_cover"}, 10, 20]},
            {"op": "s_intersects", "args": [{"property": "geometry"}, {
                "type": "Polygon", "coordinates": [[[70.5, 40.5], [71, 40.5], [71, 41],
                                                    [70.5, 41], [70.5, 40.5]]]}]}]},
        "cql2-json")),
    ItemSearch(limit=10, collections=(COLLECTION,), bbox=(70.5, 40.5, 71.0, 41.0),
               filter=cql.parse('"eo:cloud_cover" < 30', "cql2-text")),
], ids=["bbox+datetime", "cql2-json-between+s_intersects", "bbox+filter"])
def test_a_box_with_other_filters_reads_the_rtree_first(indexed, query):
    backend, _ = indexed
    plan = plan_text(backend, query)
    assert plan.startswith("SEARCH items USING INTEGER PRIMARY KEY (rowid=?)"), plan
    assert "SCAN items_rtree VIRTUAL TABLE" in plan, plan
    assert "SCAN items\n" not in plan + "\n", plan


def test_a_box_alone_reads_few_candidates_from_the_rtree_and_walks_for_many(indexed,
                                                                            monkeypatch):
    """A box alone with few candidates is read from the R-tree (a walk in time order could
    pass every item before a page is full); with many, the walk tests each walked item's own
    bounds, and SQLite is given no R-tree term to gather every candidate with first (at
    1,000,000 items that gathering cost more than the whole walk). The answers agree."""
    backend, made = indexed
    box = (70.5, 40.5, 71.0, 41.0)
    query = ItemSearch(limit=10, collections=(COLLECTION,), bbox=box)
    monkeypatch.setattr(sqlite_backend, "MAX_SPATIAL_CANDIDATES", 10**6)
    plan = plan_text(backend, query)
    assert plan.startswith("SEARCH items USING INTEGER PRIMARY KEY (rowid=?)"), plan
    assert "SCAN items_rtree VIRTUAL TABLE" in plan, plan
    few = all_pages(backend, query)
    monkeypatch.setattr(sqlite_backend, "MAX_SPATIAL_CANDIDATES", 1)
    plan = plan_text(backend, query)
    assert plan.startswith("SEARCH items USING INDEX items_by_collection_dt"), plan
    assert "TEMP B-TREE" not in plan, plan
    sql, _ = backend._search_sql(query)
    # The R-tree only under CASE, for the items that are not rectangles.
    assert "items_rtree" not in sql.split("CASE WHEN rminx IS NULL THEN")[0], sql
    assert all_pages(backend, query) == few == reference(made, box, None, None, None)


def test_rectangles_are_tested_without_a_python_call(indexed):
    """Watch gpkg_intersects: only items that are not rectangles reach it."""
    backend, made = indexed
    tested: list[bool] = []  # per call: was the item a rectangle?

    def watching(data: bytes | None, wkb: bytes | None) -> int | None:
        item = decode(data)
        tested.append(bool(item.equals(shapely.box(*item.bounds))))
        return int(item.intersects(shapely.from_wkb(wkb)))

    conn = backend.connect()
    conn.create_function("gpkg_intersects", 2, watching, deterministic=True)
    try:
        box = (70.2, 40.2, 71.6, 41.6)
        assert all_pages(backend, ItemSearch(limit=50, bbox=box)) == \
            reference(made, box, None, None, None)
    finally:
        register_functions(conn)
    assert tested and not any(tested)


# -- answers -------------------------------------------------------------------------------


def _polygon(box: tuple) -> dict:
    west, south, east, north = box
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                [west, north], [west, south]]]}


boxes = st.tuples(st.floats(69.9, 71.9), st.floats(39.9, 41.9), st.floats(0.0, 1.2),
                  st.floats(0.0, 1.2)).map(lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))
windows = st.tuples(st.integers(0, 3 * 365), st.integers(0, 400)).map(
    lambda t: (START + dt.timedelta(days=t[0]), START + dt.timedelta(days=t[0] + t[1])))


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("most_candidates", "range_plans"),
                         [(sqlite_backend.MAX_SPATIAL_CANDIDATES, "as-chosen"),
                          (0, "never"), (0, "always")],
                         ids=["plans-as-chosen", "every-box-walks", "every-range-reads-its-index"])
def test_box_time_and_filter_pages_equal_a_reference_in_python(indexed, most_candidates,
                                                               range_plans, monkeypatch):
    """With the plans as chosen (most boxes here have few candidates: the R-tree first), with
    every box walking the time order (its rectangles tested from the index, a filter's boxes
    first), and with every cloud range read from its index (then sorted): the same pages as
    the reference."""
    backend, made = indexed
    monkeypatch.setattr(sqlite_backend, "MAX_SPATIAL_CANDIDATES", most_candidates)
    if range_plans == "never":
        monkeypatch.setattr(sqlite_backend, "MAX_RANGE_CANDIDATES", -1)
    elif range_plans == "always":
        monkeypatch.setattr(sqlite_backend, "MAX_RANGE_CANDIDATES", 10**9)
        monkeypatch.setattr(sqlite_backend, "ROW_READ_COST", 10**9)

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.none() | boxes, st.none() | windows, st.none() | st.floats(0, 100),
           st.none() | st.integers(0, 3 * 365 * 24), st.booleans(), st.integers(1, 60))
    def check(box, window, cloud_below, after_hours, box_in_filter, limit):
        after = START + dt.timedelta(hours=after_hours) if after_hours is not None else None
        terms = []
        if cloud_below is not None:
            terms.append({"op": "<", "args": [{"property": "eo:cloud_cover"}, cloud_below]})
        if after is not None:
            terms.append({"op": ">=", "args": [{"property": "datetime"},
                                               {"timestamp": iso(after)}]})
        box_in_filter = box_in_filter and box is not None and box[0] < box[2] and box[1] < box[3]
        if box_in_filter:
            terms.append({"op": "s_intersects", "args": [{"property": "geometry"},
                                                         _polygon(box)]})
        filter_json = terms[0] if len(terms) == 1 else {"op": "and", "args": terms}
        query = ItemSearch(
            limit=limit, collections=(COLLECTION,),
            bbox=None if box_in_filter else box,
            datetime=TimeRange(julian_day(window[0]), julian_day(window[1]))
            if window else None,
            filter=cql.parse(filter_json, "cql2-json") if terms else None)
        assert all_pages(backend, query) == reference(made, box, window, cloud_below, after), \
            query

    check()


def test_a_walk_tests_a_filters_box_from_the_index_before_other_terms(indexed, monkeypatch):
    """A walk for `cloud BETWEEN .. AND S_INTERSECTS(..)` tests the box's bounds first: a term
    of the time index's own columns, so no row is read for the cloud of an item outside."""
    backend, made = indexed
    box = (70.2, 40.2, 71.0, 41.0)
    query = ItemSearch(limit=10, collections=(COLLECTION,), filter=cql.parse(
        {"op": "and", "args": [
            {"op": "between", "args": [{"property": "eo:cloud_cover"}, 10, 60]},
            {"op": "s_intersects", "args": [{"property": "geometry"}, _polygon(box)]}]},
        "cql2-json"))
    monkeypatch.setattr(sqlite_backend, "MAX_SPATIAL_CANDIDATES", 0)
    sql, _ = backend._search_sql(query)
    where = sql.split(" WHERE ", 1)[1]
    assert where.index("rminx IS NULL OR (rminx <= ?") < where.index("json_extract"), sql
    assert plan_text(backend, query).startswith("SEARCH items USING INDEX items_by_collection_dt")
    assert all_pages(backend, query) == reference_between(made, box, 10, 60)


def reference_between(made: list[dict], box: tuple, low: float, high: float) -> list[str]:
    """Ids, newest first, of the items meeting `box` with a cloud cover in [low, high]."""
    cloud = {item["id"]: item["properties"]["eo:cloud_cover"] for item in made}
    return [i for i in reference(made, box, None, None, None) if low <= cloud[i] <= high]


def test_a_box_with_many_candidates_walks_the_time_index_even_with_filters(indexed, monkeypatch):
    """Past MAX_SPATIAL_CANDIDATES R-tree candidates, reading and sorting each costs more
    than walking the time order: the plan walks (and the answer does not change)."""
    backend, made = indexed
    box = (70.0, 40.0, 72.0, 42.0)  # every item
    query = ItemSearch(limit=10, collections=(COLLECTION,), bbox=box,
                       filter=cql.parse('"eo:cloud_cover" < 30', "cql2-text"))
    monkeypatch.setattr(sqlite_backend, "MAX_SPATIAL_CANDIDATES", 10**6)
    assert backend.plan(query)[0].startswith("SEARCH items USING INTEGER PRIMARY KEY")
    first = all_pages(backend, query)
    monkeypatch.setattr(sqlite_backend, "MAX_SPATIAL_CANDIDATES", 100)
    plan = plan_text(backend, query)
    assert plan.startswith("SEARCH items USING INDEX items_by_collection_dt"), plan
    assert all_pages(backend, query) == first == reference(made, box, None, 30, None)


def test_what_searches_read_of_the_index_follows_the_file(tmp_path: Path):
    """Queryables, indexed properties and the longest span are kept per connection until the
    file changes: a commit by another connection (another worker) or by this one shows."""
    path = tmp_path / "index.sqlite"
    reader, writer = SqliteBackend(path), SqliteBackend(path)
    first = make_items(20, random.Random(5))
    reader.apply(1, [(COLLECTION, 1, collection(), first)], [])
    assert "scenes" not in reader.queryables(None)
    assert "scenes" not in reader.indexed_properties()
    span_before = reader._max_span()
    later = make_items(20, random.Random(6))
    for item in later:
        item["properties"]["scenes"] = 3
        item["properties"].update(start_datetime=iso(START), end_datetime=iso(
            START + dt.timedelta(days=400)), datetime=None)
    writer.apply(2, [("other", 1, {**collection(), "id": "other"}, later)], [])
    assert reader.queryables(None)["scenes"] == {"type": "integer"}
    assert "scenes" in reader.indexed_properties()
    assert span_before < 41 and reader._max_span() == pytest.approx(400)
    query = ItemSearch(limit=100, filter=cql.parse("scenes = 3", "cql2-text"))
    assert len(reader.search(query).features) == 20
    for number in range(2 * sqlite_backend.MAX_FACTS):  # ids from requests: not all kept
        assert "scenes" not in reader.queryables(f"no-such-collection-{number}")
    assert len(reader._facts()._values) <= sqlite_backend.MAX_FACTS
    assert reader.queryables("other")["scenes"] == {"type": "integer"}
    reader.apply(3, [], ["other"])  # this connection's own commit
    assert reader.search(query).features == []
    assert "scenes" not in reader.queryables(None)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.5]), st.sampled_from([0.0, 1.0, 2.5])),
                min_size=3, max_size=6), st.booleans())
def test_rectangles_are_recognised_as_geos_would(points, hole):
    """is_rectangle reads the usual four corners itself; GEOS (shapely.equals with the
    bounding box) is the reference for every ring."""
    from catalog.gpkg.tables import is_rectangle

    holes = [[(0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.2, 0.4)]] if hole else []
    polygon = shapely.Polygon(points, holes)
    expected = polygon.area != 0 and bool(shapely.equals(polygon, shapely.box(*polygon.bounds)))
    assert is_rectangle(polygon) == expected == cql.is_rectangle(polygon)


def test_a_narrow_range_in_a_large_box_reads_the_range_from_its_index(indexed, monkeypatch):
    """A box with many candidates and a narrow cloud range: walking the time order would pass
    most items before a page is full, so the plan reads the range of the cloud index (which
    holds each item's rectangle and dt: no row read but for hits) and sorts the hits. A wide
    range, or one without a box, walks."""
    backend, made = indexed
    box = (70.0, 40.0, 72.0, 42.0)

    def query(low: float, high: float, with_box: bool = True) -> ItemSearch:
        terms = [{"op": "between", "args": [{"property": "eo:cloud_cover"}, low, high]}]
        if with_box:
            terms.append({"op": "s_intersects", "args": [{"property": "geometry"},
                                                         _polygon(box)]})
        return ItemSearch(limit=10, collections=(COLLECTION,), filter=cql.parse(
            {"op": "and", "args": terms} if len(terms) > 1 else terms[0], "cql2-json"))

    monkeypatch.setattr(sqlite_backend, "MAX_SPATIAL_CANDIDATES", 0)
    narrow = query(40.0, 41.0)
    index = sqlite_backend.property_index("eo:cloud_cover")
    plan = plan_text(backend, narrow)
    assert plan.startswith(f"SEARCH items USING INDEX {index}"), plan
    assert "TEMP B-TREE FOR ORDER BY" in plan
    assert all_pages(backend, narrow) == reference_between(made, box, 40.0, 41.0)
    for wide in (query(0.0, 100.0), query(0.0, 100.0, with_box=False)):
        plan = plan_text(backend, wide)
        assert plan.startswith("SEARCH items USING INDEX items_by_collection_dt"), plan
    assert all_pages(backend, query(0.0, 100.0)) == reference_between(made, box, 0.0, 100.0)


def test_number_ranges_of_a_filter_are_its_top_level_bounds():
    node = cql.parse({"op": "and", "args": [
        {"op": "between", "args": [{"property": "eo:cloud_cover"}, 10, 60]},
        {"op": "<", "args": [{"property": "properties.eo:cloud_cover"}, 50]},
        {"op": ">=", "args": [7, {"property": "gsd"}]},
        {"op": "or", "args": [{"op": "<", "args": [{"property": "x"}, 1]},
                              {"op": ">", "args": [{"property": "x"}, 5]}]}]}, "cql2-json")
    assert cql.number_ranges(node) == {"eo:cloud_cover": (10.0, 50.0),
                                       "gsd": (float("-inf"), 7.0)}
