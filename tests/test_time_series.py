"""Datasets of several items (manifest `items`): the monthly ERA5 normals as a time series of
twelve STAC items each, found by datetime search and opened by GDAL's STACIT driver; the
manifest's checks of items; the normals compared with their source."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.windows import Window
from shapely.geometry import shape

from catalog import publish
from catalog.problems import ValidationFailed
from catalog.store import CatalogStore
from tests.conftest import DATASETS, SERIES_IDS, SOURCES, taza

sys.path.insert(0, str(DATASETS))
import derive_climate_normals  # noqa: E402  (datasets/ is a folder of scripts)

CACHE = DATASETS / ".cache"
BISHKEK = (74.6, 42.87)


def month_source(series: str, month: int):
    return SOURCES / series / f"{series}-{month:02d}.tif"


def value_at(path, lon: float, lat: float) -> float:
    with rasterio.open(path) as dataset:
        return float(next(dataset.sample([(lon, lat)]))[0])


# -- derived from the source -------------------------------------------------------------------


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    with open(SOURCES / "kyrgyzstan-boundary.geojson", encoding="utf-8") as file:
        country = shape(json.load(file)["features"][0]["geometry"])
    out = tmp_path_factory.mktemp("normals")
    return out, derive_climate_normals.derive_climate_normals(CACHE, out, country)


def test_normals_are_rederived_byte_for_byte(derived):
    out, _ = derived
    for series in SERIES_IDS:
        for month in range(1, 13):
            name = f"{series}/{series}-{month:02d}.tif"
            assert (out / name).read_bytes() == (SOURCES / name).read_bytes(), name


def test_normals_are_the_source_values_in_celsius_and_millimetres(derived):
    """Bishkek's ERA5 cell in the NetCDF (bands = months) and in the monthly files agree,
    and read as degrees C and mm/month: a cold January, a warm July, wet spring."""
    nc = CACHE / "extracted" / derive_climate_normals.MEMBER.rsplit("/", 1)[-1]
    for series, (variable, _, _) in derive_climate_normals.SERIES.items():
        with rasterio.open(f'netcdf:"{nc}":{variable}') as source:
            row, col = source.index(*BISHKEK)
            by_month = source.read(window=((row, row + 1), (col, col + 1)))[:, 0, 0]
        ours = [value_at(month_source(series, m), *BISHKEK) for m in range(1, 13)]
        assert ours == pytest.approx(np.round(by_month, 1).tolist(), abs=1e-4)
    temperature = [value_at(month_source("temperature-normals", m), *BISHKEK)
                   for m in range(1, 13)]
    assert -10 < temperature[0] < -3 and 15 < temperature[6] < 22
    assert max(temperature) == temperature[6]
    precipitation = [value_at(month_source("precipitation-normals", m), *BISHKEK)
                     for m in range(1, 13)]
    assert min(precipitation) > 0 and max(precipitation) == precipitation[3]  # April


# -- published: STAC items, datetime search, STACIT ---------------------------------------------


def test_each_month_is_an_item_with_its_own_interval(in_process):
    for series in SERIES_IDS:
        answer = in_process.get(f"/stac/collections/{series}/items", {"limit": 100}).json()
        intervals = {f["id"]: (f["properties"]["start_datetime"][:10],
                               f["properties"]["end_datetime"][:10])
                     for f in answer["features"]}
        assert len(intervals) == 12
        assert intervals[f"{series}-02"] == ("2025-02-01", "2025-02-28")
        assert intervals[f"{series}-12"] == ("2025-12-01", "2025-12-31")
        collection = in_process.get(f"/stac/collections/{series}").json()
        assert collection["extent"]["temporal"]["interval"][0][0].startswith("2000-01-01")


def test_datetime_search_finds_the_month(in_process):
    answer = in_process.get("/stac/search", {
        "collections": "temperature-normals,precipitation-normals",
        "datetime": "2025-07-10T00:00:00Z/2025-07-20T00:00:00Z"}).json()
    assert sorted(f["id"] for f in answer["features"]) == [
        "precipitation-normals-07", "temperature-normals-07"]


def test_gdal_stacit_opens_one_month_of_the_series(server, tmp_path):
    search = (f"{server.url}/stac/search?collections=temperature-normals"
              "&datetime=2025-07-15T00:00:00Z")
    out = tmp_path / "july.tif"
    result = subprocess.run(["gdal_translate", "-q", f'STACIT:"{search}":asset=data', str(out)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    with rasterio.open(out) as july, rasterio.open(month_source("temperature-normals", 7)) as src:
        assert july.crs == src.crs and july.transform.almost_equals(src.transform)
        assert np.array_equal(july.read(1), src.read(1))


# -- the manifest's items ----------------------------------------------------------------------


def copy_series(target, series: str = "temperature-normals"):
    (target / "sources").mkdir(parents=True)
    shutil.copytree(SOURCES / series, target / "sources" / series)
    return yaml.safe_load((DATASETS / f"{series}.yaml").read_text(encoding="utf-8"))


def validate(target, manifest: dict, name: str = "temperature-normals"):
    path = target / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    result = taza("validate", str(path), home=target / "home", check=False)
    return result.returncode, result.stdout + result.stderr


def test_items_are_checked(tmp_path):
    manifest = copy_series(tmp_path)
    bad = dict(manifest, source="sources/temperature-normals/temperature-normals-01.tif")
    bad["items"] = [dict(item) for item in manifest["items"]]
    bad["items"][1]["id"] = bad["items"][0]["id"]
    del bad["items"][2]["start"], bad["items"][2]["end"]
    bad["items"][3]["start"] = "1999-04-01"
    bad["items"][4]["source"] = "/vsicurl/http://127.0.0.1/x.tif"
    code, report = validate(tmp_path, bad)
    assert code != 0
    assert "give either source (one file) or items (several), not both" in report
    assert "item id 'temperature-normals-01' is given more than once" in report
    assert "give start and end to every item" in report
    assert "items.3" in report and "outside the dataset's temporal_extent" in report
    assert "items.4.source" in report


def test_items_of_one_layer_share_their_grid(tmp_path):
    manifest = copy_series(tmp_path)
    manifest["items"] = manifest["items"][:2]  # two months are enough (each is read apart)
    assert validate(tmp_path, manifest)[0] == 0
    shutil.copy(SOURCES / "slope.tif", tmp_path / "sources" / "temperature-normals" /
                "temperature-normals-02.tif")
    code, report = validate(tmp_path, manifest)
    assert code != 0
    assert "items.1.source" in report and "differs from the first item's" in report


def test_a_series_is_published_by_one_isolated_reader(tmp_path, scratch_home, caplog):
    """Publishing inspects and converts every item in one confined child (was: one child to
    validate, one more to convert; before that one per item and step, minutes under load)."""
    manifest = copy_series(tmp_path)
    manifest["items"] = manifest["items"][:3]
    path = tmp_path / "temperature-normals.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    caplog.set_level(logging.INFO, logger="catalog.reader")
    result = publish.publish(path, CatalogStore(scratch_home), actor="test")
    assert result.version == 1
    assert len(CatalogStore(scratch_home).record("temperature-normals", 1).rasters) == 3
    children = [r.getMessage().split(":")[0] for r in caplog.records
                if r.name == "catalog.reader" and r.getMessage().startswith("reader ")]
    assert children == ["reader read_sources"]


def test_a_publish_of_items_unlike_each_other_is_refused_and_leaves_nothing(tmp_path,
                                                                             scratch_home):
    """The same check as validation, on what the one child inspected: no version, no
    staging folder, no release."""
    manifest = copy_series(tmp_path)
    manifest["items"] = manifest["items"][:2]
    shutil.copy(SOURCES / "slope.tif", tmp_path / "sources" / "temperature-normals" /
                "temperature-normals-02.tif")
    path = tmp_path / "temperature-normals.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    store = CatalogStore(scratch_home)
    with pytest.raises(ValidationFailed) as refused:
        publish.publish(path, store, actor="test")
    assert any(p.where == "items.1.source" and "differs from the first item's" in p.message
               for p in refused.value.problems)
    assert store.current() is None
    dataset_dir = scratch_home / "datasets" / "temperature-normals"
    assert not dataset_dir.exists() or not any(dataset_dir.iterdir())


def test_tiles_of_a_mosaic_are_items_of_one_layer(tmp_path, scratch_home):
    """Items without dates are tiles of one mosaic: each is a STAC item with its own extent,
    and the layer the APIs serve is the source again, whole (here a piece of the slope cut in
    two)."""
    (tmp_path / "sources").mkdir()
    with rasterio.open(SOURCES / "slope.tif") as source:  # 400 x 300 cells around Bishkek
        area = Window(*source.index(*BISHKEK)[::-1], 400, 300)
        whole, profile = source.read(1, window=area), source.profile
        for name, offset in (("west", 0), ("east", 200)):
            window = Window(area.col_off + offset, area.row_off, 200, 300)
            tile = dict(profile, width=200, height=300, transform=source.window_transform(window))
            with rasterio.open(tmp_path / "sources" / f"slope-{name}.tif", "w", **tile) as out:
                out.write(source.read(1, window=window), 1)
    manifest = yaml.safe_load((DATASETS / "slope.yaml").read_text(encoding="utf-8"))
    del manifest["source"], manifest["role"]  # a dataset of several items holds no role
    manifest["items"] = [{"id": f"slope-{name}", "source": f"sources/slope-{name}.tif"}
                         for name in ("west", "east")]
    path = tmp_path / "slope.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    store = CatalogStore(scratch_home)
    publish.publish(path, store, actor="test")
    record = store.record("slope", 1)
    west, east = record.rasters
    assert west.bbox[2] == pytest.approx(east.bbox[0]) and west.bbox[0] < east.bbox[0]
    with rasterio.open(store.assets.local_path(record, record.coverage.asset)) as layer:
        assert layer.count == 1 and layer.shape == whole.shape
        assert np.array_equal(layer.read(1), whole)


# -- one layer: OGC API coverage with one field per step, map tiles and popups per step ---------


def test_ogc_coverage_serves_the_series_as_one_layer(in_process):
    """One coverage, one field per month (named after its item): July's field at Bishkek is
    July's item."""
    schema = in_process.get("/ogc/collections/temperature-normals/schema", {"f": "json"}).json()
    assert [schema["properties"][str(b)]["title"] for b in range(1, 13)] == [
        f"temperature-normals-{m:02d}" for m in range(1, 13)]
    answer = in_process.get("/ogc/collections/temperature-normals/coverage", {
        "f": "json", "properties": "7", "subset": "Lat(42.75:43),Long(74.5:74.75)"})
    assert answer.status_code == 200, answer.text
    coverage = answer.json()
    (values,) = [r["values"] for r in coverage["ranges"].values()]
    assert value_at(month_source("temperature-normals", 7), 74.625, 42.875) in values
    assert value_at(month_source("temperature-normals", 1), 74.625, 42.875) not in values


def test_tiles_and_popups_follow_the_chosen_step(in_process):
    template = "/tiles/temperature-normals/1/{style}/6/46/23.png"
    january = in_process.get(template.format(style="values"))
    july = in_process.get(template.format(style="values-7"))
    assert january.status_code == july.status_code == 200
    assert january.content == in_process.get(template.format(style="values-1")).content
    assert july.content != january.content
    missing = in_process.get(template.format(style="values-13"))
    assert missing.status_code == 404 and "values-1..values-12" in missing.text
    answer = in_process.get("/portal/value/temperature-normals",
                            {"lon": BISHKEK[0], "lat": BISHKEK[1]}).json()
    assert [s["id"] for s in answer["steps"]] == [f"temperature-normals-{m:02d}"
                                                  for m in range(1, 13)]
    assert [s["value"] for s in answer["steps"]] == [
        value_at(month_source("temperature-normals", m), *BISHKEK) for m in range(1, 13)]
