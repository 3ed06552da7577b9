"""Raster downloads cut to a region or a box (catalog.portal.clip, /portal/clip/<id>): read with
GDAL (gdalinfo) and rasterio against the published COG and the published oblast polygons, the
size estimate, the size limit, bad parameters, the dataset page's form and the map page's
"Download a part" (a rectangle drawn with the mouse) in Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
import requests
import shapely
from shapely.geometry import shape

from catalog.portal.i18n import strings
from tests.conftest import start_server, stop_server, taza
from tests.test_portal import (  # noqa: F401 (fixtures: Chromium, watched page)
    ARTIFACTS,
    allow_failed_load,
    browser,
    open_portal,
    page,
    wait_for_map,
)


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


def test_refusals_the_pages_translate_carry_a_message_code(in_process, monkeypatch):
    """Outside the grid and over the limit: a message code and its params (strings.yml
    problem.<code>) beside the English description; other refusals have none."""
    for path in ("/portal/clip/elevation", "/portal/clip/elevation/estimate"):
        outside = in_process.get(path, {"bbox": "0,0,1,1"}).json()
        assert (outside["messageCode"], outside["params"], outside["status"]) == (
            "clip_outside", {}, 400)
        assert "problem.clip_outside" in strings()
    monkeypatch.setenv("TAZA_CLIP_MAX_BYTES", "100000")
    large = in_process.get("/portal/clip/elevation", {"region": "KG-C"})
    assert large.status_code == 413
    body = large.json()
    assert body["messageCode"] == "clip_too_large" and body["params"]["limit"] == 100_000
    assert body["params"]["bytes"] > 100_000 and set(body["params"]) == {"bytes", "limit"}
    assert "messageCode" not in in_process.get("/portal/clip/elevation", {"region": "XX-1"}).json()


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


def literal_parts(key: str, language: str) -> list[str]:
    """The words of a string between its {placeholders}: what the page must show verbatim."""
    return [part for part in re.split(r"\{\w+\}", strings()[key][language]) if part.strip()]


def draw_rectangle(tab, start: tuple[float, float], end: tuple[float, float]) -> list[float]:
    """Two clicks on the map, as draw.js expects for a rectangle (fractions of the map's size);
    the drawn box [west, south, east, north] as MapLibre reads the clicked pixels."""
    box = tab.locator("#map").bounding_box()
    points = [(round(box["width"] * fx), round(box["height"] * fy)) for fx, fy in (start, end)]
    tab.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    tab.mouse.click(box["x"] + points[0][0], box["y"] + points[0][1])
    for step in range(1, 6):  # the pointer travels: the preview follows it
        tab.mouse.move(box["x"] + points[0][0] + (points[1][0] - points[0][0]) * step / 5,
                        box["y"] + points[0][1] + (points[1][1] - points[0][1]) * step / 5)
    tab.mouse.click(box["x"] + points[1][0], box["y"] + points[1][1])
    corners = [tab.evaluate("([x, y]) => window.portal.map.unproject([x, y]).toArray()",
                             list(point)) for point in points]
    (west, east), (south, north) = sorted(c[0] for c in corners), sorted(c[1] for c in corners)
    return [west, south, east, north]


@pytest.mark.parametrize("language", ["ky", "ru", "en"])
def test_map_page_draws_a_box_shows_its_size_and_downloads_its_pixels(
        page, server, published_home, tmp_path, language):  # noqa: F811
    open_portal(page, server, f"?lang={language}#map=7.00/41.6000/74.6000&layers=elevation")
    page.click('.layer-clip[data-layer="elevation"]')
    panel = page.locator("#clip-panel")
    panel.wait_for()
    assert strings()["clip.part_title"][language].replace("{layer}: ", "") in (
        page.text_content("#clip-panel-title"))
    page.locator("#clip-size", has_text=strings()["clip.no_area"][language]).wait_for()
    page.click("#clip-draw")
    page.locator("#draw-bar:not([hidden])").wait_for()
    drawn = draw_rectangle(page, (0.40, 0.35), (0.62, 0.60))
    size = page.locator("#clip-size[data-state=ready]")
    size.wait_for()
    text = size.text_content()
    for words in literal_parts("clip.size", language):
        assert words in text, (words, text)
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).fragment)
    assert params["clip"] == ["elevation"]
    estimate = requests.get(f"{server.url}/portal/clip/elevation/estimate",
                            params={"bbox": params["clip_bbox"][0]}, timeout=30).json()
    digits = re.sub(r"\D", "", text)
    assert f"{estimate['width']}{estimate['height']}" in digits
    assert page.locator("#draw-bar").is_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"portal-clip-map-{language}.png")
    with page.expect_download() as event:
        page.click("#clip-download")
    assert event.value.suggested_filename == estimate["file"]
    assert estimate["file"].startswith("elevation-v1-bbox_")
    saved = tmp_path / "drawn.tif"
    event.value.save_as(saved)
    with rasterio.open(saved) as clip, \
            rasterio.open(published_raster(published_home, "elevation")) as source:
        assert (clip.width, clip.height) == (estimate["width"], estimate["height"])
        assert inside_box(tuple(drawn), tuple(clip.bounds), max(source.res))
        # and it covers the drawn box: every pixel the box touches is there
        assert inside_box(tuple(clip.bounds), tuple(drawn), 1e-9)
        assert (clip.read(1) == source.read(1, window=same_pixels(clip, source))).all()
    # The link reopens the map with the box drawn and its size shown.
    shared = page.url
    href = page.get_attribute("#clip-download", "href")
    page.reload()  # the same link loaded afresh
    assert page.url == shared
    page.wait_for_function("() => document.body?.dataset.mapReady === 'true'")
    page.locator("#clip-size[data-state=ready]").wait_for()
    assert page.get_attribute("#clip-download", "href") == href
    for words in literal_parts("clip.drawn", language):
        assert words in page.text_content("#clip-drawn")
    wait_for_map(page)
    drawn_on_map = page.evaluate(
        "() => window.portal.map.querySourceFeatures('clip-draw').map((f) => f.geometry.type)")
    assert "Polygon" in drawn_on_map
    page.screenshot(path=ARTIFACTS / f"portal-clip-map-reopened-{language}.png")


def test_map_page_region_and_refusals_in_each_language(page, published_home):  # noqa: F811
    """A region instead of a box, a box outside the grid and a clip over the limit: said in
    the page's language, with no download offered."""
    small = start_server(published_home, workers=1, env={"TAZA_CLIP_MAX_BYTES": "100000"},
                         log_name="server-clip-limit.log")
    allow_failed_load(page, "/portal/clip/elevation/estimate?bbox=10%2C10%2C11%2C11", "400")
    try:
        for language in ("ky", "ru", "en"):
            open_portal(page, small, f"?lang={language}#map=6.00/41.3000/74.8000&layers=elevation"
                                     "&clip=elevation&clip_bbox=10,10,11,11")
            refused = page.locator("#clip-size[data-state=refused]")
            refused.wait_for()
            assert refused.text_content() == strings()["problem.clip_outside"][language]
            assert page.locator("#clip-download").is_hidden()
            page.select_option("#clip-region", "KG-C")
            page.locator("#clip-size[data-state=too-large]").wait_for()
            for words in literal_parts("clip.too_large", language):
                assert words in page.text_content("#clip-size")
            assert page.locator("#clip-download").is_hidden()
            assert "clip_region=KG-C" in page.url and "clip_bbox" not in page.url
            page.screenshot(path=ARTIFACTS / f"portal-clip-map-refused-{language}.png")
            page.click("#clip-close")
            assert page.locator("#clip-panel").is_hidden()
            assert "clip=" not in page.url
    finally:
        stop_server(small)


def test_map_page_clips_the_time_step_shown(page, server):  # noqa: F811
    """A time series is cut at the step the map shows: restored from the link, and changed
    with the layer's step."""
    open_portal(page, server, "?lang=ru#map=6.00/41.3000/74.8000&layers=temperature-normals"
                              "&clip=temperature-normals&clip_region=KG-N"
                              "&clip_step=temperature-normals-07")
    page.locator("#clip-size[data-state=ready]").wait_for()
    assert page.input_value('.layer-step[data-layer="temperature-normals"]') == "7"
    assert page.input_value("#clip-region") == "KG-N"
    assert "июль" in page.text_content("#clip-step-note").lower()
    href = page.get_attribute("#clip-download", "href")
    assert "region=KG-N" in href and "step=temperature-normals-07" in href
    assert page.get_attribute("#clip-download", "download") == (
        "temperature-normals-v1-KG-N-temperature-normals-07.tif")
    page.select_option('.layer-step[data-layer="temperature-normals"]', "1")
    page.locator('#clip-download[href*="step=temperature-normals-01"]').wait_for()
    page.locator("#clip-size[data-state=ready]").wait_for()
    assert "clip_step=temperature-normals-01" in page.url
    assert "январь" in page.text_content("#clip-step-note").lower()
    # Turning the layer off closes its panel.
    page.uncheck("#toggle-temperature-normals")
    assert page.locator("#clip-panel").is_hidden() and "clip=" not in page.url


def test_dataset_page_links_to_drawing_on_the_map(page, server):  # noqa: F811
    page.goto(f"{server.url}/datasets/elevation?lang=ky")
    page.click("#clip-draw-on-map")
    page.wait_for_function("() => document.body?.dataset.mapReady === 'true'")
    page.locator("#clip-panel:not([hidden])").wait_for()
    assert "lang=ky" in page.url and "clip=elevation" in page.url
    assert page.is_checked("#toggle-elevation")
    page.locator("#clip-size", has_text=strings()["clip.no_area"]["ky"]).wait_for()
