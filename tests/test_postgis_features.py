"""Features on PostGIS (TAZA_DATABASE_URL): publishing loads each vector version into its table,
the real server answers from it as the embedded one does from the GeoPackages.

One catalog home is published once with the database set; two real servers serve it, one with
TAZA_DATABASE_URL (PostGIS) and one without (GeoPackages): the differential tests send both the
same requests. One database of the session's private PostgreSQL serves the whole module.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import mapbox_vector_tile
import psycopg
import pytest
import shapely
from owslib.ogcapi.features import Features
from shapely.geometry import shape

from catalog import publish
from catalog.cluster.postgres import PrivatePostgres
from catalog.core.webmercator import TileBounds
from catalog.features import GeoPackageFeatureStore, ItemsQuery
from catalog.features.mvt import FEATURE_CAP, HASH_MULTIPLIER
from catalog.features.postgis import PostgisFeatureStore, _gap_free_start
from catalog.postgis import SCHEMA, LayerTable
from catalog.problems import PublishError
from catalog.store import CatalogStore
from tests.conftest import Server, copy_dataset, start_server, stop_server, taza
from tests.test_tiles import DETAILED_SQUARE, QUADRILATERAL, SIMPLIFICATION_TILE

VECTORS = ("airports", "kyrgyzstan-boundary", "mobile-coverage", "settlements")
DATABASE = "postgis_features"


@pytest.fixture(scope="module")
def database_url(private_postgres: PrivatePostgres) -> Iterator[str]:
    yield private_postgres.create_database(DATABASE)
    private_postgres.drop_database(DATABASE)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Path:
    """The four vector samples, published through the command line with the database set."""
    home = tmp_path_factory.mktemp("postgis-home")
    manifests = [str(Path("datasets") / f"{name}.yaml") for name in VECTORS]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TAZA_DATABASE_URL", database_url)
        taza("publish", *manifests, home=home)
    return home


@pytest.fixture(scope="module")
def postgis_server(home: Path, database_url: str) -> Iterator[Server]:
    running = start_server(home, workers=1, env=postgis_env(database_url),
                           log_name="postgis-server.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def embedded_server(home: Path, database_url: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same versions served from their GeoPackages: a copy of the home with the
    database's release records written as the embedded profile keeps them."""
    served = tmp_path_factory.mktemp("embedded") / "home"
    shutil.copytree(home, served, ignore=shutil.ignore_patterns("*.log", "run"))
    write_release_files(served, database_url)
    running = start_server(served, workers=1, env={"TAZA_DATABASE_URL": ""},
                           log_name="embedded-server.log")
    yield running
    stop_server(running)


def write_release_files(home: Path, url: str) -> None:
    with psycopg.connect(url) as connection:
        live = connection.execute("SELECT release FROM taza_state.live_release").fetchone()[0]
        for number, state in connection.execute("SELECT number, state FROM taza_state.releases"):
            (home / "releases" / str(number) / "release.json").write_text(state)
    (home / "current.json").write_text(json.dumps({"release": live}))


def postgis_env(url: str) -> dict[str, str]:
    # While the database is down, requests fail after 2 s instead of 10 s.
    return {"TAZA_DATABASE_URL": url, "TAZA_DATABASE_WAIT_SECONDS": "2"}


def tables(url: str) -> set[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return {(row[0], row[1]) for row in conn.execute(
            "SELECT dataset_id, version FROM taza_features.layers")}


def table_names(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'taza_features'")}


# --- publishing ---------------------------------------------------------------------------------


def test_publishing_loads_one_table_per_vector_version(home: Path, database_url: str) -> None:
    assert tables(database_url) == {(name, 1) for name in VECTORS}
    assert len(table_names(database_url)) == len(VECTORS) + 1  # and the `layers` table
    with psycopg.connect(database_url) as conn:
        counted = conn.execute("SELECT total FROM taza_features.layers "
                               "WHERE dataset_id = 'settlements'").fetchone()[0]
    assert counted == 112


def test_time_filters_run_in_parallel_plans(home: Path, database_url: str) -> None:
    """instant() catches bad values in an EXCEPTION block, a subtransaction, which PostgreSQL
    refuses inside a parallel worker: declared PARALLEL SAFE it failed once a table was big
    enough for a parallel plan. Forcing parallel plans shows it on a small table."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET force_parallel_mode = on")
        conn.execute("SET parallel_setup_cost = 0")
        conn.execute("SET parallel_tuple_cost = 0")
        conn.execute("SET min_parallel_table_scan_size = 0")
        values = conn.execute(
            "SELECT taza_features.instant(v) FROM (VALUES ('2024-01-02'), ('not a date')) "
            "AS t(v)").fetchall()
    assert [v[0] is None for v in values] == [False, True]


class FailingSwitch(CatalogStore):
    """A store whose release switch fails, as a full disk would make it."""

    def switch(self, *args, **kwargs):
        raise OSError("No space left on device")


def test_a_failed_publish_leaves_no_table_and_the_previous_version_serving(
        home: Path, database_url: str, postgis_server: Server,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = postgis_server.get("/ogc/collections/airports/items",
                                params={"limit": 100}).json()
    manifest = copy_dataset("airports", tmp_path)
    source = tmp_path / "sources" / "airports.geojson"
    source.write_text(source.read_text().replace('"Manas', '"Changed Manas'))
    monkeypatch.setenv("TAZA_DATABASE_URL", database_url)
    with pytest.raises(PublishError, match="No space left"):
        publish.publish(manifest, FailingSwitch(home))
    assert tables(database_url) == {(name, 1) for name in VECTORS}
    assert len(table_names(database_url)) == len(VECTORS) + 1
    after = postgis_server.get("/ogc/collections/airports/items", params={"limit": 100})
    assert after.status_code == 200 and after.json()["features"] == before["features"]


def test_a_publish_that_cannot_load_changes_nothing(home: Path, tmp_path: Path, database_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = copy_dataset("airports", tmp_path)
    source = tmp_path / "sources" / "airports.geojson"
    source.write_text(source.read_text().replace('"Manas', '"Changed Manas'))
    live = CatalogStore(home, database_url=database_url).current()
    monkeypatch.setenv("TAZA_DATABASE_URL", "postgresql://nobody:wrong@127.0.0.1:9/none")
    with pytest.raises(PublishError, match="database"):
        publish.publish(manifest, CatalogStore(home))
    assert CatalogStore(home, database_url=database_url).current() == live


# --- the same answers as the GeoPackages ----------------------------------------------------

REQUESTS = [
    ("settlements", {}),
    ("settlements", {"limit": 200}),
    ("settlements", {"limit": 7, "offset": 30}),
    ("settlements", {"sortby": "-population", "limit": 20}),
    ("settlements", {"sortby": "region_en,-elevation_gebco_m", "limit": 50, "offset": 5}),
    ("settlements", {"bbox": "72,40,75,42", "limit": 100}),
    ("settlements", {"filter": "population > 20000 AND region_en LIKE '%a%'", "limit": 100}),
    ("settlements", {"filter": "S_INTERSECTS(geometry, POLYGON((72 40, 76 40, 76 43, 72 40)))",
                     "limit": 100}),
    ("settlements", {"filter": "CASEI(name) LIKE CASEI('%KUL%') OR population IS NULL"}),
    ("settlements", {"q": "кара", "limit": 100}),
    ("settlements", {"properties": "name,population", "skipGeometry": "true", "limit": 30}),
    ("settlements", {"datetime": "2020-01-01/..", "limit": 3}),
    ("settlements", {"crs": "http://www.opengis.net/def/crs/EPSG/0/4326", "limit": 5}),
    ("settlements", {"bbox": "40,70,43,80", "limit": 50,
                     "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}),
    ("settlements", {"region_en": "Osh", "limit": 50}),
    ("airports", {"limit": 50, "sortby": "iata"}),
    ("airports", {"filter": "elevation_m BETWEEN 500 AND 1500", "filter-lang": "cql2-text"}),
    ("mobile-coverage", {}),
    ("kyrgyzstan-boundary", {"bbox": "74,42,75,43"}),
]


def same_features(left: list[dict], right: list[dict]) -> None:
    assert [f["id"] for f in left] == [f["id"] for f in right]
    for a, b in zip(left, right, strict=True):
        assert a["properties"] == b["properties"]
        if a["geometry"] is None:
            assert b["geometry"] is None
        else:
            assert shape(a["geometry"]).equals_exact(shape(b["geometry"]), 1e-9)


@pytest.mark.parametrize(("collection", "params"), REQUESTS)
def test_items_answer_as_the_geopackage_store_does(postgis_server: Server,
                                                   embedded_server: Server, collection: str,
                                                   params: dict) -> None:
    path = f"/ogc/collections/{collection}/items"
    ours, theirs = postgis_server.get(path, params=params), embedded_server.get(path, params=params)
    assert ours.status_code == theirs.status_code == 200, ours.text
    assert ours.headers.get("Content-Crs") == theirs.headers.get("Content-Crs")
    mine, reference = ours.json(), theirs.json()
    assert mine["numberMatched"] == reference["numberMatched"]
    assert mine["numberReturned"] == reference["numberReturned"]
    same_features(mine["features"], reference["features"])


def test_single_features_csv_and_bad_requests_answer_the_same(postgis_server: Server,
                                                              embedded_server: Server) -> None:
    airport = embedded_server.get("/ogc/collections/airports/items").json()["features"][0]["id"]
    for path, params in [
        (f"/ogc/collections/airports/items/{airport}", {}),
        ("/ogc/collections/settlements/items", {"f": "csv", "limit": 200}),
        ("/ogc/collections/settlements/items", {"f": "html", "limit": 5}),
        ("/ogc/collections/settlements/items/99999999", {}),
        ("/ogc/collections/settlements/items", {"filter": "nosuch > 1"}),
        ("/ogc/collections/settlements/items", {"sortby": "nosuch"}),
        ("/ogc/collections/settlements/items", {"filter": "population / 0 > 1"}),
        ("/ogc/collections/settlements/queryables", {}),
    ]:
        ours, theirs = postgis_server.get(path, params=params), \
            embedded_server.get(path, params=params)
        assert ours.status_code == theirs.status_code, (path, params, ours.text)
        if path.endswith(airport):
            same_features([ours.json()], [theirs.json()])
        elif params.get("f") == "csv" or path.endswith("queryables"):
            assert ours.text.replace(postgis_server.url, "SERVER") == \
                theirs.text.replace(embedded_server.url, "SERVER")
        elif params.get("f") == "html":
            first = postgis_server.get(path, params={"limit": 5}).json()["features"][0]
            assert first["properties"]["name"] in ours.text


def test_stores_return_the_same_map_tiles(home: Path, database_url: str) -> None:
    """Same features with the same attributes in each tile; points within a tile unit.
    (Below zoom 6 the GeoPackage tiles lose mobile-coverage's simplified multipolygons in
    encoding, which PostGIS keeps: a GeoPackage defect, left out here.)"""
    store = CatalogStore(home)
    tiles = [(6, 44, 23), (7, 90, 47), (8, 179, 94), (10, 716, 378), (12, 2896, 1507),
             (14, 11586, 6028)]
    for dataset_id, extra in [("settlements", [(4, 11, 5), (5, 22, 11)]),
                              ("mobile-coverage", []), ("kyrgyzstan-boundary", [(4, 11, 5)])]:
        record = store.record(dataset_id, 1)
        ours = PostgisFeatureStore.for_record(record, database_url)
        theirs = GeoPackageFeatureStore.for_record(record, store.assets)
        for z, x, y in tiles + extra:
            tile = TileBounds.checked(z, x, y)
            mine = mapbox_vector_tile.decode(ours.tile(tile, dataset_id))
            reference = mapbox_vector_tile.decode(theirs.tile(tile, dataset_id))
            assert mine.keys() == reference.keys()
            for layer in reference:
                found = {f["id"]: f for f in mine[layer]["features"]}
                expected = {f["id"]: f for f in reference[layer]["features"]}
                assert found.keys() == expected.keys(), (dataset_id, z, x, y)
                for fid, feature in expected.items():
                    assert found[fid]["properties"] == feature["properties"]
                    if feature["geometry"]["type"] == "Point":
                        a = shape(found[fid]["geometry"])
                        b = shape(feature["geometry"])
                        assert a.distance(b) <= 1  # tile units: within one of 4096


def test_postgis_tiles_simplify_only_what_the_geopackage_tiles_simplify(
        home: Path, database_url: str) -> None:
    """A quadrilateral keeps its four corners, a square with near-collinear vertices loses
    them, as in the GeoPackage tiles (tests/test_tiles.py): ST_SimplifyPreserveTopology runs
    only on geometries of more than mvt.SIMPLIFIED_ABOVE points."""
    boundary = PostgisFeatureStore.for_record(
        CatalogStore(home).record("kyrgyzstan-boundary", 1), database_url)
    layer, table = boundary.layer, "simplification_rule"
    pk, geometry = f'"{layer.pk}"', f'"{layer.geometry}"'
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")
        connection.execute(f"CREATE TABLE {SCHEMA}.{table} AS "  # noqa: S608 - fixed names
                           f"SELECT * FROM {SCHEMA}.{layer.table} LIMIT 0")
        for number, wkt in enumerate((QUADRILATERAL, DETAILED_SQUARE), start=1):
            connection.execute(f"INSERT INTO {SCHEMA}.{table} ({pk}, {geometry}) "  # noqa: S608 - fixed names
                               "VALUES (%s, ST_Multi(ST_GeomFromText(%s, 4326)))", [number, wkt])
    store = PostgisFeatureStore(database_url, replace(layer, table=table, total=2),
                                id_field=layer.pk)
    tile = TileBounds.checked(*SIMPLIFICATION_TILE)
    features = mapbox_vector_tile.decode(store.tile(tile, "rule"))["rule"]["features"]
    points = {f["id"]: int(shapely.get_num_coordinates(shape(f["geometry"]))) for f in features}
    assert points == {1: 5, 2: 5}
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE {SCHEMA}.{table}")


def test_postgis_tiles_over_the_cap_keep_the_geopackage_tiles_hash_of_the_ids(
        home: Path, database_url: str) -> None:
    """9,000 tiny squares in one tile, over the 4,000 features a tile holds: thinning 3, and
    the features kept are those whose hashed id is a multiple of 3, as the GeoPackage's."""
    boundary = PostgisFeatureStore.for_record(
        CatalogStore(home).record("kyrgyzstan-boundary", 1), database_url)
    layer, table = boundary.layer, "thinning_rule"
    pk, geometry = f'"{layer.pk}"', f'"{layer.geometry}"'
    count = 9000
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")
        connection.execute(f"CREATE TABLE {SCHEMA}.{table} AS "  # noqa: S608 - fixed names
                           f"SELECT * FROM {SCHEMA}.{layer.table} LIMIT 0")
        connection.execute(  # a 90 x 100 grid of 0.0001-degree squares near Bishkek
            f"INSERT INTO {SCHEMA}.{table} ({pk}, {geometry}) "  # noqa: S608 - fixed names
            "SELECT i, ST_Multi(ST_MakeEnvelope(74.58 + (i %% 90) * 0.0002, "
            "42.86 + (i / 90) * 0.0002, 74.5801 + (i %% 90) * 0.0002, "
            "42.8601 + (i / 90) * 0.0002, 4326)) FROM generate_series(1, %s) AS i", [count])
    store = PostgisFeatureStore(database_url, replace(layer, table=table, total=count),
                                id_field=layer.pk)
    tile = TileBounds.checked(*SIMPLIFICATION_TILE)
    features = mapbox_vector_tile.decode(store.tile(tile, "rule"))["rule"]["features"]
    thinning = -(-count // FEATURE_CAP)
    assert thinning == 3
    assert {f["id"] for f in features} == {
        i for i in range(1, count + 1) if ((i * HASH_MULTIPLIER) & 0xFFFFFFFF) % thinning == 0}
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE {SCHEMA}.{table}")


def test_unfiltered_pages_seek_in_gap_free_tables_and_walk_tables_with_gaps(
        home: Path, database_url: str) -> None:
    """A table whose pks run without a gap answers a deep unfiltered page by an index seek
    (first_pk); one with a gap does not, and both answer every page as the GeoPackage does."""
    record = CatalogStore(home).record("settlements", 1)
    reference = GeoPackageFeatureStore.for_record(record, CatalogStore(home).assets)
    everything = [f["id"] for f in reference.page(ItemsQuery(limit=1000)).features]
    seeking = PostgisFeatureStore.for_record(record, database_url)
    assert seeking.first_pk == 1
    gappy = "settlements_with_a_gap"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{gappy}")
        connection.execute(f"CREATE TABLE {SCHEMA}.{gappy} AS SELECT * FROM "  # noqa: S608 - fixed names
                           f"{SCHEMA}.{seeking.layer.table} WHERE {seeking.layer.pk} <> 3")
        connection.execute(f"ALTER TABLE {SCHEMA}.{gappy} ADD PRIMARY KEY ({seeking.layer.pk})")
        layer = replace(seeking.layer, table=gappy, total=len(everything) - 1)
        assert _gap_free_start(connection, layer) is None
        walking = PostgisFeatureStore(database_url, layer, id_field=seeking.id_field)
        for offset in range(0, len(everything) + 2, 7):
            for limit in (1, 10):
                query = ItemsQuery(offset=offset, limit=limit, skip_geometry=True)
                expected = everything[offset:offset + limit]
                assert [f["id"] for f in seeking.page(query).features] == expected
                assert [f["id"] for f in walking.page(query).features] == \
                    [i for i in everything if i != everything[2]][offset:offset + limit]
        connection.execute(f"DROP TABLE {SCHEMA}.{gappy}")


def test_a_feature_just_outside_a_box_is_not_in_it_whatever_postgis_rounds(
        database_url: str) -> None:
    """bbox= skips the exact test for features whose box lies inside the query's; PostGIS's
    boxes are float4, rounded outward (75.000001 becomes 75.0000076), so a tiny parcel at
    75.000004 looks inside a box ending at 75.000001. The margin keeps it out."""
    table = "just_outside"
    layer = LayerTable("just-outside", 1, table, "fid", "geom", (("name", "string"),), 2)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")
        connection.execute(f"CREATE TABLE {SCHEMA}.{table} (fid bigint PRIMARY KEY, "
                           "name text, geom geometry)")
        connection.execute(
            f"INSERT INTO {SCHEMA}.{table} VALUES "  # noqa: S608 - fixed names
            "(1, 'outside', ST_GeomFromText('POLYGON((75.000004 42.5, 75.000005 42.5, "
            "75.000005 42.500001, 75.000004 42.5))', 4326)), "
            "(2, 'inside', ST_GeomFromText('POLYGON((74.5 42.5, 74.6 42.5, 74.6 42.6, "
            "74.5 42.5))', 4326))")
        store = PostgisFeatureStore(database_url, layer)
        names = [f["properties"]["name"] for f in store.page(ItemsQuery(
            bbox=[74.0, 42.0, 75.000001, 43.0], limit=10)).features]
        assert names == ["inside"]
        assert store.count(ItemsQuery(bbox=[74.0, 42.0, 75.000001, 43.0])) == 1
        assert store.count(ItemsQuery(bbox=[74.0, 42.0, 75.00001, 43.0])) == 2
        connection.execute(f"DROP TABLE {SCHEMA}.{table}")


def test_sorted_pages_read_the_sort_keys_index_in_both_directions(home: Path,
                                                                 database_url: str) -> None:
    """sortby asks for SQLite's NULL order (ASC NULLS FIRST, DESC NULLS LAST): the attribute
    indexes give it read forward and backward, so a sorted page need not sort every match."""
    record = CatalogStore(home).record("settlements", 1)
    store = PostgisFeatureStore.for_record(record, database_url)
    with psycopg.connect(database_url) as connection:
        connection.execute("SET enable_seqscan = off")
        connection.execute("SET enable_sort = off")  # a full Sort only where nothing else can
        for descending in (False, True):
            order = store._order_by([("population", descending)])
            plan = "\n".join(row[0] for row in connection.execute(
                f"EXPLAIN SELECT * FROM {store.table} ORDER BY {order} LIMIT 5"))  # noqa: S608 - quoted identifiers
            assert "Index Scan" in plan, plan
            assert not re.search(r"(^|->)\s*Sort\s+\(", plan, re.MULTILINE), plan


def test_the_map_tile_route_serves_postgis_tiles(postgis_server: Server) -> None:
    answer = postgis_server.get("/tiles/settlements/1/6/44/23.mvt")
    assert answer.status_code == 200
    decoded = mapbox_vector_tile.decode(answer.content)
    assert len(next(iter(decoded.values()))["features"]) > 0


def test_static_stac_documents_from_the_database_answer_as_files_do(
        postgis_server: Server, embedded_server: Server) -> None:
    """The static STAC tree is read from the release's rows on this profile; its documents
    carry the headers werkzeug's send_file gives the same files on the embedded profile
    (a content ETag instead of one made of the file's time and size) and answer Range and
    conditional requests."""
    document = "/stac/infrastructure/airports/collection.json"
    whole = postgis_server.get(document)
    assert whole.status_code == 200
    # The embedded server serves a copy of the home that kept the files' times.
    assert whole.headers["Last-Modified"] == embedded_server.get(document).headers[
        "Last-Modified"]
    unchanged = postgis_server.get(document, headers={
        "If-Modified-Since": whole.headers["Last-Modified"]})
    assert unchanged.status_code == 304
    assert whole.headers["Content-Disposition"] == "inline; filename=collection.json"
    assert whole.headers["Cache-Control"] == "no-cache"
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = postgis_server.get("/stac/infrastructure/airports/collection.json",
                              headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole.content[:10]
    assert part.headers["Content-Range"] == f"bytes 0-9/{len(whole.content)}"
    again = postgis_server.get("/stac/catalog.json",
                               headers={"If-None-Match": postgis_server.get(
                                   "/stac/catalog.json").headers["ETag"]})
    assert again.status_code == 304


# --- real clients -------------------------------------------------------------------------------


def test_ogrinfo_reads_every_layer(postgis_server: Server) -> None:
    result = subprocess.run(["ogrinfo", "-ro", "-q", "--debug", "on",
                             f"OAPIF:{postgis_server.url}/ogc", "settlements",
                             "-where", "population > 50000"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = postgis_server.get("/ogc/collections/settlements/items", params={
        "filter": "population > 50000", "limit": 1}).json()["numberMatched"]
    assert result.stdout.count("OGRFeature(settlements)") == expected > 0
    assert "filter=" in result.stderr and "client side" not in result.stderr
    listing = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{postgis_server.url}/ogc"],
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    for name in VECTORS:
        assert name in listing.stdout


def test_owslib_reads_the_features(postgis_server: Server, embedded_server: Server) -> None:
    ours = Features(f"{postgis_server.url}/ogc")
    theirs = Features(f"{embedded_server.url}/ogc")
    for query in ({"limit": 200}, {"limit": 5, "offset": 100},
                  {"bbox": [72, 40, 75, 42], "limit": 100}):
        mine = ours.collection_items("settlements", **query)
        reference = theirs.collection_items("settlements", **query)
        assert mine["numberMatched"] == reference["numberMatched"]
        same_features(mine["features"], reference["features"])


# --- the database restarts ----------------------------------------------------------------------


def test_a_database_restart_loses_nothing_and_the_server_recovers(
        private_postgres: PrivatePostgres, postgis_server: Server, database_url: str) -> None:
    path, params = "/ogc/collections/settlements/items", {"sortby": "name", "limit": 200}
    before = postgis_server.get(path, params=params).json()
    private_postgres.stop()
    try:
        during = postgis_server.get(path, params=params)
        assert during.status_code >= 500  # an error answer, not a hang or stale data
    finally:
        private_postgres.start(durable=False)
    after = postgis_server.get(path, params=params)
    assert after.status_code == 200
    assert after.json()["features"] == before["features"]
    assert tables(database_url) == {(name, 1) for name in VECTORS}


def test_the_server_starts_without_a_database_and_serves_once_it_is_up(
        home: Path, tmp_path: Path, private_postgres: PrivatePostgres,
        database_url: str) -> None:
    """A worker whose first look at the release found the database down tries again."""
    served = tmp_path / "home"
    shutil.copytree(home, served, ignore=shutil.ignore_patterns("*.log", "run"))
    private_postgres.stop()
    try:
        running = start_server(served, workers=1, env=postgis_env(database_url),
                               log_name="late-database.log")
        down = running.get("/ogc/collections/airports/items")
        assert down.status_code >= 500
        # The release records are in the database too: alive, but nothing to serve yet.
        assert running.get("/healthz").json()["status"] == "degraded"
        asset = running.get("/assets/airports/1/airports.gpkg")
        assert asset.status_code == 503 and asset.json()["code"] == "ServiceUnavailable"
    finally:
        private_postgres.start(durable=False)
    try:
        # Stores that failed to open are tried again once per look at the release (a second).
        deadline = time.monotonic() + 15
        up = running.get("/ogc/collections/airports/items", params={"limit": 50})
        while up.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            up = running.get("/ogc/collections/airports/items", params={"limit": 50})
        assert up.status_code == 200 and up.json()["numberMatched"] == 17
        assert running.get("/healthz").json()["status"] == "ok"
    finally:
        stop_server(running)
