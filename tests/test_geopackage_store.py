"""The GeoPackage FeatureStore beyond the contract (tests/test_feature_store_contract.py): the
blob codec on fiona-written files, attribute indexes, primary-key gaps, the page geometry
writer, the feature text stored at publish time, a layer without R-tree, and files it refuses.
The synthetic layer and the reference are tests/feature_reference.py's."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import struct
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import fiona
import numpy as np
import orjson
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygeofilter.parsers.cql2_text import parse as parse_text
from shapely.geometry import mapping

from catalog.core import columns as in_memory_columns
from catalog.features import FeatureStoreError, GeoPackageFeatureStore, ItemsQuery
from catalog.gpkg import (
    Layer,
    decode,
    geojson_geometries,
    index_columns,
    read_header,
    write_feature_text,
)
from catalog.gpkg.columns import SqliteColumnReader
from tests.feature_reference import (
    ATTRIBUTE_FILTERS,
    ATTRIBUTE_LEAVES,
    BY_FID,
    COLUMN_VALUES,
    EXTENT,
    FILTERS,
    SCHEMA,
    SORT_KEYS,
    N,
    answered_by_sql_then_from_arrays,
    boxes,
    evaluate,
    literal_shape,
    ref_ids,
    sort_reference,
    spatials,
    to_text,
    write_geopackage,
)

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_geopackage(str(tmp_path_factory.mktemp("gpkg") / "places.gpkg"))


@pytest.fixture(scope="module")
def store(gpkg: str) -> GeoPackageFeatureStore:
    return GeoPackageFeatureStore(gpkg, temporal_extent=EXTENT)


def ids(features: list[dict]) -> list:
    return [f["id"] for f in features]


def everything(store: GeoPackageFeatureStore, **query) -> list:
    return ids(store.page(ItemsQuery(limit=N + 10, skip_geometry=True, **query)).features)


# --- GeoPackage blobs ----------------------------------------------------------------------------

def _blob(geom: shapely.Geometry, flags_env: int, little: bool, srs: int = 4326) -> bytes:
    order = "<" if little else ">"
    minx, miny, maxx, maxy = geom.bounds
    env = {0: (), 1: (minx, maxx, miny, maxy), 2: (minx, maxx, miny, maxy, 0, 9),
           3: (minx, maxx, miny, maxy, 1, 2), 4: (minx, maxx, miny, maxy, 0, 9, 1, 2)}[flags_env]
    flags = (flags_env << 1) | int(little)
    header = b"GP" + bytes([0, flags]) + struct.pack(f"{order}i", srs)
    return header + struct.pack(f"{order}{len(env)}d", *env) + shapely.to_wkb(geom, flavor="iso")


@pytest.mark.parametrize("envelope", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("little", [True, False])
def test_blob_header_variants(envelope: int, little: bool) -> None:
    geom = shapely.Polygon([(70, 40, 1), (71, 40, 2), (71, 41, 3), (70, 40, 1)])
    blob = _blob(geom, envelope, little, srs=32643)
    header = read_header(blob)
    assert header.srs_id == 32643
    assert header.wkb_offset == 8 + [0, 32, 48, 48, 64][envelope]
    assert (header.envelope is None) == (envelope == 0)
    parsed = decode(blob)
    assert parsed.has_z and parsed.equals_exact(geom, 0)


def test_blob_rejects_garbage() -> None:
    for bad in [b"", b"XX\x00\x01\x00\x00\x00\x00", b"GP\x00\x0f\x00\x00\x00\x00",
                b"GP\x00\x21" + bytes(4)]:
        with pytest.raises(ValueError):
            read_header(bad)
    assert decode(None) is None


def test_blobs_written_by_fiona_roundtrip(gpkg: str) -> None:
    with sqlite3.connect(gpkg) as conn:
        rows = conn.execute("SELECT fid, geom FROM places").fetchall()
    assert len(rows) == N
    for fid, blob in rows:
        expected = BY_FID[fid]["geometry"]
        if expected is None:
            assert blob is None
        else:
            assert decode(blob).equals_exact(expected, 0)


# --- what the store refuses to open ---------------------------------------------------------

def test_files_that_are_not_feature_layers_are_refused(gpkg: str, tmp_path) -> None:
    garbage = tmp_path / "garbage.gpkg"
    garbage.write_bytes(b"not a database" * 100)
    for path, options in [(tmp_path / "missing.gpkg", {}), (garbage, {}),
                          (gpkg, {"table": "nosuch"}), (gpkg, {"id_field": "nosuch"}),
                          (gpkg, {"time_field": "area"})]:
        with pytest.raises(FeatureStoreError):
            GeoPackageFeatureStore(path, **options)


def test_configured_properties_hide_other_columns(gpkg: str) -> None:
    """The library's Layer exposes (and lets queries name) only the configured columns."""
    from catalog.core.parse import ParameterError
    from catalog.gpkg import FeatureQuery

    layer = Layer(gpkg, properties=["name", "pop"])
    assert set(layer.fields) == {"name", "pop"}
    page = layer.select(FeatureQuery(limit=1))
    assert set(layer.features(page)[0]["properties"]) == {"name", "pop"}
    for query in (FeatureQuery(filter=parse_text("region = 'Osh'")),
                  FeatureQuery(equals=[("region", "Osh")]),
                  FeatureQuery(sortby=[("region", False)])):
        with pytest.raises(ParameterError) as err:
            layer.select(query)
        assert "region" in str(err.value)


def test_without_rtree_index(gpkg: str, tmp_path) -> None:
    copy = str(tmp_path / "plain.gpkg")
    shutil.copy(gpkg, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("DROP TABLE rtree_places_geom")
    store = GeoPackageFeatureStore(copy)
    assert store.layer.schema.rtree is None
    box = (71, 40, 75, 42)
    expected = ref_ids(
        lambda f: f["geometry"] is not None and f["geometry"].intersects(shapely.box(*box)))
    assert everything(store, bbox=list(box)) == expected
    text = f"S_DISJOINT(geometry, {shapely.box(*box).wkt})"
    expected = ref_ids(
        lambda f: f["geometry"] is not None and f["geometry"].disjoint(shapely.box(*box)))
    assert everything(store, filter=parse_text(text)) == expected


# --- published layout: attribute indexes, primary-key gaps ---------------------------------------

@pytest.fixture(scope="module")
def indexed(gpkg: str, tmp_path_factory: pytest.TempPathFactory) -> GeoPackageFeatureStore:
    """The same layer with an index on every attribute (as publishing writes it)."""
    path = tmp_path_factory.mktemp("indexed") / "places.gpkg"
    shutil.copyfile(gpkg, path)
    index_columns(path, "places", list(SCHEMA["properties"]))
    return GeoPackageFeatureStore(path, temporal_extent=EXTENT)


@settings(max_examples=40, **SETTINGS)
@given(keys=SORT_KEYS, offset=st.integers(0, N), limit=st.integers(1, 60))
def test_sortby_through_attribute_indexes(indexed, keys: list, offset: int, limit: int) -> None:
    sortby = [(name, order == "-") for name, order in keys]
    page = indexed.page(ItemsQuery(sortby=sortby, offset=offset, limit=limit, skip_geometry=True))
    assert ids(page.features) == sort_reference(keys)[offset: offset + limit]


@settings(max_examples=60, **SETTINGS)
@given(tree=FILTERS)
def test_cql2_filters_with_attribute_indexes(indexed, tree: tuple) -> None:
    assert indexed.layer.meta.covering_index == "places_attributes_idx"  # counts scan it
    expected = ref_ids(lambda f: evaluate(tree, f) is True)
    assert everything(indexed, filter=parse_text(to_text(tree))) == expected, to_text(tree)
    again = indexed.count(ItemsQuery(filter=parse_text(to_text(tree))))
    assert again == len(expected)  # the cached count


@pytest.mark.parametrize("text", ["code IN ('KG-0007', 'KG-0150', 'KG-0311')",
                                  "region = 'Osh' AND pop > 60000", "name LIKE 'Talas 1%'"])
def test_few_matches_are_paged_through_the_attribute_index(indexed, store, text) -> None:
    """A page needing a large share of a filter's matches finds its keys in the attribute index
    (SQLite's trace shows the statement) and equals the table-scan answer of an unindexed copy."""
    statements: list[str] = []
    indexed.layer.conn.set_trace_callback(statements.append)
    try:
        for offset, limit in ((0, 100), (1, 2), (2, 50)):
            query = ItemsQuery(filter=parse_text(text), offset=offset, limit=limit)
            assert indexed.page(query) == store.page(query)
    finally:
        indexed.layer.conn.set_trace_callback(None)
    assert any("IN (SELECT" in sql and "INDEXED BY" in sql for sql in statements)


def test_paging_with_gaps_in_primary_keys(gpkg: str, tmp_path) -> None:
    """Deep pages seek by primary key only where keys have no gaps; otherwise OFFSET."""
    path = tmp_path / "gaps.gpkg"
    shutil.copyfile(gpkg, path)
    with sqlite3.connect(path) as conn:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        for (name,) in triggers.fetchall():  # GDAL's triggers call SpatiaLite functions
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DELETE FROM places WHERE fid % 7 = 3")
    remaining = [fid for fid in range(1, N + 1) if fid % 7 != 3]
    gappy = GeoPackageFeatureStore(path)
    assert not gappy.layer.meta.dense
    for offset, limit in [(0, 5), (40, 10), (len(remaining) - 3, 10), (len(remaining), 5)]:
        page = gappy.page(ItemsQuery(offset=offset, limit=limit, skip_geometry=True))
        assert ids(page.features) == remaining[offset: offset + limit]
        assert page.matched == len(remaining)


@pytest.mark.parametrize("wkts", [
    ["POINT (1 2)", "POINT (3 4)"],
    ["POINT Z (1 2 3)"],
    ["LINESTRING (0 0, 1 1, 2 0)", "LINESTRING (5 5, 6 6)"],
    ["POLYGON ((0 0, 1 0, 1 1, 0 0))", "POLYGON ((5 5, 6 5, 6 6, 5 5))"],
    ["POLYGON ((0 0, 4 0, 4 4, 0 0), (1 0.5, 2 0.5, 2 1, 1 0.5))"],
    ["MULTIPOINT (1 2, 3 4)", "MULTIPOINT (5 6)"],
    ["MULTILINESTRING ((0 0, 1 1), (2 2, 3 3))"],
    ["MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))"],
    ["GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))"],
    ["POINT (1 2)", "POLYGON ((0 0, 1 0, 1 1, 0 0))", "POLYGON EMPTY"],
    ["LINESTRING Z (0 0 1, 1 1 2)", "LINESTRING (0 0, 1 1)"],
])
def test_page_geometries_equal_shapely_mapping(wkts: list[str]) -> None:
    geometries = shapely.from_wkt(np.array([*wkts, None], dtype=object))
    expected = [None if g is None or g.is_empty else mapping(g) for g in geometries]
    got = geojson_geometries(geometries)
    assert json.loads(json.dumps(got)) == json.loads(json.dumps(expected))


# --- the feature text stored at publish time (catalog/gpkg/feature_text.py) ----------------------

@pytest.fixture()
def with_feature_text(gpkg: str, tmp_path) -> str:
    copy = tmp_path / "places.gpkg"
    shutil.copyfile(gpkg, copy)
    write_feature_text(copy, "places", "code")
    return str(copy)


def _json(page) -> list:
    return json.loads(orjson.dumps(page.features, option=orjson.OPT_SERIALIZE_NUMPY))


QUERIES = [ItemsQuery(limit=N), ItemsQuery(limit=40, offset=13, sortby=[("pop", True)]),
           ItemsQuery(limit=50, bbox=[70, 39, 76, 42]),
           ItemsQuery(limit=50, filter=parse_text("region = 'Osh' OR active = false"))]


@pytest.mark.parametrize("query", QUERIES)
def test_stored_feature_text_equals_features_written_on_request(with_feature_text, query):
    """Whole features copied from the stored text are the features the rows give."""
    store = GeoPackageFeatureStore(with_feature_text, id_field="code")
    stored = store.page_json(query)
    assert stored.source == "stored feature text"
    assert _json(stored) == json.loads(json.dumps(store.page(query).features))
    assert stored.matched == store.page(query).matched


@settings(max_examples=40, **SETTINGS)
@given(tree=FILTERS, offset=st.integers(0, N), limit=st.integers(1, 60), keys=SORT_KEYS)
def test_both_writers_agree_on_generated_queries(tmp_path_factory, gpkg, tree, offset, limit,
                                                keys):
    """For any page: the stored text (whole features), the rows written for orjson and the
    plain dicts are the same features (what tests/test_direct_items.py compared over HTTP
    while pygeoapi wrote the other pages)."""
    path = tmp_path_factory.getbasetemp() / "agree.gpkg"
    if not path.exists():
        shutil.copyfile(gpkg, path)
        write_feature_text(path, "places", None)
    with_text = GeoPackageFeatureStore(path)
    without = GeoPackageFeatureStore(gpkg)
    query = ItemsQuery(filter=parse_text(to_text(tree)), offset=offset, limit=limit,
                       sortby=[(name, order == "-") for name, order in keys])
    stored, rows, plain = with_text.page_json(query), without.page_json(query), without.page(query)
    assert stored.source == "stored feature text" and rows.source == "GeoPackage rows"
    assert _json(stored) == _json(rows) == json.loads(json.dumps(plain.features))


def test_pages_that_select_properties_are_written_from_rows(with_feature_text):
    store = GeoPackageFeatureStore(with_feature_text, id_field="code")
    for query in (ItemsQuery(limit=5, properties=["name"]), ItemsQuery(limit=5,
                                                                      skip_geometry=True)):
        page = store.page_json(query)
        assert page.source == "GeoPackage rows"
        assert _json(page) == json.loads(json.dumps(store.page(query).features))


def test_stored_feature_text_for_another_id_field_is_not_used(with_feature_text):
    store = GeoPackageFeatureStore(with_feature_text)  # id is fid, the text has code
    assert not store.layer.has_feature_text
    page = store.page_json(ItemsQuery(limit=5))
    assert page.source == "GeoPackage rows" and len(page.features) == 5


def test_unreadable_stored_feature_text_is_ignored(gpkg, tmp_path):
    copy = tmp_path / "broken.gpkg"
    shutil.copyfile(gpkg, copy)
    (tmp_path / "broken.features.sqlite").write_bytes(b"not a database" * 100)
    store = GeoPackageFeatureStore(copy)
    assert not store.layer.has_feature_text
    page = store.page_json(ItemsQuery(limit=3))
    assert page.source == "GeoPackage rows" and len(page.features) == 3


def test_writing_the_feature_text_holds_about_one_page_not_every_text(tmp_path):
    """The writer's memory stays near one page of rows: orjson keeps its whole growing buffer
    behind each text, so texts gathered in a list cost many times their size (a 300 MB upload
    took a worker to 381 MB; 10x the texts here)."""
    path = tmp_path / "notes.gpkg"
    schema = {"geometry": "Polygon", "properties": {"code": "int", "notes": "str"}}
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs="EPSG:4326",
                    layer="parcels") as out:
        for i in range(3000):
            x, y = 74 + (i % 100) / 100, 42 + (i // 100) / 100
            ring = [(x + 0.001 * k, y + 0.0005 * (k % 3)) for k in range(11)] + [(x, y)]
            out.write({"geometry": {"type": "Polygon", "coordinates": [ring]},
                       "properties": {"code": i, "notes": "n" * 3000}})
    tracemalloc.start()
    try:
        target = write_feature_text(path, "parcels", "code")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with sqlite3.connect(target) as conn:
        texts, rows = conn.execute("SELECT sum(length(feature)), count(*) FROM features").fetchone()
    assert rows == 3000
    assert peak < 3 * texts, f"{peak:,} bytes at peak for {texts:,} bytes of feature text"


# --- plain attribute filters of large layers, from columns in memory (catalog/core/columns.py) --

IN_MEMORY_SORTS = st.lists(st.tuples(st.sampled_from(["pop", "area", "name", "region"]),
                                     st.sampled_from("+-")), max_size=1)


@pytest.fixture(scope="module")
def in_memory(indexed: GeoPackageFeatureStore,
              tmp_path_factory: pytest.TempPathFactory) -> GeoPackageFeatureStore:
    """A copy of the indexed layer (with its stored feature text) treated as a large layer:
    its plain attribute filters are answered from its columns in memory."""
    path = tmp_path_factory.mktemp("in-memory") / "places.gpkg"
    shutil.copyfile(indexed.path, path)
    write_feature_text(path, "places", None)
    store = GeoPackageFeatureStore(path, temporal_extent=EXTENT)
    store.layer.in_memory_min_rows = 0
    store.layer.load_columns_in_background = False  # this test reads the arrays
    return store


def _sql_statements(store: GeoPackageFeatureStore, work) -> list[str]:
    statements: list[str] = []
    store.layer.conn.set_trace_callback(statements.append)
    try:
        work()
    finally:
        store.layer.conn.set_trace_callback(None)
    return statements


@settings(max_examples=80, **SETTINGS)
@given(tree=st.one_of(ATTRIBUTE_FILTERS, FILTERS), keys=IN_MEMORY_SORTS,
       offset=st.integers(0, N), limit=st.integers(0, 60))
def test_filters_from_memory_equal_sql_and_the_reference(in_memory, indexed, tree, keys,
                                                         offset, limit) -> None:
    """Any filter (answered from memory or, when the columns cannot, by SQL) gives the
    reference's matches, and the same counts and pages as SQL on the same rows."""
    text = to_text(tree)
    assert everything(in_memory, filter=parse_text(text)) == \
        ref_ids(lambda f: evaluate(tree, f) is True), text
    query = ItemsQuery(filter=parse_text(text), offset=offset, limit=limit, skip_geometry=True,
                       sortby=[(name, order == "-") for name, order in keys])
    assert in_memory.page(query) == indexed.page(query), text
    assert in_memory.count(query) == indexed.count(query), text


@settings(max_examples=30, **SETTINGS)
@given(tree=ATTRIBUTE_FILTERS, keys=IN_MEMORY_SORTS, offset=st.integers(0, 40))
def test_plain_attribute_filters_of_large_layers_run_no_sql_scan(in_memory, indexed, tree, keys,
                                                                offset) -> None:
    """numberMatched and the page's keys come from the columns: the only statement is one
    primary-key lookup of the page's rows (SQLite's trace), and the whole features equal SQL's."""
    query = ItemsQuery(filter=parse_text(to_text(tree)), offset=offset, limit=25,
                       sortby=[(name, order == "-") for name, order in keys])
    in_memory.count(query)  # the columns the filter names are read once, then kept
    pages = []
    statements = _sql_statements(in_memory, lambda: pages.append(in_memory.page_json(query)))
    assert not any("COUNT(" in sql or "ORDER BY" in sql for sql in statements), statements
    assert len(statements) <= 1 and all(" IN (" in sql for sql in statements), statements
    assert pages[0].source == "stored feature text"
    assert _json(pages[0]) == json.loads(json.dumps(indexed.page(query).features))


NUMBER_FILTERS = st.recursive(
    ATTRIBUTE_LEAVES.filter(lambda leaf: leaf[1] in ("pop", "area")),
    lambda kids: st.tuples(st.sampled_from(["and", "or"]), kids, kids), max_leaves=3)


@settings(max_examples=25, **SETTINGS)
@given(tree=NUMBER_FILTERS, key=st.sampled_from(["code", "name", "region"]),
       descending=st.booleans(), offset=st.integers(0, 40))
def test_sorting_by_text_of_many_values_follows_sqlite_order(indexed, tmp_path_factory, tree,
                                                             key, descending, offset) -> None:
    """Text columns with more distinct values than MAX_CATEGORIES are ranked in SQLite's own
    ORDER BY (read once) and sort pages as SQL does."""
    path = tmp_path_factory.mktemp("many-values") / "places.gpkg"
    shutil.copyfile(indexed.path, path)
    store = GeoPackageFeatureStore(path, temporal_extent=EXTENT)
    store.layer.in_memory_min_rows = 0
    store.layer.load_columns_in_background = False  # this test reads the arrays
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(in_memory_columns, "MAX_CATEGORIES", 2)
        query = ItemsQuery(filter=parse_text(to_text(tree)), offset=offset, limit=30,
                           skip_geometry=True, sortby=[(key, descending)])
        statements = _sql_statements(store, lambda: store.page(query))
        assert store.page(query) == indexed.page(query)
    assert any(f'ORDER BY "{key}", "fid"' in sql for sql in statements), statements


@settings(max_examples=60, **SETTINGS)
@given(box=boxes(), tree=st.none() | ATTRIBUTE_FILTERS | spatials(), keys=IN_MEMORY_SORTS,
       offset=st.integers(0, 40), limit=st.integers(0, 60))
def test_bbox_and_intersects_from_memory_equal_sql(in_memory, indexed, box, tree, keys, offset,
                                                   limit) -> None:
    """bbox (R-tree boxes in numpy, exact GEOS tests only for boxes not inside), alone or with a
    filter or a spatial predicate: the same counts and pages as SQL on the same rows."""
    query = ItemsQuery(bbox=list(box), filter=parse_text(to_text(tree)) if tree else None,
                       offset=offset, limit=limit, skip_geometry=True,
                       sortby=[(name, order == "-") for name, order in keys])
    assert in_memory.page(query) == indexed.page(query)
    assert in_memory.count(query) == indexed.count(query)


@settings(max_examples=30, **SETTINGS)
@given(box=boxes(), shape=st.sampled_from(["bbox", "box", "triangle"]))
def test_intersects_of_large_layers_count_without_sql(in_memory, indexed, box, shape) -> None:
    """After the R-tree boxes are read once, a bbox or S_INTERSECTS count reads no R-tree and
    counts nothing in SQL: only the geometries of boxes crossing the literal's edge."""
    tree = ("spatial", "intersects", box, shape)
    queries = [ItemsQuery(filter=parse_text(to_text(tree)), limit=0),
               ItemsQuery(bbox=list(box), limit=0)]
    in_memory.count(queries[0])
    for query in queries:
        statements = _sql_statements(in_memory, lambda q=query: in_memory.count(q))
        assert not any("COUNT(" in sql or "rtree_" in sql for sql in statements), statements
        assert in_memory.count(query) == indexed.count(query)


@settings(max_examples=30, **SETTINGS)
@given(box=boxes())
def test_intersects_reads_no_geometry_whose_box_misses_the_polygon(in_memory, indexed,
                                                                   box) -> None:
    """S_INTERSECTS with a polygon: a feature whose R-tree box misses the polygon (though it
    lies within the polygon's bounds) is ruled out in numpy; only features whose box crosses
    the polygon's edge are read from SQLite for the exact test."""
    tree = ("spatial", "intersects", box, "triangle")
    query = ItemsQuery(filter=parse_text(to_text(tree)), limit=0)
    in_memory.count(query)  # the R-tree boxes are read once
    statements = _sql_statements(in_memory, lambda: in_memory.count(query))
    listed = [re.search(r"IN \(([\d, ]+)\)$", sql) for sql in statements]
    read = {int(key) for found in listed if found for key in found.group(1).split(",")}
    with sqlite3.connect(in_memory.layer.path) as conn:
        entries = conn.execute("SELECT id, minx, miny, maxx, maxy FROM rtree_places_geom")
        entries = entries.fetchall()
    triangle = literal_shape(box, "triangle")
    missed = {key for key, *bounds in entries if bounds[0] < bounds[2] and bounds[1] < bounds[3]
              and not shapely.intersects(triangle, shapely.box(*bounds))}
    assert not read & missed
    assert in_memory.count(query) == indexed.count(query)


@settings(max_examples=60, **SETTINGS)
@given(box=boxes(), shape=st.sampled_from(["box", "triangle", "notch"]),
       corners=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(1, 8),
                                  st.integers(1, 8)), min_size=1, max_size=40))
def test_boxes_held_by_a_literal_equal_geos_contains(box, shape, corners) -> None:
    """The corner test for convex literals (and the box test for others) against GEOS's
    contains, on boxes of a grid over the literal's bounds (so corners fall on its edges and
    vertices too)."""
    minx, miny, maxx, maxy = box
    literal = literal_shape(box, "triangle" if shape == "notch" else shape)
    if shape == "notch":  # not convex: a bite out of the box
        literal = shapely.box(*box).difference(literal.buffer(-(maxx - minx) / 4))
    if literal.is_empty or literal.area == 0:
        return
    xs = [minx + (maxx - minx) * i / 8 for i in range(9)]
    ys = [miny + (maxy - miny) * j / 8 for j in range(9)]
    x0 = np.array([xs[i] for i, _, w, _ in corners])
    y0 = np.array([ys[j] for _, j, _, _ in corners])
    x1 = np.array([xs[min(i + w, 8)] for i, _, w, _ in corners])
    y1 = np.array([ys[min(j + h, 8)] for _, j, _, h in corners])
    boxed = (x0 < x1) & (y0 < y1)
    shapely.prepare(literal)
    held = in_memory_columns._holds_boxes(literal, x0, y0, x1, y1, boxed)  # noqa: SLF001
    made = shapely.box(x0, y0, x1, y1)
    expected = shapely.contains(literal, made)
    # Never held where GEOS says not contained (an exact test would be skipped wrongly);
    # exactly GEOS's answer where the box keeps off the literal's boundary. A box touching
    # the boundary from inside may be left to the exact test: that only costs time.
    assert not (held & ~expected)[boxed].any()
    clear = boxed & ~shapely.intersects(literal.boundary, made)
    assert (held[clear] == expected[clear]).all()


def test_columns_in_memory_are_read_from_any_thread(indexed, tmp_path) -> None:
    """Threads of one worker share the columns: a column first named in another thread is
    read through that thread's own connection (gunicorn's gthread workers)."""
    path = tmp_path / "places.gpkg"
    shutil.copyfile(indexed.path, path)
    store = GeoPackageFeatureStore(path, temporal_extent=EXTENT)
    store.layer.in_memory_min_rows = 0
    store.layer.load_columns_in_background = False  # this test reads the arrays
    texts = ["pop > 50000", "area < 300", "region = 'Osh'", "pop < 1000 OR area > 900",
             "S_INTERSECTS(geometry, POLYGON((70 39, 76 39, 76 42, 70 42, 70 39)))"]
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        counts = list(pool.map(lambda t: store.count(ItemsQuery(filter=parse_text(t))), texts))
    assert counts == [indexed.count(ItemsQuery(filter=parse_text(t))) for t in texts]


# --- column arrays kept in files, memory-mapped by every worker (ColumnFiles) -------------------

def _as_new_worker() -> None:
    """Forget the columns this process holds, as a freshly started worker has none."""
    in_memory_columns._CACHE.clear()


@pytest.fixture(scope="module")
def from_files(in_memory: GeoPackageFeatureStore,
               tmp_path_factory: pytest.TempPathFactory) -> GeoPackageFeatureStore:
    """The in-memory layer again, with a column cache folder (as `taza serve` gives it)."""
    path = tmp_path_factory.mktemp("column-files") / "places.gpkg"
    shutil.copyfile(in_memory.path, path)
    write_feature_text(path, "places", None)
    store = GeoPackageFeatureStore(path, temporal_extent=EXTENT,
                                   column_cache=tmp_path_factory.mktemp("column-cache"))
    store.layer.in_memory_min_rows = 0
    store.layer.load_columns_in_background = False  # this test reads the arrays
    return store


@settings(max_examples=60, **SETTINGS)
@given(box=st.none() | boxes(), tree=st.none() | ATTRIBUTE_FILTERS | spatials(),
       keys=IN_MEMORY_SORTS, offset=st.integers(0, 40), limit=st.integers(0, 60))
def test_columns_from_files_equal_sql(from_files, indexed, box, tree, keys, offset,
                                      limit) -> None:
    """Every query first as a new worker (arrays memory-mapped from the files the earlier
    examples wrote, or written now), then again from the worker's own columns: the same
    counts and pages as SQL on the same rows."""
    query = ItemsQuery(bbox=list(box) if box else None,
                       filter=parse_text(to_text(tree)) if tree else None, offset=offset,
                       limit=limit, skip_geometry=True,
                       sortby=[(name, order == "-") for name, order in keys])
    _as_new_worker()
    assert from_files.count(query) == indexed.count(query)
    assert from_files.page(query) == indexed.page(query)


def test_a_new_worker_reads_no_column_from_sqlite(in_memory, indexed, tmp_path) -> None:
    """Once one worker has read the keys, the R-tree boxes, the columns and a sort order of
    text of many values, a new worker counts and pages with them without any statement that
    reads them again (SQLite's trace): only primary-key lookups remain (the geometries of
    boxes crossing the bbox's edge, the page's rows). Its own file and cache folder: what the
    first worker writes here is all the second one finds."""
    path = tmp_path / "places.gpkg"
    shutil.copyfile(in_memory.path, path)  # with its stored feature text
    store = GeoPackageFeatureStore(path, temporal_extent=EXTENT,
                                   column_cache=tmp_path / "column-cache")
    store.layer.in_memory_min_rows = 0
    store.layer.load_columns_in_background = False  # this test reads the arrays
    # name and region keep their categories (filtered from memory); code, one value a row,
    # has more: filters on it go to SQL, a sort by it is ranked in SQLite's ORDER BY.
    few = max(len(COLUMN_VALUES["name"]), len(COLUMN_VALUES["region"]))
    assert few < len(COLUMN_VALUES["code"])
    queries = [ItemsQuery(bbox=[70, 39, 76, 42], filter=parse_text(text), limit=20,
                          sortby=[(key, True)])
               for text, key in (("pop > 5000 AND region <> 'Osh'", "code"),
                                 ("area < 400 OR name < 'M'", "pop"))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(in_memory_columns, "MAX_CATEGORIES", few)
        _as_new_worker()
        first: list = []
        statements = _sql_statements(store, lambda: first.extend(store.page(q) for q in queries))
        assert any('ORDER BY "code", "fid"' in sql for sql in statements), statements
        assert any("rtree_" in sql for sql in statements), statements
        assert any((tmp_path / "column-cache").rglob("*.npy"))
        _as_new_worker()
        for query, expected in zip(queries, first, strict=True):
            pages: list = []
            statements = _sql_statements(store, lambda q=query, out=pages: out.extend(
                [store.count(q), store.page(q)]))
            assert statements and all(' WHERE "fid" IN (' in sql and "rtree_" not in sql
                                      for sql in statements), statements
            assert pages == [indexed.count(query), expected] and expected == indexed.page(query)


def test_column_files_follow_the_category_limit_they_were_written_under(in_memory,
                                                                          tmp_path) -> None:
    """Column files written while `code` had categories (filtered from memory) are not read
    back after the limit falls below its count of values: its filters then go to SQL."""
    path = tmp_path / "places.gpkg"
    shutil.copyfile(in_memory.path, path)
    store = GeoPackageFeatureStore(path, temporal_extent=EXTENT,
                                   column_cache=tmp_path / "column-cache")
    store.layer.in_memory_min_rows = 0
    store.layer.load_columns_in_background = False  # this test reads the arrays
    code = sorted(COLUMN_VALUES["code"])[0]
    query = ItemsQuery(filter=parse_text(f"code = '{code}'"), limit=5)
    _as_new_worker()
    expected = store.page(query)
    _as_new_worker()
    assert not any('"code" =' in sql for sql in _sql_statements(store, lambda: store.page(query)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(in_memory_columns, "MAX_CATEGORIES", 2)
        _as_new_worker()
        statements = _sql_statements(store, lambda: store.page(query))
        assert any('"code" =' in sql for sql in statements), statements
        assert store.page(query) == expected


def test_damaged_column_files_are_read_again_from_sqlite(from_files, indexed) -> None:
    """A file cut short (a full disk) or a description that is not JSON is not trusted: the
    arrays are read from SQLite again, the answers stay right and the files are rewritten."""
    query = ItemsQuery(bbox=[70, 39, 76, 42], filter=parse_text("pop > 5000 OR name < 'M'"),
                       limit=30, sortby=[("area", False)])
    from_files.count(query)
    folder = next(from_files.layer.column_cache.iterdir())
    for file in folder.iterdir():
        file.write_bytes(file.read_bytes()[:len(file.read_bytes()) // 2])
    _as_new_worker()
    assert from_files.page(query) == indexed.page(query)
    assert from_files.count(query) == indexed.count(query)
    _as_new_worker()  # the rewritten files serve the next worker without reading SQLite
    statements = _sql_statements(from_files, lambda: from_files.count(query))
    assert all(' WHERE "fid" IN (' in sql for sql in statements), statements
    assert from_files.count(query) == indexed.count(query)


def test_an_unwritable_column_cache_keeps_columns_in_memory(indexed, tmp_path, caplog) -> None:
    """A cache folder that cannot be made (a file stands in its way): the columns stay in the
    worker's memory, the answers are SQL's and the log says why."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    path = tmp_path / "places.gpkg"
    shutil.copyfile(indexed.path, path)
    store = GeoPackageFeatureStore(path, temporal_extent=EXTENT, column_cache=blocked / "cache")
    store.layer.in_memory_min_rows = 0
    store.layer.load_columns_in_background = False  # this test reads the arrays
    query = ItemsQuery(filter=parse_text("pop > 5000 AND region <> 'Osh'"), limit=30,
                       sortby=[("pop", True)])
    with caplog.at_level("WARNING", logger="catalog.gpkg.columns"):
        assert store.page(query) == indexed.page(query)
    assert "held in memory only" in caplog.text


# -- arrays read in the background ------------------------------------------------------------

def test_a_new_layer_is_answered_by_sql_while_a_thread_reads_its_arrays(in_memory, indexed,
                                                                        tmp_path) -> None:
    """The default (TAZA_COLUMN_LOADS=background): a large layer whose arrays are neither in
    memory nor in files answers its first query by SQL (count and ORDER BY in SQLite's
    trace) and has them read by a thread; once it is done, the same query is answered from
    them (one primary-key lookup). The answers are the same."""
    path = tmp_path / "places.gpkg"
    shutil.copyfile(in_memory.path, path)
    store = GeoPackageFeatureStore(path, temporal_extent=EXTENT,
                                   column_cache=tmp_path / "column-cache")
    store.layer.in_memory_min_rows = 0
    assert store.layer.load_columns_in_background
    query = ItemsQuery(filter=parse_text("pop > 5000 AND region <> 'Osh'"), limit=20,
                       sortby=[("pop", True)])
    _as_new_worker()
    pages, first, later = answered_by_sql_then_from_arrays(
        lambda: store.page(query), lambda work: _sql_statements(store, work),
        tmp_path / "column-cache")
    assert any("COUNT(" in sql for sql in first), first
    assert len(later) <= 1 and all(" IN (" in sql for sql in later), later
    assert pages[0] == pages[1] == indexed.page(query)
    _as_new_worker()


def test_a_query_does_not_wait_for_arrays_another_thread_is_reading(indexed) -> None:
    """While one thread reads a layer's arrays (held here in its first read, of the keys),
    a query that defers engine reads gets NotLoaded at once instead of waiting: the held read
    cannot end before the query has returned."""
    started, release = threading.Event(), threading.Event()
    layer = indexed.layer

    class HeldInItsFirstRead(SqliteColumnReader):
        def keys(self) -> np.ndarray:
            started.set()
            release.wait(60)
            return super().keys()

    identity = ("held in its first read", layer.path)

    def reader() -> SqliteColumnReader:
        return HeldInItsFirstRead(layer.path, layer.version, layer.schema, None)

    loading = threading.Thread(target=in_memory_columns.columns_of, args=(identity, reader))
    loading.start()
    try:
        assert started.wait(60)
        with in_memory_columns.engine_reads_deferred(), \
                pytest.raises(in_memory_columns.NotLoaded):
            in_memory_columns.columns_of(identity, reader)
        assert not release.is_set() and loading.is_alive()
    finally:
        release.set()
        loading.join(60)
    with in_memory_columns.engine_reads_deferred():  # read now: no engine read is needed
        assert len(in_memory_columns.columns_of(identity, reader).pks) == len(BY_FID)
    _as_new_worker()
