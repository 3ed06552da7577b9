"""The STAC index on pgstac (TAZA_DATABASE_URL) answers as the embedded SQLite index does.

Both backends index the published samples; hypothesis draws item and collection searches
(bounded in count) and both must give the same items in the same order, page by page. Then the
real server runs on the PostgreSQL profile and the STAC API tests of tests/test_stac_api.py
(stac-api-validator, pystac-client) run against it unchanged. One database of the session's
private PostgreSQL serves the module.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.cluster.postgres import PrivatePostgres
from catalog.postgis.database import close_pools
from catalog.stac_index import cql, pgstac_backend, sync
from catalog.stac_index.backend import (
    CollectionSearch,
    InvalidQuery,
    ItemSearch,
    SortKey,
    TimeRange,
)
from catalog.stac_index.pgstac_backend import PgstacBackend, fold, words_of
from catalog.stac_index.sqlite_backend import SqliteBackend, julian_day
from catalog.store import CatalogStore
from tests.conftest import (
    TEST_PROFILE,
    Server,
    copy_home,
    drop_database,
    home_database,
    start_server,
    stop_server,
)
from tests.test_stac_api import (  # noqa: F401 - the same tests, on this module's server
    client,
    items,
    test_cql2_json_between_in_the_form_of_cql2_1_0,
    test_pystac_client_bbox_search,
    test_pystac_client_cql2_text_and_json_filters,
    test_pystac_client_datetime_search,
    test_pystac_client_intersects_search,
    test_pystac_client_sortby_pages_in_order,
    test_stac_api_validator_reports_no_errors,
)

DATABASE = "stac_pgstac"
MAX_PAGES = 40


@pytest.fixture(scope="module")
def home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published samples: the session's published_home, or on the PostgreSQL test profile
    a copy of the published catalog with its own database (its releases and pgstac already
    there; this module changes that index)."""
    if TEST_PROFILE == "embedded":
        return request.getfixturevalue("published_home")
    return copy_home(request.getfixturevalue("published_catalog"),
                     tmp_path_factory.mktemp("stac-pgstac") / "home")


@pytest.fixture(scope="module")
def database_url(private_postgres: PrivatePostgres, home: Path) -> Iterator[str]:
    if url := home_database(home):  # the PostgreSQL test profile: the home's own database
        yield url
        close_pools()
        drop_database(url)
        return
    url = private_postgres.create_database(DATABASE)
    PgstacBackend.migrate(url)
    yield url
    close_pools()
    private_postgres.drop_database(DATABASE)


@pytest.fixture(scope="module")
def backends(home: Path, database_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteBackend, PgstacBackend]:
    store = CatalogStore(home, database_url=home_database(home))
    embedded = SqliteBackend(tmp_path_factory.mktemp("stac-sqlite") / "index.sqlite")
    on_pgstac = PgstacBackend(database_url)
    for backend in (embedded, on_pgstac):
        # On the PostgreSQL test profile the publish has already brought pgstac to the release.
        assert sync.update(store, backend, store.current()) or backend.indexed_release() == \
            store.current().number and home_database(home) == database_url
    return embedded, on_pgstac


@pytest.fixture(scope="module")
def server(home: Path, database_url: str, backends) -> Iterator[Server]:
    """The real server on the PostgreSQL profile (overrides the session's embedded one)."""
    running = start_server(home, workers=1, env={"TAZA_DATABASE_URL": database_url},
                           log_name="pgstac-server.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def sample(backends) -> dict:
    """What the searches are drawn from: every item, its words and its properties."""
    embedded, _ = backends
    documents = embedded.search(ItemSearch(limit=100000)).features
    words = sorted({w for d in documents for w in words_of(d["properties"].get("title", ""))
                    .split()})
    numbers = sorted({(k, v) for d in documents for k, v in d["properties"].items()
                      if isinstance(v, int | float) and not isinstance(v, bool)})
    strings = sorted({(k, v) for d in documents for k, v in d["properties"].items()
                      if isinstance(v, str) and "'" not in v and len(v) < 80})
    return {"ids": sorted({d["id"] for d in documents}),
            "collections": sorted({d["collection"] for d in documents}),
            "words": words, "numbers": numbers, "strings": strings}


# -- drawing searches ----------------------------------------------------------------------


def boxes() -> st.SearchStrategy:
    return st.tuples(st.floats(66, 85), st.floats(36, 45), st.floats(0.1, 12),
                     st.floats(0.1, 6)).map(lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))


def time_ranges() -> st.SearchStrategy:
    moments = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2027, 1, 1)).map(
        lambda m: julian_day(m.replace(tzinfo=dt.UTC)))
    return st.tuples(st.none() | moments, st.none() | moments).map(
        lambda p: TimeRange(*sorted(p)) if None not in p else TimeRange(*p))


@st.composite
def filters(draw, sample: dict):
    """CQL2 text over the samples' properties: comparisons, LIKE, spatial and temporal."""
    def one() -> str:
        kind = draw(st.sampled_from(["number", "string", "like", "spatial", "temporal", "id"]))
        if kind == "number" and sample["numbers"]:
            name, value = draw(st.sampled_from(sample["numbers"]))
            return f'"{name}" {draw(st.sampled_from(["<", "<=", "=", ">", ">="]))} {value}'
        if kind == "string" and sample["strings"]:
            name, value = draw(st.sampled_from(sample["strings"]))
            return f"\"{name}\" {draw(st.sampled_from(['=', '<>', '<', '>']))} '{value}'"
        if kind == "like":
            return f"title LIKE '%{draw(st.sampled_from(['a', 'e', 'Kyrg', 'ы', 'o']))}%'"
        if kind == "spatial":
            west, south, east, north = draw(boxes())
            return f"S_INTERSECTS(geometry, BBOX({west}, {south}, {east}, {north}))"
        if kind == "temporal":
            year = draw(st.integers(2000, 2026))
            relation = draw(st.sampled_from(["T_INTERSECTS", "T_DURING", "T_BEFORE", "T_AFTER"]))
            name = draw(st.sampled_from(["datetime", "start_datetime"]))
            return (f"{name} {relation} INTERVAL('{year}-01-01T00:00:00Z', "
                    f"'{year + 1}-06-30T00:00:00Z')")
        return f"id > '{draw(st.sampled_from(sample['ids']))}'"

    first = one()
    joiner = draw(st.sampled_from(["", " AND ", " OR ", " AND NOT "]))
    return first if not joiner else f"({first}){joiner}({one()})"


@st.composite
def item_searches(draw, sample: dict) -> ItemSearch:
    sort_fields = ["datetime", "id", "collection", "title",
                   *{name for name, _ in sample["numbers"]}]
    sortby = draw(st.lists(st.builds(SortKey, st.sampled_from(sorted(sort_fields)),
                                     st.booleans()), max_size=2, unique_by=lambda k: k.field))
    words = st.sampled_from(sample["words"]).flatmap(
        lambda w: st.integers(1, len(w)).map(lambda n: w[:n]))
    # One or two criteria at a time: with all of them drawn at once most answers are empty.
    chosen = draw(st.sets(st.sampled_from(["collections", "ids", "bbox", "intersects",
                                           "datetime", "filter", "q"]), max_size=2))
    text = draw(filters(sample)) if "filter" in chosen else None
    return ItemSearch(
        limit=draw(st.integers(1, 7)),
        collections=tuple(draw(st.lists(st.sampled_from(sample["collections"]), min_size=1,
                                        max_size=3))) if "collections" in chosen else (),
        ids=tuple(draw(st.lists(st.sampled_from(sample["ids"]), min_size=1, max_size=4)))
        if "ids" in chosen else (),
        bbox=draw(boxes()) if "bbox" in chosen else None,
        intersects=draw(boxes().map(lambda b: shapely.box(*b).buffer(0.2)))
        if "intersects" in chosen else None,
        datetime=draw(time_ranges()) if "datetime" in chosen else None,
        filter=cql.parse(text, "cql2-text") if text else None,
        sortby=tuple(sortby),
        q=tuple(draw(st.lists(st.lists(words, min_size=1, max_size=2).map(" ".join),
                              min_size=1, max_size=2))) if "q" in chosen else ())


def all_pages(backend, query: ItemSearch) -> list[list[tuple[str, str]]]:
    pages = []
    while len(pages) < MAX_PAGES:
        page = backend.search(query)
        pages.append([(f["collection"], f["id"]) for f in page.features])
        if page.next_token is None:
            return pages
        query = ItemSearch(**{**query.__dict__, "token": page.next_token})
    return pages


def answer(backend, call):
    try:
        return call(backend)
    except InvalidQuery as err:
        return ("invalid", str(err))


# -- the differential tests ----------------------------------------------------------------


@pytest.mark.timeout(300)
def test_item_searches_answer_alike_on_both_backends(backends, sample):
    embedded, on_pgstac = backends
    answered = {"matched": 0}

    @settings(max_examples=50, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(item_searches(sample))
    def check(query: ItemSearch) -> None:
        expected = answer(embedded, lambda b: all_pages(b, query))
        assert answer(on_pgstac, lambda b: all_pages(b, query)) == expected, query
        answered["matched"] += isinstance(expected, list) and bool(expected[0])

    check()
    assert answered["matched"] > 25  # the draws found items, not only empty answers


@pytest.mark.timeout(120)
def test_collection_searches_answer_alike_on_both_backends(backends, sample):
    embedded, on_pgstac = backends
    themes = sorted({c.get("taza:theme") for c in embedded.collections(
        CollectionSearch(limit=1000)).features} - {None})

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.builds(CollectionSearch, limit=st.integers(1, 5),
                     bbox=st.none() | boxes(), datetime=st.none() | time_ranges(),
                     q=st.lists(st.sampled_from(sample["words"]), max_size=2).map(tuple),
                     themes=st.lists(st.sampled_from(themes), max_size=2).map(tuple),
                     offset=st.integers(0, 6)))
    def check(query: CollectionSearch) -> None:
        def ids(backend):
            page = backend.collections(query)
            return [c["id"] for c in page.features], page.next_token
        assert answer(on_pgstac, ids) == answer(embedded, ids), query

    check()


def test_sorting_by_a_property_some_items_lack(backends, sample):
    """Items without the property come first ascending and last descending, on every page."""
    embedded, on_pgstac = backends
    names = sorted({name for name, _ in sample["numbers"]})
    documents = embedded.search(ItemSearch(limit=100000)).features
    partial = [n for n in names if 0 < sum(n in d["properties"] for d in documents)
               < len(documents)]
    assert partial
    for name in partial:
        for descending in (False, True):
            query = ItemSearch(limit=3, sortby=(SortKey(name, descending),))
            assert all_pages(on_pgstac, query) == all_pages(embedded, query), (name, descending)


def test_single_objects_and_queryables_alike(backends, sample):
    embedded, on_pgstac = backends
    for collection_id in sample["collections"]:
        assert on_pgstac.collection(collection_id) == embedded.collection(collection_id)
        assert on_pgstac.queryables(collection_id) == embedded.queryables(collection_id)
    assert on_pgstac.queryables(None) == embedded.queryables(None)
    assert on_pgstac.indexed_versions() == embedded.indexed_versions()
    for document in embedded.search(ItemSearch(limit=100000)).features:
        stored = on_pgstac.item(document["collection"], document["id"])
        assert shapely.geometry.shape(stored.pop("geometry")).equals(
            shapely.geometry.shape(document.pop("geometry")))
        assert stored == document
    assert on_pgstac.item(sample["collections"][0], "no-such-item") is None


def test_items_live_in_pgstac_tables(backends, database_url, sample):
    """pgstac's own reader (its search function) sees the same items: the data is pgstac's."""
    with psycopg.connect(database_url, options="-c search_path=pgstac,public") as conn:
        count = conn.execute("SELECT count(*) FROM pgstac.items").fetchone()[0]
        found = conn.execute("SELECT pgstac.search(%s::jsonb)", ('{"limit": 1000}',)
                             ).fetchone()[0]
    assert count == len(sample["ids"]) > 0
    assert sorted(f["id"] for f in found["features"]) == sample["ids"]


def test_free_text_is_multilingual_prefix_search(backends):
    """pgstac's own `q` is an English tsvector; ours matches word prefixes in ky/ru/en."""
    embedded, on_pgstac = backends
    for term in ("рельеф", "Рель", "бийикт", "elev", "кыргызстан"):
        query = ItemSearch(limit=1000, q=(term,))
        ids = [f["id"] for f in on_pgstac.search(query).features]
        assert ids == [f["id"] for f in embedded.search(query).features], term
    assert fold("Café") == "cafe" and fold("йод") == "йод"  # as FTS5: Latin marks only


def test_the_server_answers_from_pgstac(server, database_url):
    """The server on this profile reads PostgreSQL, not a SQLite file: its pooled
    connection's last statement is our search over the index beside pgstac's items (this
    process's pools closed first)."""
    close_pools()
    found = requests.get(f"{server.url}/stac/search", params={"limit": 2}, timeout=60)
    assert found.status_code == 200 and len(found.json()["features"]) == 2
    with psycopg.connect(database_url) as conn:
        statements = [row[0] for row in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = %s AND application_name = "
            "'taza-koom'", (urlsplit(database_url).path.lstrip("/"),))]
    assert any("FROM taza_stac.items t" in s for s in statements), statements


def test_apply_is_atomic_and_checks_the_expected_release(backends, home, database_url):
    _, on_pgstac = backends
    release = on_pgstac.indexed_release()
    assert not on_pgstac.apply(release + 1, [], [], expected_release=release - 1)
    assert on_pgstac.indexed_release() == release
    store = CatalogStore(home, database_url=home_database(home))
    dataset_id = sorted(store.current().datasets)[0]
    broken = [(dataset_id, 99, {"id": "x"}, [])]  # a collection without an extent: fails
    with pytest.raises(KeyError):
        on_pgstac.apply(release + 1, broken, [dataset_id], expected_release=release)
    assert on_pgstac.indexed_release() == release
    assert on_pgstac.indexed_versions() == store.current().datasets


def test_a_removal_then_scrub_leaves_nothing_and_the_next_update_restores(backends,
                                                                          home,
                                                                          database_url):
    _, on_pgstac = backends
    store = CatalogStore(home, database_url=home_database(home))
    release = on_pgstac.indexed_release()
    removed = sorted(store.current().datasets)[0]
    assert on_pgstac.apply(release + 1, [], [removed], expected_release=release)
    on_pgstac.scrub()
    with psycopg.connect(database_url) as conn:
        left = [conn.execute(f"SELECT count(*) FROM {table} WHERE collection = %s",  # noqa: S608
                             (removed,)).fetchone()[0]
                for table in ("pgstac.items", "taza_stac.items")]
    assert left == [0, 0]
    assert on_pgstac.collection(removed) is None
    assert sync.update(store, on_pgstac, store.current())  # the live release comes back
    assert on_pgstac.collection(removed) is not None


def test_pages_as_the_api_writes_them_are_the_same_text(backends):
    """Both backends keep each item as the API writes it (SQLite's `page`, our `rendered`):
    the rendered page of every item is the same text, in the same order."""
    embedded, on_pgstac = backends
    for query in (ItemSearch(limit=100000), ItemSearch(limit=7, sortby=(SortKey("id", False),))):
        mine, theirs = (b.search(query, rendered=True) for b in (on_pgstac, embedded))
        assert theirs.rendered, "the SQLite index rendered no page: nothing compared"
        assert mine.rendered == theirs.rendered
        assert mine.next_token == theirs.next_token


def _synthetic_items(collection_id: str, count: int, rng: random.Random,
                     extra: dict | None = None) -> tuple[dict, list[dict]]:
    """A SYNTHETIC collection of `count` point items with a number property `score` (absent
    from every tenth item) and a made-up title."""
    letters = "abcdefghijklmnopqrstuvwxyzабвгдежзиклмнопрстуфыңөү"

    def word() -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randint(5, 9)))

    made = []
    for n in range(count):
        properties = {"datetime": f"2020-{1 + n % 12:02d}-{1 + n % 28:02d}T00:00:00Z",
                      "title": f"{word()} {word()} {word()}", **(extra or {})}
        if n % 10:
            properties["score"] = round(rng.uniform(0, 100), 2)
        x, y = rng.uniform(69, 80), rng.uniform(39, 43)
        made.append({"type": "Feature", "stac_version": "1.1.0", "id": f"t{n:05d}",
                      "collection": collection_id, "bbox": [x, y, x, y],
                      "geometry": {"type": "Point", "coordinates": [x, y]}, "links": [],
                      "assets": {}, "properties": properties})
    collection = {"type": "Collection", "stac_version": "1.1.0", "id": collection_id,
                  "description": "SYNTHETIC items for query plans", "license": "CC0-1.0",
                  "links": [], "extent": {"spatial": {"bbox": [[69, 39, 80, 43]]},
                                          "temporal": {"interval": [[None, None]]}}}
    return collection, made


def _plan_and_scanned(url: str, backend: PgstacBackend, query: ItemSearch) -> tuple[str, list]:
    """EXPLAIN of a search, and its ids when PostgreSQL may use no index (a scan's answer)."""
    statement, params, _ = backend.search_statement(query)
    with psycopg.connect(url) as conn:
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + statement, params))
        conn.execute("SET enable_bitmapscan = off")
        conn.execute("SET enable_indexscan = off")
        scanned = [r[0]["id"] for r in conn.execute(statement, params)]
    return plan, scanned


@pytest.fixture(scope="module")
def planned(private_postgres) -> Iterator[tuple[str, PgstacBackend]]:
    """20,000 SYNTHETIC point items, scattered at random over Kyrgyzstan, in one load."""
    collection, synthetic = _synthetic_items("plan-test", 20000, random.Random(29))
    url = private_postgres.create_database("stac_plans")
    try:
        backend = PgstacBackend(url)
        assert backend.apply(1, [("plan-test", 1, collection, synthetic)], [])
        yield url, backend
    finally:
        close_pools()
        private_postgres.drop_database("stac_plans")


def test_number_properties_and_the_default_order_use_indexes(planned):
    """A range or a sort on a number property reads its expression index, and the default
    order (newest first) walks the time index, on 20,000 SYNTHETIC items (the plan, not a
    time, is asserted; without the indexes each was a scan of every item's JSON, 200,000
    items: 8 req/s). The answers are those of a scan with every index off."""
    url, backend = planned
    index = pgstac_backend.property_index("score")
    for query, used in [
        (ItemSearch(limit=10, filter=cql.parse("score < 0.2", "cql2-text")), index),
        (ItemSearch(limit=10, filter=cql.parse("score >= 20", "cql2-text"),
                    sortby=(SortKey("score", False), SortKey("id", False))), index),
        (ItemSearch(limit=10, filter=cql.parse("score >= 20", "cql2-text"),
                    sortby=(SortKey("score", True),)), index),
        (ItemSearch(limit=10), "items_by_dt"),
    ]:
        plan, scanned = _plan_and_scanned(url, backend, query)
        assert used in plan, (query, plan)
        found = [f["id"] for f in backend.search(query).features]
        assert found and found == scanned[:10], query


@pytest.mark.parametrize("box", [(70, 40, 71, 41), (74, 42, 74.5, 42.5), (69, 39, 70.5, 40)])
def test_the_items_of_a_small_area_share_pages(planned, box):
    """Items are written in Z-order of their places (pgstac_backend.z_order), so a box's
    matches lie on few of the table's pages: a search reads those pages. Written in arrival
    order, random places put nearly every match on a page of its own."""
    url, backend = planned
    with psycopg.connect(url) as conn:
        matches, pages = conn.execute(
            "SELECT count(*), count(DISTINCT (ctid::text::point)[0]) FROM taza_stac.items "
            "WHERE geometry && ST_MakeEnvelope(%s, %s, %s, %s, 4326)", box).fetchone()
        per_page = conn.execute(
            "SELECT count(*)::float8 / count(DISTINCT (ctid::text::point)[0]) "
            "FROM taza_stac.items").fetchone()[0]
    assert matches > 100, matches
    assert pages < matches / (per_page / 2), (matches, pages, per_page)
    found = backend.search(ItemSearch(limit=1000, bbox=box)).features
    assert len(found) == matches  # the order on disk changes nothing in the answers


def test_an_index_of_an_older_schema_is_rebuilt_from_the_releases(private_postgres,
                                                                  monkeypatch):
    """An index written by an older version of this code (its schema_version) is dropped on
    migration with the pgstac collections it indexed: the next update indexes again."""
    collection, synthetic = _synthetic_items("upgrade-test", 30, random.Random(31))
    url = private_postgres.create_database("stac_upgrade")
    try:
        backend = PgstacBackend(url)
        assert backend.apply(4, [("upgrade-test", 1, collection, synthetic)], [])
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE taza_stac.meta SET value = '1' WHERE key = 'schema_version'")
        monkeypatch.setattr(pgstac_backend, "_MIGRATED", set())  # a new process
        assert backend.indexed_release() is None
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM pgstac.collections").fetchone()[0] == 0
        assert backend.apply(5, [("upgrade-test", 1, collection, synthetic)], [],
                             expected_release=None)
        assert backend.indexed_release() == 5
        assert backend.item("upgrade-test", "t00007")["id"] == "t00007"
    finally:
        close_pools()
        private_postgres.drop_database("stac_upgrade")


def test_free_text_uses_the_trigram_index_on_a_large_table(private_postgres):
    """`q` on PostgreSQL is served by the pg_trgm GIN index over the words (the plan, not a
    time, is asserted): 4,000 SYNTHETIC items with made-up Latin and Cyrillic words, enough for
    the planner to prefer the index to a scan. The answers are those of a scan (index off)."""
    collection, synthetic = _synthetic_items("trigram-test", 4000, random.Random(13))
    url = private_postgres.create_database("stac_trigram")
    try:
        backend = PgstacBackend(url)
        assert backend.apply(1, [("trigram-test", 1, collection, synthetic)], [])  # ANALYZEs
        searched = synthetic[1234]["properties"]["title"].split()[1]
        query = ItemSearch(limit=10, q=(searched[:4],))
        plan, scanned = _plan_and_scanned(url, backend, query)
        assert "items_by_words" in plan, plan
        found = [f["id"] for f in backend.search(query).features]
        assert "t01234" in found and found == scanned[:10]
    finally:
        close_pools()
        private_postgres.drop_database("stac_trigram")
