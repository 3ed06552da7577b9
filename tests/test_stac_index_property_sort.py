"""The SQLite STAC index sorts and filters on number properties through expression indexes.

Searches over a whole collection sorted by a number property (issue 14's "sortby on any
queryable") read a range of an index on (collection, property) instead of every item's JSON.
The plans are checked with EXPLAIN QUERY PLAN (no timing), and the answers, page by page,
against a reference computed in Python from the items themselves (hypothesis draws the sort
key, direction, filter and page size).
"""

from __future__ import annotations

import datetime as dt
import operator
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.stac_index import cql
from catalog.stac_index.backend import ItemSearch, SortKey
from catalog.stac_index.sqlite_backend import SqliteBackend

COLLECTIONS = ("first", "second")
START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "=": operator.eq}


def collection(name: str) -> dict:
    return {"type": "Collection", "stac_version": "1.1.0", "id": name, "license": "CC0-1.0",
            "description": "SYNTHETIC test items", "links": [],
            "extent": {"spatial": {"bbox": [[70.0, 40.0, 71.0, 41.0]]},
                       "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}}}


def items(name: str, count: int, rng: random.Random) -> list[dict]:
    """Items with a number property that some lack and many share (ties), and a count."""
    made = []
    for number in range(count):
        x, y = 70 + rng.random() * 0.9, 40 + rng.random() * 0.9
        properties = {"datetime": (START + dt.timedelta(hours=rng.randrange(5000)))
                      .isoformat().replace("+00:00", "Z"),
                      "scenes": rng.randrange(10)}
        if rng.random() > 0.15:
            properties["eo:cloud_cover"] = round(rng.choice([rng.uniform(0, 100), 50.0]), 1)
        made.append({"type": "Feature", "stac_version": "1.1.0", "id": f"{name}-{number:04d}",
                     "collection": name, "bbox": [x, y, x + 0.05, y + 0.05],
                     "geometry": {"type": "Polygon", "coordinates": [[
                         [x, y], [x + 0.05, y], [x + 0.05, y + 0.05], [x, y + 0.05], [x, y]]]},
                     "properties": properties, "assets": {}, "links": []})
    return made


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteBackend, dict]:
    rng = random.Random(14)
    backend = SqliteBackend(Path(tmp_path_factory.mktemp("stac-sort")) / "index.sqlite")
    made = {name: items(name, 300, rng) for name in COLLECTIONS}
    backend.apply(1, [(name, 1, collection(name), made[name]) for name in COLLECTIONS], [])
    return backend, made


def all_pages(backend: SqliteBackend, query: ItemSearch) -> list[str]:
    ids: list[str] = []
    while True:
        page = backend.search(query)
        ids += [f["id"] for f in page.features]
        if page.next_token is None:
            return ids
        query = ItemSearch(**{**query.__dict__, "token": page.next_token})


def reference(made: list[dict], key: str, descending: bool, op: str | None,
              threshold: float) -> list[str]:
    """Filter and order in Python: NULLs first ascending, last descending; ties by the order
    of indexing (the items' primary keys), in the sort's direction."""
    def value(item: dict):
        return item["properties"].get(key) if key != "datetime" else item["properties"][key]

    kept = [(position, item) for position, item in enumerate(made)
            if op is None or (item["properties"].get("eo:cloud_cover") is not None
                              and OPS[op](item["properties"]["eo:cloud_cover"], threshold))]
    present = sorted(((value(i), p, i["id"]) for p, i in kept if value(i) is not None),
                     reverse=descending)
    missing = sorted(((p, i["id"]) for p, i in kept if value(i) is None), reverse=descending)
    ordered = [i for *_, i in present]
    nulls = [i for _, i in missing]
    return ordered + nulls if descending else nulls + ordered


def test_number_properties_get_an_expression_index(indexed):
    backend, _ = indexed
    assert backend.indexed_properties() == {"eo:cloud_cover", "scenes"}


@pytest.mark.parametrize("descending", [False, True])
def test_sorting_a_collection_by_a_number_reads_its_index_not_every_item(indexed, descending):
    backend, _ = indexed
    query = ItemSearch(limit=10, collections=("first",),
                       sortby=(SortKey("eo:cloud_cover", descending),),
                       filter=cql.parse('"eo:cloud_cover" >= 20', "cql2-text"))
    plan = backend.plan(query)
    assert any("USING INDEX items_by_property_" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_datetime_sort_keeps_walking_the_time_index_under_a_number_filter(indexed):
    """A filter on a number property must not make SQLite read that property's range and
    sort it: walking the time index stops at the page."""
    backend, _ = indexed
    for sortby in ((), (SortKey("datetime", False),)):
        query = ItemSearch(limit=10, collections=("first",), sortby=sortby,
                           filter=cql.parse('"eo:cloud_cover" >= 20', "cql2-text"))
        plan = backend.plan(query)
        assert not any("items_by_property_" in step for step in plan), plan
        assert not any("TEMP B-TREE" in step for step in plan), plan


@pytest.mark.timeout(120)
def test_sorted_and_filtered_pages_equal_a_reference_in_python(indexed):
    backend, made = indexed

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(COLLECTIONS), st.sampled_from(["eo:cloud_cover", "scenes",
                                                          "datetime"]),
           st.booleans(), st.sampled_from([None, *OPS]), st.sampled_from([0.0, 20.5, 50.0, 99]),
           st.integers(1, 40))
    def check(name, key, descending, op, threshold, limit):
        text = f'"eo:cloud_cover" {op} {threshold}' if op else None
        query = ItemSearch(limit=limit, collections=(name,),
                           sortby=(SortKey(key, descending),),
                           filter=cql.parse(text, "cql2-text") if text else None)
        assert all_pages(backend, query) == reference(made[name], key, descending, op,
                                                      threshold), query

    check()
