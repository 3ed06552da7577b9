"""Raster downloads cut to a region or a box (catalog.portal.clip, /portal/clip/<id>): read with
GDAL (gdalinfo) and rasterio against the published COG and the published oblast polygons, the
size estimate, the size limit, bad parameters, and the dataset page's form in Chromium."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
import requests
import shapely
from shapely.geometry import shape

from tests.conftest import taza
from tests.test_portal import ARTIFACTS, browser, page  # noqa: F401 (fixtures: Chromium, watched page)


def region_polygon(home: Path, code: str):
    """The published oblast's polygon, read apart from the code under test (fiona)."""
    (path,) = (home / "datasets" / "oblasts").glob("*/oblasts.gpkg")
    with fiona.open(path) as layer:
        return next(shape(f.geometry) for f in layer if f.properties["region_iso"] == code)


def published_raster(home: Path, name: str) -> Path:
    (path,) = (home / "datasets").glob(f"*/*/{name}.tif")
    return path


def download(server, dataset_id: str, tmp_path: Path, **params) -> tuple[Path, requests.Response]:
    answer = requests.get(f"{server.url}/portal/clip/{dataset_id}", params=params, timeout=60)
    assert answer.status_code == 200, answer.text
    path = tmp_path / "clip.tif"
    path.write_bytes(answer.content)
    return path, answer


def gdalinfo(path: Path) -> dict:
    result = subprocess.run(["gdalinfo", "-json", str(path)], capture_output=True, text=True,
                            check=True, timeout=60)
    return json.loads(result.stdout)


def inside_box(outer: tuple, inner: tuple, margin: float) -> bool:
    """inner (west, south, east, north) lies in outer grown by margin on every side."""
    return (inner[0] >= outer[0] - margin and inner[1] >= outer[1] - margin
            and inner[2] <= outer[2] + margin and inner[3] <= outer[3] + margin)


def test_region_clip_keeps_the_source_inside_and_nodata_outside(server, published_home,
                                                                tmp_path):
    path, answer = download(server, "elevation", tmp_path, region="KG-C")
    assert answer.headers["Content-Disposition"] == 'attachment; filename="elevation-v1-KG-C.tif"'
    info = gdalinfo(path)
    assert info["driverShortName"] == "GTiff"
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    assert info["bands"][0]["overviews"], "a COG with overviews"
    assert 'ID["EPSG",4326]' in info["coordinateSystem"]["wkt"]
    polygon = region_polygon(published_home, "KG-C")
    source_path = published_raster(published_home, "elevation")
    with rasterio.open(path) as clip, rasterio.open(source_path) as source:
        # Every pixel overlapping the oblast's bbox, so at most one pixel beyond it.
        assert inside_box(polygon.bounds, tuple(clip.bounds), max(source.res))
        assert clip.width * clip.height < source.width * source.height / 4
        values = clip.read(1)
        rows, cols = np.indices(values.shape)
        xs, ys = rasterio.transform.xy(clip.transform, rows.ravel(), cols.ravel())
        centres = shapely.points(np.array(xs), np.array(ys))
        inside = shapely.contains(polygon, centres).reshape(values.shape)
        assert inside.any() and (~inside).any()
        assert (values[~inside] == clip.nodata).all()
        # Inside: the source's own values, pixel for pixel (the same grid).
        original = source.read(1, window=same_pixels(clip, source))
        assert (values[inside] == original[inside]).all()
        point = polygon.representative_point()
        row, col = clip.index(point.x, point.y)
        assert values[row, col] == next(source.sample([(point.x, point.y)]))[0] != clip.nodata
        # Outside the polygon where the source has data (in the next oblast): masked.
        assert (~inside & (original != source.nodata)).sum() > 1000


def same_pixels(clip, source) -> rasterio.windows.Window:
    """The source's window over the clip's pixels (the clip keeps the source's grid)."""
    return rasterio.windows.from_bounds(*clip.bounds, transform=source.transform) \
        .round_offsets().round_lengths()


def test_box_clip_and_time_step(server, published_home, tmp_path):
    path, answer = download(server, "elevation", tmp_path, bbox="74,42,75,42.5")
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="elevation-v1-bbox_74_42_75_42.5.tif"')
    with rasterio.open(path) as clip, \
            rasterio.open(published_raster(published_home, "elevation")) as source:
        assert inside_box((74, 42, 75, 42.5), tuple(clip.bounds), max(source.res))
        assert (clip.read(1) == source.read(1, window=same_pixels(clip, source))).all()
    path, answer = download(server, "temperature-normals", tmp_path, region="KG-N",
                            step="temperature-normals-07")
    assert "temperature-normals-v1-KG-N-temperature-normals-07.tif" in (
        answer.headers["Content-Disposition"])
    point = region_polygon(published_home, "KG-N").representative_point()
    with rasterio.open(path) as clip, rasterio.open(
            published_raster(published_home, "temperature-normals-07")) as july:
        assert clip.count == 1
        assert next(clip.sample([(point.x, point.y)]))[0] == next(
            july.sample([(point.x, point.y)]))[0]


def test_estimate_gives_the_size_before_download(server, tmp_path):
    estimate = requests.get(f"{server.url}/portal/clip/elevation/estimate",
                            params={"region": "KG-T"}, timeout=30).json()
    path, _ = download(server, "elevation", tmp_path, region="KG-T")
    with rasterio.open(path) as clip:
        assert (estimate["width"], estimate["height"], estimate["bands"]) == (
            clip.width, clip.height, 1)
        assert estimate["bytes"] == clip.width * clip.height * 2  # int16
    assert estimate["estimate"] is True and "estimate" in estimate["note"]
    assert estimate["file"] == "elevation-v1-KG-T.tif" and estimate["allowed"] is True


def test_clip_above_the_limit_is_refused(in_process, monkeypatch):
    monkeypatch.setenv("TAZA_CLIP_MAX_BYTES", "100000")
    answer = in_process.get("/portal/clip/elevation", {"region": "KG-C"})
    assert answer.status_code == 413
    message = answer.json()["description"]
    assert "limit is 100,000 bytes" in message
    assert re.search(r"would hold [\d,]+ bytes", message)
    estimate = in_process.get("/portal/clip/elevation/estimate", {"region": "KG-C"}).json()
    assert estimate["allowed"] is False and estimate["limit_bytes"] == 100_000
    assert f"{estimate['bytes']:,} bytes" in message


@pytest.mark.parametrize(("dataset_id", "params", "status", "words"), [
    ("elevation", {"region": "KG-C", "format": "png"}, 400, "unknown query parameter"),
    ("elevation", {}, 400, "either region"),
    ("elevation", {"region": "KG-C", "bbox": "74,42,75,43"}, 400, "either region"),
    ("elevation", {"region": "XX-1"}, 400, "no region 'XX-1'"),
    ("elevation", {"bbox": "74,42,75"}, 400, "four finite numbers"),
    ("elevation", {"bbox": "74,42,nan,43"}, 400, "four finite numbers"),
    ("elevation", {"bbox": "75,42,74,43"}, 400, "west < east"),
    ("elevation", {"bbox": "0,0,1,1"}, 400, "does not overlap"),
    ("elevation", {"region": "KG-C", "step": "x"}, 400, "not a time series"),
    ("temperature-normals", {"region": "KG-C"}, 400, "step: expected one of"),
    ("oblasts", {"region": "KG-C"}, 404, "not raster"),
    ("no-such-dataset", {"region": "KG-C"}, 404, "no published dataset"),
])
def test_bad_parameters_get_a_json_problem(in_process, dataset_id, params, status, words):
    for path in (f"/portal/clip/{dataset_id}", f"/portal/clip/{dataset_id}/estimate"):
        answer = in_process.get(path, params)
        assert answer.status_code == status, answer.text
        assert words in answer.json()["description"]


def test_dataset_page_shows_the_size_and_downloads(page, server, tmp_path):  # noqa: F811
    page.goto(f"{server.url}/datasets/elevation?lang=ru")
    page.select_option("#clip-region", "KG-C")
    page.click("#clip-estimate")
    size = page.locator("#clip-size")
    size.filter(has_text="×").wait_for()
    estimate = requests.get(f"{server.url}/portal/clip/elevation/estimate",
                            params={"region": "KG-C"}, timeout=30).json()
    assert "пикселей" in size.text_content() and "оценка" in size.text_content()
    assert f"{estimate['width']}" in size.text_content().replace("\u00a0", "")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#clip-form").screenshot(path=ARTIFACTS / "portal-clip-ru.png")
    with page.expect_download() as event:
        page.click("#clip-download")
    assert event.value.suggested_filename == "elevation-v1-KG-C.tif"
    saved = tmp_path / "from-browser.tif"
    event.value.save_as(saved)
    with rasterio.open(saved) as clip:
        assert (clip.width, clip.height) == (estimate["width"], estimate["height"])
    # A box: typed in degrees.
    page.select_option("#clip-region", "")
    for side, value in zip(("west", "south", "east", "north"), (74, 42, 75, 42.5), strict=True):
        page.fill(f"#clip-{side}", str(value))
    page.click("#clip-estimate")
    page.locator("#clip-download:not([hidden])").wait_for()
    assert page.get_attribute("#clip-download", "download") == (
        "elevation-v1-bbox_74_42_75_42.5.tif")


def test_the_limit_setting_is_checked_when_the_server_starts(scratch_home, monkeypatch):
    for wrong in ("64MB", "10"):
        monkeypatch.setenv("TAZA_CLIP_MAX_BYTES", wrong)
        # An address no interface has: a setting let through would fail to bind instead.
        refused = taza("serve", "--host", "203.0.113.1", home=scratch_home, check=False)
        assert refused.returncode == 2
        assert f"TAZA_CLIP_MAX_BYTES: expected bytes from 1024 to {1024 ** 3}" in refused.stderr
