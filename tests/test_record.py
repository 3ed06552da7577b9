"""The typed record (catalog.core.record) and the asset locator (catalog.core.assets).

tests/records/ holds record.json files written by earlier pipelines, made by running the
code of those commits over the sample datasets: pipeline 1 (0db9da1, the first pipeline) and
pipeline 2 (main before roles; 28c8409 wrote the same keys). Records written today add the
manifest's `role` (pipeline 2) and each band's name (pipeline 3).
"""

from __future__ import annotations

import copy
import json
import re
import shutil

import pytest
import rasterio
import requests

from catalog.core.assets import AssetNotFound
from catalog.core.record import Record, RecordError, read_record, write_record
from catalog.store import CatalogStore
from tests.conftest import DATASETS, ROOT

HISTORY = sorted((ROOT / "tests" / "records").glob("*.json"))


def test_history_holds_each_pipeline_of_both_kinds():
    names = {path.stem for path in HISTORY}
    assert names == {"pipeline1-airports", "pipeline1-elevation", "pipeline2-airports",
                     "pipeline2-elevation"}


@pytest.mark.parametrize("path", HISTORY, ids=lambda p: p.stem)
def test_records_of_earlier_pipelines_read_and_write_back_unchanged(path):
    data = json.loads(path.read_text())
    record = Record.from_json(data)
    assert record.id == data["id"] and record.version == data["version"]
    assert record.software.pipeline == data["software"]["pipeline"]
    assert record.role is None  # before roles
    assert record.bbox == tuple((data.get("vector") or data["rasters"][0])["bbox"])
    assert record.published == data["published_at"]
    assert record.manifest.temporal_extent.start.isoformat() == \
        data["manifest"]["temporal_extent"]["start"]
    # The one writer gives back what was read, key for key and in the same order.
    assert json.dumps(record.as_json()) == json.dumps(data)


def test_a_published_record_reads_back_as_written(published_home):
    store = CatalogStore(published_home)
    for dataset_id, version in store.current().datasets.items():
        path = store.version_dir(dataset_id, version) / "record.json"
        record = store.record(dataset_id, version)
        # The role the manifest gives, or none (the OSM border, the second towns source).
        declared = re.search(r"^role: (\S+)$", (DATASETS / f"{dataset_id}.yaml").read_text(),
                             flags=re.M)
        assert record.role == (declared.group(1) if declared else None), dataset_id
        assert json.loads(path.read_text()) == record.as_json()


def test_a_published_raster_record_names_its_bands_as_the_file_does(published_home):
    """The band's name (the file's band description) is in the record, so the /ogc schema
    names the band as the coverage's CoverageJSON does; records before pipeline 3 have none."""
    store = CatalogStore(published_home)
    record = store.record("elevation", store.live_version("elevation"))
    with rasterio.open(store.assets.local_path(record, record.raster.asset)) as dataset:
        assert [band.name for band in record.raster.bands] == list(dataset.descriptions)
    assert record.raster.bands[0].name == "elevation" and record.software.pipeline == "3"
    earlier = Record.from_json(json.loads((ROOT / "tests" / "records" /
                                           "pipeline2-elevation.json").read_text()))
    assert [band.name for band in earlier.raster.bands] == [None]


def test_a_store_reads_an_earlier_pipelines_record(tmp_path):
    """A home written by pipeline 1 still serves its records through the store."""
    folder = tmp_path / "datasets" / "airports" / "1"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "records" / "pipeline1-airports.json", folder / "record.json")
    record = CatalogStore(tmp_path).record("airports", 1)
    assert record.is_vector and record.vector.table == "airports"
    assert record.asset("geopackage").file == "airports.gpkg"
    assert record.files()["manifest.yaml"] == "application/yaml"


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d.pop("assets"), "assets: missing"),
    (lambda d: d.update(kind="table"), "kind: 'table'"),
    (lambda d: d.update(version="1"), "version: expected an integer"),
    (lambda d: d["vector"].update(bbox=[1, 2, 3]), "bbox: expected 4 numbers"),
    (lambda d: d.pop("vector"), "vector: missing"),
    (lambda d: d["manifest"]["temporal_extent"].update(start="2024-13-01"), "start: not an ISO"),
    (lambda d: d["manifest"].update(title="Airports"), "title: expected an object"),
])
def test_a_malformed_record_names_what_is_wrong(change, words):
    data = json.loads((ROOT / "tests" / "records" / "pipeline2-airports.json").read_text())
    change(data)
    with pytest.raises(RecordError, match=words.replace("(", r"\(")):
        Record.from_json(data)


def test_read_record_names_the_file(tmp_path):
    (tmp_path / "record.json").write_text(json.dumps({"id": "x"}))
    with pytest.raises(RecordError, match="record.json: kind: missing"):
        read_record(tmp_path)


def test_write_record_writes_what_read_record_reads(tmp_path):
    data = json.loads((ROOT / "tests" / "records" / "pipeline2-elevation.json").read_text())
    data["manifest"]["role"] = "elevation"
    record = Record.from_json(copy.deepcopy(data))
    write_record(record, tmp_path)
    assert read_record(tmp_path) == record
    assert json.loads((tmp_path / "record.json").read_text()) == data


# -- the asset locator -----------------------------------------------------------------------

def test_asset_urls_and_paths(published_home):
    store = CatalogStore(published_home)
    record = store.record("elevation", store.live_version("elevation"))
    cog = record.raster.asset
    url = store.assets.url(record, cog)
    assert url == f"/assets/elevation/{record.version}/elevation.tif"
    assert store.assets.url(record, cog, "http://example.org/base/") == \
        f"http://example.org/base{url}"
    path = store.assets.local_path(record, cog)
    assert path.stat().st_size == cog.size == store.assets.size(record, cog)
    with path.open("rb") as handle:
        handle.seek(100)
        expected = handle.read(1000)
    assert store.assets.read_range(record, cog, 100, 1000) == expected
    assert store.assets.read_range(record, cog, cog.size - 10, 1000) == path.read_bytes()[-10:]
    assert store.assets.local_path(record, "manifest.yaml").name == "manifest.yaml"


@pytest.mark.parametrize("name", ["record.json", "../1/record.json", "..", "elevation.gpkg",
                                  "/etc/passwd"])
def test_the_locator_reaches_only_the_files_a_record_lists(published_home, name):
    store = CatalogStore(published_home)
    record = store.record("elevation", store.live_version("elevation"))
    with pytest.raises(AssetNotFound):
        store.assets.local_path(record, name)
    with pytest.raises(AssetNotFound):
        store.assets.read_range(record, name, 0, 10)


@pytest.mark.parametrize("name", ["..", "../1/record.json", ""])
def test_no_url_leaves_the_version(published_home, name):
    store = CatalogStore(published_home)
    record = store.record("elevation", store.live_version("elevation"))
    with pytest.raises(AssetNotFound):
        store.assets.url(record, name)


def test_the_server_links_the_locators_urls(server):
    """OGC API enclosure links, STAC asset hrefs and dataset pages carry the locator's URLs,
    and those answer with the file's bytes (HTTP Range included)."""
    store = CatalogStore(server.home)
    record = store.record("airports", store.live_version("airports"))
    expected = {store.assets.url(record, a, server.url) for a in record.assets}
    collection = server.get("/ogc/collections/airports").json()
    assert {link["href"] for link in collection["links"] if link["rel"] == "enclosure"} \
        == expected
    item = server.get("/stac/collections/airports/items/airports").json()
    assert {asset["href"] for asset in item["assets"].values()} == expected
    page = server.get("/datasets/airports").text
    assert all(store.assets.url(record, a) in page for a in record.assets)
    gpkg = record.asset("geopackage")
    answer = requests.get(store.assets.url(record, gpkg, server.url), timeout=30,
                          headers={"Range": "bytes=16-115"})
    assert answer.status_code == 206
    assert answer.content == store.assets.read_range(record, gpkg, 16, 100)


def test_only_the_files_a_record_lists_are_served(server):
    """record.json and the stored feature text sit in the version folder but are not files
    of the version: the locator reaches neither."""
    for path in ("/assets/airports/1/record.json", "/assets/airports/1/airports.features.sqlite"):
        answer = server.get(path, allow_redirects=False)
        assert answer.status_code == 404, path
        assert answer.json()["description"]
