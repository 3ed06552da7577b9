"""Our OGC API Features routes (catalog/features/api.py) in process, through Flask's test
client: the blueprint over the live release's FeatureStores, with the real page renderer
(pygeoapi's public render_j2_template over our /ogc templates) and no server around it.

The real-server and real-client tests stay where a server matters: tests/test_features_api.py
(reference answers, ogrinfo), tests/test_gdal_clients.py, tests/test_owslib_clients.py,
tests/test_qgis.py, tests/test_golden.py.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from flask import Flask
from pygeoapi.l10n import str2locale
from pygeoapi.util import render_j2_template

from catalog.core import columns as in_memory_columns
from catalog.features import LiveFeatures
from catalog.features import openapi as features_openapi
from catalog.features.api import create_features_blueprint
from catalog.features.documents import FILTER_CLASSES, Service
from catalog.features.release import prune_column_cache
from catalog.ogc.config import build_config
from catalog.store import CatalogStore
from catalog.store.watch import ReleaseWatch
from tests.conftest import SAMPLE_IDS, copy_dataset, home_profile, taza

URL = "http://catalog.test"
ITEMS = "/ogc/collections/settlements/items"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
# The tests build apps and stores over published_home in this process: on the PostgreSQL test
# profile they need its database in the environment.
pytestmark = pytest.mark.usefixtures("published_home_profile")


def features_app(home: Path, check_interval: float = 1.0) -> tuple[Flask, LiveFeatures]:
    store = CatalogStore(home)
    live = LiveFeatures(store, watch=ReleaseWatch(store.current, check_interval))
    config = build_config(store, URL)

    def render_page(template: str, data: dict, locale: str) -> str:
        return render_j2_template(config, config["server"]["templates"], template, data,
                                  str2locale(locale))

    app = Flask(__name__)
    app.register_blueprint(create_features_blueprint(
        live, Service.from_config(URL), store.assets, render_page,
        lambda: ["site-screening"]))
    return app, live


@pytest.fixture(scope="module")
def client(published_home: Path, published_home_profile):
    app, _ = features_app(published_home)
    return app.test_client()


def page(client, path: str = ITEMS, **params) -> dict:
    response = client.get(path, query_string=params or None)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()


# --- what the service says about itself -------------------------------------------------------

def test_conformance_declares_what_is_passed_in_every_format(client):
    declared = page(client, "/ogc/conformance")["conformsTo"]
    assert declared[-len(FILTER_CLASSES):] == FILTER_CLASSES
    assert not [c for c in declared if "ogcapi-features-4" in c or c.endswith("/callback")]
    html = client.get("/ogc/conformance", query_string={"f": "html"}).get_data(as_text=True)
    assert all(c in html for c in declared)
    assert "ogcapi-features-4" not in html and "conf/callback" not in html


def test_collections_describe_feature_layers_and_coverages(client):
    listed = {c["id"]: c for c in page(client, "/ogc/collections")["collections"]}
    assert set(listed) == set(SAMPLE_IDS)
    settlements, elevation = listed["settlements"], listed["elevation"]
    assert settlements["itemType"] == "feature" and settlements["storageCrs"] == CRS84
    assert settlements["crs"] == [CRS84, f"{EPSG}4326", f"{EPSG}3857", f"{EPSG}32642",
                                  f"{EPSG}32643"]
    assert "layerDataType" not in settlements
    # Feature clients (GDAL's OAPIF driver) skip collections marked as coverages.
    assert elevation["layerDataType"] == "Coverage" and "itemType" not in elevation
    assert [g["cellsCount"] for g in elevation["extent"]["spatial"]["grid"]] == [2672, 1002]
    assert any(link["rel"].endswith("/coverage") for link in elevation["links"])
    assert page(client, "/ogc/collections/elevation")["id"] == "elevation"


def test_json_ld_gives_each_dataset_its_own_licence(client):
    datasets = page(client, "/ogc/collections", f="jsonld")["dataset"]
    licences = {d["@id"].rsplit("/", 1)[1]: d["license"] for d in datasets}
    assert licences["settlements"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert licences["airports"] == "https://spdx.org/licenses/MIT.html"
    assert licences["elevation"].startswith("https://www.gebco.net/")
    open_ended = next(d for d in datasets if d["@id"].endswith("/settlements"))
    assert open_ended["temporalCoverage"].endswith("/..")


def test_unknown_parameters_are_refused_everywhere(client):
    for path in ("/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/collections/airports",
                 "/ogc/collections/airports/schema", "/ogc/collections/airports/queryables",
                 "/ogc/collections/airports/items", "/ogc/collections/airports/items/UAFA"):
        response = client.get(path, query_string={"nosuch": "1"})
        assert response.status_code == 400, path
        assert "'nosuch'" in response.get_json()["description"]


def test_queryables_for_gdal_and_a_chosen_few(client):
    response = client.get("/ogc/collections/settlements/queryables",
                          headers={"Accept": "application/json"})
    assert response.headers["Content-Type"] == "application/json"  # GDAL reads no schema+json
    document = response.get_json()
    assert {q["id"] for q in document["queryables"]} == set(document["properties"]) - {"geometry"}
    assert document["properties"]["geonames_id"]["x-ogc-role"] == "id"
    chosen = page(client, "/ogc/collections/settlements/queryables", properties="name")
    assert set(chosen["properties"]) == {"geometry", "name"}
    bad = client.get("/ogc/collections/settlements/queryables",
                     query_string={"properties": "nosuch"})
    assert bad.status_code == 400


# --- items ------------------------------------------------------------------------------------

def test_paging_through_next_links_visits_every_feature(client):
    seen, url = [], f"{ITEMS}?limit=25&sortby=-population"
    while url:
        body = page(client, url.removeprefix(f"{URL}"))
        assert body["numberMatched"] == 112
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 112


def test_output_crs_swaps_axes_and_says_so(client):
    plain = client.get(ITEMS, query_string={"limit": 3})
    swapped = client.get(ITEMS, query_string={"limit": 3, "crs": f"{EPSG}4326"})
    assert plain.headers["Content-Crs"] == f"<{CRS84}>"
    assert swapped.headers["Content-Crs"] == f"<{EPSG}4326>"
    for ours, theirs in zip(plain.get_json()["features"], swapped.get_json()["features"],
                            strict=True):
        lon, lat = ours["geometry"]["coordinates"]
        assert theirs["geometry"]["coordinates"] == [lat, lon]


def test_filter_crs_moves_the_filter_geometry(client):
    lonlat = page(client, filter="S_INTERSECTS(geometry, POLYGON((74 42, 75 42, 75 43, 74 43, "
                                 "74 42)))")
    latlon = page(client, **{"filter": "S_INTERSECTS(geometry, POLYGON((42 74, 42 75, 43 75, "
                                       "43 74, 42 74)))", "filter-crs": f"{EPSG}4326"})
    assert lonlat["numberMatched"] == latlon["numberMatched"] > 0
    unknown = client.get(ITEMS, query_string={"filter": "population > 1",
                                              "filter-crs": f"{EPSG}99999"})
    assert unknown.status_code == 400 and unknown.get_json()["description"] == "Bad CQL text"


def test_cql2_json_in_the_body_or_the_query(client):
    document = {"op": ">", "args": [{"property": "population"}, 100000]}
    posted = client.post(ITEMS, data=json.dumps(document),
                         headers={"Content-Type": "application/query-cql-json"})
    queried = page(client, filter=json.dumps(document), **{"filter-lang": "cql2-json"})
    assert posted.status_code == 200
    assert posted.get_json()["numberMatched"] == queried["numberMatched"] > 0
    wrong_type = client.post(ITEMS, data=json.dumps(document),
                             headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    create = client.post(ITEMS, data="{}", headers={"Content-Type": "application/geo+json"})
    assert create.status_code == 405
    assert client.delete(f"{ITEMS}/1528249").status_code == 405


def test_problems_name_the_parameter(client):
    for params, status, words in [({"limit": "0"}, 400, "limit"), ({"offset": "x"}, 400, "offset"),
                                  ({"sortby": "nosuch"}, 400, "sortby"),
                                  ({"filter": "nosuch = 1"}, 400, "nosuch"),
                                  ({"bbox": "1,2,3"}, 400, "bbox"),
                                  ({"datetime": "2021-01-01/2020-01-01"}, 400, "datetime")]:
        response = client.get(ITEMS, query_string=params)
        assert response.status_code == status, params
        assert words in response.get_json()["description"], params
    missing = client.get("/ogc/collections/nosuch/items")
    assert missing.status_code == 404
    html = client.get("/ogc/collections/nosuch", query_string={"f": "html"})
    assert html.status_code == 404 and html.headers["Content-Type"] == "text/html"


def test_html_csv_and_json_ld_pages(client):
    html = client.get(ITEMS, query_string={"f": "html", "limit": 3}).get_data(as_text=True)
    assert "Settlements of Kyrgyzstan" in html and 'id="items-map"' in html
    rows = list(csv.DictReader(io.StringIO(
        client.get(ITEMS, query_string={"f": "csv", "limit": 5}).get_data().decode("utf-8-sig"))))
    assert len(rows) == 5 and {"x", "y", "name"} <= set(rows[0])
    listed = page(client, f="jsonld", limit=4)
    assert len(listed["features"]) == 4 and listed["@id"].endswith("/collections/settlements")
    place = page(client, f"{ITEMS}/1528249", f="jsonld")
    assert place["type"] == "schema:Place" and place["schema:geo"]["@type"] == \
        "schema:GeoCoordinates"


# --- the live release -------------------------------------------------------------------------

def test_stores_follow_the_release_and_are_reused(scratch_home, tmp_path):
    """One store per live version, kept while that version is live; a new release swaps in a
    new store for what changed."""
    with home_profile(scratch_home):
        stores_follow_the_release(scratch_home, tmp_path)


def stores_follow_the_release(home: Path, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    manifests = [copy_dataset(name, sources) for name in ("airports", "settlements")]
    for manifest in manifests:
        taza("publish", str(manifest), home=home)
    app, live = features_app(home, check_interval=0.0)
    client = app.test_client()
    first = live()
    airports, settlements = first.store("airports"), first.store("settlements")
    assert page(client, "/ogc/collections/airports/items")["numberMatched"] == 17
    assert live().store("airports") is airports  # not reopened per request
    # A worker that looked less than its check interval ago keeps its release, unless a caller
    # that has just seen the new one asks for it fresh (the /ogc OpenAPI document does).
    patient_store = CatalogStore(home)
    patient = LiveFeatures(patient_store, watch=ReleaseWatch(patient_store.current, 3600))
    before = patient().number
    # A new version of airports, fewer features: the next request sees it.
    source = next(sources.joinpath("sources").glob("airports.*"))
    text = source.read_text(encoding="utf-8")
    data = json.loads(text)
    data["features"] = data["features"][:5]
    source.write_text(json.dumps(data), encoding="utf-8")
    taza("publish", str(manifests[0]), home=home)
    assert page(client, "/ogc/collections/airports/items")["numberMatched"] == 5
    assert live().store("airports") is not airports
    assert live().store("settlements") is settlements  # unchanged version, same store
    assert patient().number == before
    assert patient(fresh=True).number == live().number != before
    shutil.rmtree(home)


# --- the OpenAPI document's Features part -----------------------------------------------------

def test_every_route_is_in_the_openapi_paths(published_home):
    store = CatalogStore(published_home)
    live = LiveFeatures(store)()
    layers = {name: s.describe() for name, s in live.stores.items()}
    paths = features_openapi.paths(live.records, layers, {"default_items": 10,
                                                          "max_items": 10000})
    for name in layers:
        base = f"/collections/{name}"
        assert set(paths[f"{base}/items"]) == {"get", "post", "options"}
        assert {"get", "options"} <= set(paths[f"{base}/items/{{featureId}}"])
        assert "get" in paths[f"{base}/queryables"] and "get" in paths[f"{base}/schema"]
        names = {p.get("name") for p in paths[f"{base}/items"]["get"]["parameters"]}
        assert {"filter", "filter-lang", "filter-crs", "sortby", "datetime", "q",
                "resulttype"} <= names
        assert set(layers[name].fields) <= names  # equality filters
    assert not [p for p in paths if "elevation" in p]  # coverages are pygeoapi's
    # pygeoapi's own document tags the coverages (every raster); features add theirs.
    rasters = [{"name": r.id} for r in live.records if r.id not in layers]
    assert {"elevation", "slope"} <= {t["name"] for t in rasters}
    document = features_openapi.add_to(
        {"paths": {}, "tags": [{"name": "server"}, *rasters, {"name": "jobs"}]},
        live.records, layers)
    assert [t["name"] for t in document["tags"]] == [
        "server", *[r.id for r in live.records], "jobs"]


def test_large_layers_keep_their_columns_in_the_nodes_cache(published_home, client, tmp_path,
                                                             monkeypatch) -> None:
    """The feature service gives large layers the node's cache folder (TAZA_CACHE_DIR, then
    `columns/`): their column arrays are written there for every worker, and the answers are
    those SQL gives for the same layer when it is small."""
    monkeypatch.setenv("TAZA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(in_memory_columns, "MIN_ROWS", 0)  # the sample layers are small
    large, _ = features_app(published_home)
    params = {"filter": "population > 5000", "sortby": "-population", "limit": "7",
              "bbox": "70,39,76,43"}
    page(large.test_client(), **params)  # by SQL, while a thread reads the arrays
    assert in_memory_columns.background_loads_done(60)
    answers = [page(each, **params) for each in (large.test_client(), client)]
    for answer in answers:
        answer.pop("timeStamp")
    assert answers[0] == answers[1] and answers[0]["numberMatched"] > 7
    assert len(list((tmp_path / "columns").rglob("*.npy"))) >= 4  # keys, order, boxes, ranks


def test_the_column_loads_setting_is_checked_when_the_server_starts(scratch_home, monkeypatch):
    monkeypatch.setenv("TAZA_COLUMN_LOADS", "later")
    # An address no interface has: a setting let through would fail to bind instead.
    refused = taza("serve", "--host", "203.0.113.1", home=scratch_home, check=False)
    assert refused.returncode == 2
    assert "TAZA_COLUMN_LOADS: expected background or request, got 'later'" in refused.stderr


def test_a_node_keeps_the_column_arrays_of_live_versions_only(published_copy, tmp_path,
                                                              monkeypatch) -> None:
    """Large layers keep their arrays in the node's cache under <dataset>/<version>; when a
    worker moves to a new release, the folders of versions no longer live go, the live ones
    stay (on either store: the home's profile picks the GeoPackage or PostGIS)."""
    monkeypatch.setenv("TAZA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(in_memory_columns, "MIN_ROWS", 0)  # the sample layers are small
    columns = tmp_path / "columns"
    old_layout = columns / ("0" * 32)  # a folder of the flat layout before this one
    old_layout.mkdir(parents=True)
    (old_layout / "keys.npy").write_bytes(b"")
    with home_profile(published_copy):
        app, live = features_app(published_copy)
        live().number  # noqa: B018  (the first release: pruned in a thread)
        live.pruning.join(30)
        assert not old_layout.exists()
        store = CatalogStore(published_copy)
        versions = {name: store.live_version(name) for name in ("settlements", "towns-simplemaps")}
        for name in versions:  # a query both stores answer from the arrays (the test above)
            page(app.test_client(), f"/ogc/collections/{name}/items", bbox="70,39,76,43",
                 filter="population > 5000", sortby="-population", limit="7")
        assert in_memory_columns.background_loads_done(60)
        folders = {name: columns / name / str(version) for name, version in versions.items()}
        assert all(list(folder.rglob("*.npy")) for folder in folders.values()), \
            sorted(p.relative_to(columns) for p in columns.rglob("*"))

        taza("withdraw", "towns-simplemaps", home=published_copy)
        assert live(fresh=True).record("towns-simplemaps") is None
        live.pruning.join(30)
        assert not (columns / "towns-simplemaps").exists()
        assert list(folders["settlements"].rglob("*.npy"))  # still live: kept


def test_pruning_the_column_cache_keeps_exactly_the_live_versions(tmp_path) -> None:
    for folder in ("a/1", "a/2", "b/3", "f" * 32):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "keys.npy").write_bytes(b"")
    (tmp_path / "a" / "stray").write_bytes(b"")
    (tmp_path / "stray").write_bytes(b"")
    removed = prune_column_cache(tmp_path, [("a", 1), ("c", 4)])
    assert sorted(str(p.relative_to(tmp_path)) for p in removed) == \
        ["a/2", "a/stray", "b", "f" * 32, "stray"]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == \
        ["a", "a/1", "a/1/keys.npy"]
    assert prune_column_cache(tmp_path / "missing", [("a", 1)]) == []
