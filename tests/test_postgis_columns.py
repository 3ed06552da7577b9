"""The PostGIS store's columns in memory (catalog/postgis/columns.py): large tables count and
page bbox, plain attribute and intersects filters from arrays read once out of PostgreSQL.
Differential: the same table answered by SQL (a store that never uses the columns), and the
reference evaluator of tests/feature_reference.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygeofilter.parsers.cql2_text import parse as parse_text

from catalog.cluster.postgres import PrivatePostgres
from catalog.core import columns as in_memory_columns
from catalog.features import ItemsQuery
from catalog.features.postgis import PostgisFeatureStore
from catalog.postgis import drop_layer, find_layer, load_layer
from tests.feature_reference import (
    ATTRIBUTE_FILTERS,
    COLUMN_VALUES,
    EXTENT,
    FILTERS,
    N,
    answered_by_sql_then_from_arrays,
    boxes,
    evaluate,
    ref_ids,
    spatials,
    to_text,
    write_geopackage,
)

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
SORTS = st.lists(st.tuples(st.sampled_from(["pop", "area", "name", "region", "code"]),
                           st.sampled_from("+-")), max_size=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_geopackage(str(tmp_path_factory.mktemp("columns") / "places.gpkg"))


@pytest.fixture(scope="module")
def database_url(private_postgres: PrivatePostgres, source: str) -> str:
    url = private_postgres.create_database("postgis_columns")
    with psycopg.connect(url) as conn:
        load_layer(conn, "places", 1, source, "places")
    return url


def open_store(url: str, cache: Path | None, in_memory: bool,
               dataset: str = "places") -> PostgisFeatureStore:
    with psycopg.connect(url) as conn:
        layer = find_layer(conn, dataset, 1)
    store = PostgisFeatureStore(url, layer, temporal_extent=EXTENT, column_cache=cache)
    store.in_memory_min_rows = 0 if in_memory else N + 1
    store.load_columns_in_background = False  # the arrays are read by the request
    store.sql_box_matches = 0  # every bbox from memory (the rule has its own test)
    return store


@pytest.fixture(scope="module")
def by_sql(database_url: str) -> PostgisFeatureStore:
    return open_store(database_url, None, in_memory=False)


@pytest.fixture(scope="module")
def from_memory(database_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> PostgisFeatureStore:
    return open_store(database_url, tmp_path_factory.mktemp("column-cache"), in_memory=True)


def _as_new_worker() -> None:
    """Forget the columns this process holds, as a freshly started worker has none."""
    in_memory_columns._CACHE.clear()  # noqa: SLF001


def statements_of(store: PostgisFeatureStore, work: Callable[[], object]) -> list[str]:
    """The statements the store sends while `work` runs (a spy on its one way to the
    database: the queries still run)."""
    sent: list[str] = []
    run = store._rows  # noqa: SLF001

    def recording(statement: str, params: list) -> list[tuple]:
        sent.append(statement)
        return run(statement, params)

    store._rows = recording  # noqa: SLF001
    try:
        work()
    finally:
        del store._rows  # noqa: SLF001
    return sent


def everything(store: PostgisFeatureStore, **query) -> list:
    page = store.page(ItemsQuery(limit=N + 10, skip_geometry=True, **query))
    return sorted(feature["id"] for feature in page.features)


@settings(max_examples=60, **SETTINGS)
@given(box=st.none() | boxes(), tree=st.none() | ATTRIBUTE_FILTERS | FILTERS | spatials(),
       keys=SORTS, offset=st.integers(0, N), limit=st.integers(0, 60),
       new_worker=st.booleans())
def test_columns_in_memory_answer_as_sql_and_the_reference(from_memory, by_sql, box, tree,
                                                           keys, offset, limit,
                                                           new_worker) -> None:
    """Any bbox and filter (from memory, or by SQL where the columns cannot answer), first as
    a new worker (arrays memory-mapped from the cache files) or as the same one: the same
    counts and pages as SQL, and the reference's matches."""
    if new_worker:
        _as_new_worker()
    query = ItemsQuery(bbox=list(box) if box else None,
                       filter=parse_text(to_text(tree)) if tree else None, offset=offset,
                       limit=limit, skip_geometry=True,
                       sortby=[(name, order == "-") for name, order in keys])
    assert from_memory.count(query) == by_sql.count(query)
    assert from_memory.page(query) == by_sql.page(query)
    if tree is not None and box is None:
        assert everything(from_memory, filter=parse_text(to_text(tree))) == \
            ref_ids(lambda f: evaluate(tree, f) is True), to_text(tree)


@settings(max_examples=30, **SETTINGS)
@given(tree=ATTRIBUTE_FILTERS | spatials().filter(lambda leaf: leaf[1] == "intersects"),
       keys=SORTS, offset=st.integers(0, 40))
def test_counts_and_page_keys_of_large_tables_come_from_memory(from_memory, by_sql, tree,
                                                               keys, offset) -> None:
    """Once the columns are read, numberMatched and the page's keys need no statement: the
    only one left reads the page's rows by key, and the features equal SQL's."""
    query = ItemsQuery(filter=parse_text(to_text(tree)), offset=offset, limit=25,
                       sortby=[(name, order == "-") for name, order in keys])
    from_memory.count(query)  # the columns the filter names are read once, then kept
    pages: list = []
    sent = statements_of(from_memory, lambda: pages.append(from_memory.page(query)))
    assert all(" = ANY(%s)" in statement and "count(" not in statement for statement in sent), \
        sent
    assert len(sent) <= 1
    assert pages[0] == by_sql.page(query)
    assert not statements_of(from_memory, lambda: from_memory.count(query))


@settings(max_examples=25, **SETTINGS)
@given(tree=ATTRIBUTE_FILTERS.filter(lambda tree: "'" not in to_text(tree)),
       key=st.sampled_from(["code", "name", "region"]), descending=st.booleans(),
       offset=st.integers(0, 40))
def test_sorting_by_text_of_many_values_follows_postgresql_order(database_url, by_sql, tree, key,
                                                                 descending, offset) -> None:
    """Text columns with more distinct values than MAX_CATEGORIES are ranked in PostgreSQL's
    own ORDER BY (read once) and sort pages as SQL does."""
    store = open_store(database_url, None, in_memory=True)
    query = ItemsQuery(filter=parse_text(to_text(tree)), offset=offset, limit=30,
                       skip_geometry=True, sortby=[(key, descending)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(in_memory_columns, "MAX_CATEGORIES", 2)
        _as_new_worker()
        assert not statements_of(store, lambda: store.count(query))
        assert store.page(query) == by_sql.page(query)
    _as_new_worker()


def test_a_bbox_alone_expected_to_hold_few_features_goes_to_postgis(database_url,
                                                                     by_sql) -> None:
    """A bbox alone whose share of the layer's extent holds fewer features than
    sql_box_matches is read through the GiST index; a larger one, or one with an attribute
    filter, from memory. The answers are the same either way. The rule reads the table's
    statistics, not its arrays: a fresh worker sends a small box to SQL without reading any."""
    store = open_store(database_url, None, in_memory=True)
    store.sql_box_matches = N // 4
    small, large = [72.0, 40.0, 73.0, 41.0], [68.0, 38.0, 81.0, 44.0]
    queries = {"small": ItemsQuery(bbox=small, limit=10),
               "large": ItemsQuery(bbox=large, limit=10),
               "small, filtered": ItemsQuery(bbox=small, filter=parse_text("pop > 10"),
                                             limit=10)}
    _as_new_worker()
    assert store.page(queries["small"]) == by_sql.page(queries["small"])
    assert not in_memory_columns._CACHE  # noqa: SLF001 - no array was read
    store.count(queries["large"])  # the boxes are read once
    sent = {name: statements_of(store, lambda q=query: store.page(q))
            for name, query in queries.items()}
    assert any("count(*)" in statement for statement in sent["small"]), sent
    for name in ("large", "small, filtered"):
        assert all(" = ANY(%s)" in statement for statement in sent[name]), sent
    for query in queries.values():
        assert store.page(query) == by_sql.page(query)
        assert store.count(query) == by_sql.count(query)


def test_a_table_loaded_again_is_read_again(database_url: str, source: str,
                                            tmp_path: Path) -> None:
    """The cache names the table beyond its name (oid, creating transaction, load time): a
    version dropped and loaded again with other rows is never answered from the old arrays,
    in this worker or from the files of the node's cache."""
    query = ItemsQuery(filter=parse_text("pop > 1000 OR region = 'Osh'"), limit=0)
    cache = tmp_path / "column-cache"
    fewer = tmp_path / "fewer.gpkg"
    write_geopackage(str(fewer))
    with sqlite3.connect(fewer) as conn:
        conn.execute("DELETE FROM places WHERE fid > 40")
    with psycopg.connect(database_url) as conn:
        layer = load_layer(conn, "reloaded", 1, source, "places")
    before = open_store(database_url, cache, in_memory=True, dataset="reloaded").count(query)
    with psycopg.connect(database_url) as conn:
        drop_layer(conn, layer.dataset_id, layer.version)
        load_layer(conn, "reloaded", 1, str(fewer), "places")
    expected = open_store(database_url, None, in_memory=False, dataset="reloaded").count(query)
    assert 0 < expected < before
    for fresh in (False, True):
        if fresh:
            _as_new_worker()
        store = open_store(database_url, cache, in_memory=True, dataset="reloaded")
        assert store.count(query) == expected


def test_the_cache_files_hold_the_columns(from_memory: PostgisFeatureStore) -> None:
    from_memory.count(ItemsQuery(filter=parse_text("area < 500 AND region = 'Osh'")))
    assert from_memory.column_cache is not None
    assert any(from_memory.column_cache.rglob("*.npy"))
    assert len(COLUMN_VALUES["region"]) < in_memory_columns.MAX_CATEGORIES


@pytest.fixture(autouse=True, scope="module")
def _forget_columns() -> Iterator[None]:
    yield
    _as_new_worker()


def test_a_new_node_answers_by_sql_while_a_thread_reads_the_arrays(database_url, by_sql,
                                                                   tmp_path: Path) -> None:
    """The default (TAZA_COLUMN_LOADS=background): with no arrays in memory or in the node's
    cache, the first query of a large table is answered by SQL at once, and a thread reads
    the arrays it needs; once it is done, the same query is answered from them. The answers
    are the same."""
    store = open_store(database_url, tmp_path / "column-cache", in_memory=True)
    store.load_columns_in_background = True
    query = ItemsQuery(filter=parse_text("pop > 1000 OR region = 'Osh'"), limit=10,
                       sortby=[("pop", True)])
    _as_new_worker()
    pages, first, later = answered_by_sql_then_from_arrays(
        lambda: store.page(query), lambda work: statements_of(store, work),
        tmp_path / "column-cache")
    assert any("count(*)" in statement for statement in first), first
    assert all(" = ANY(%s)" in statement for statement in later), later
    assert pages[0] == pages[1] == by_sql.page(query)
    _as_new_worker()
