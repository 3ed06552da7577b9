"""OGC API - Tiles (catalog/ogc_tiles) and the `latest` XYZ tile URLs, read by real clients:

- a client that follows the links as GDAL's OGCAPI driver (3.7+) does: collection ->
  tilesets-vector/-map -> tileset (self) -> tiling-scheme and item template -> tiles; the tile
  matrix sets are read back with morecantile (a TMS 2.0 reader);
- MapLibre GL in Chromium, from a collection's style through its TileJSON to the tiles;
- GDAL 3.6 (Debian's ogrinfo) on the `latest` XYZ template, the form its OGCAPI driver cannot
  replace (docs/clients.md).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
import warnings

import mapbox_vector_tile
import morecantile
import numpy as np
import pyproj
import pytest
import rasterio
import rasterio.transform
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from catalog.core.webmercator import WORLD, TileBounds, lonlat_to_mercator
from catalog.portal import layers
from catalog.store import CatalogStore
from tests.conftest import InProcess, copy_dataset, taza
from tests.test_portal import browser  # noqa: F401 - the Chromium fixture

OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0"
TILES_CONF = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf"
BISHKEK = (74.6, 42.87)


def ok_json(app, path: str) -> dict:
    response = app.get(path)
    assert response.status_code == 200, (path, response.text[:300])
    return response.json()


def link(document: dict, rel: str, media_type: str = "application/json") -> str:
    hrefs = [x["href"] for x in document["links"] if x["rel"] == rel and x["type"] == media_type]
    assert len(hrefs) == 1, (rel, media_type, document["links"])
    return hrefs[0]


def local(app, url: str) -> str:
    """A link of the service as a path of the app under test."""
    assert url.startswith(app.url), url
    return url[len(app.url):]


def walk_to_tileset(app, collection_id: str, kind: str, matrix_set: str) -> dict:
    """collection -> its tilesets (by rel) -> the tileset in `matrix_set`, as GDAL walks."""
    collection = ok_json(app, f"/ogc/collections/{collection_id}")
    tilesets = ok_json(app, local(app, link(collection, f"{OGC_REL}/tilesets-{kind}")))
    chosen = [t for t in tilesets["tilesets"] if t["tileMatrixSetURI"].endswith(matrix_set)]
    assert len(chosen) == 1 and chosen[0]["dataType"] == kind
    return ok_json(app, local(app, link(chosen[0], "self")))


def tile_path(app, tileset: dict, media_type: str, z: int, row: int, col: int) -> str:
    template = link(tileset, "item", media_type)
    return local(app, template.format(tileMatrix=z, tileRow=row, tileCol=col))


def decoded_ids(content: bytes, layer: str, key: str) -> set:
    if not content:
        return set()
    return {f["properties"][key] for f in mapbox_vector_tile.decode(content)[layer]["features"]}


def rgba(content: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(content) as memory, memory.open() as image:
            assert (image.width, image.height, image.count) == (256, 256, 4)
            return image.read()


# --- the service documents ------------------------------------------------------------------

def test_conformance_and_landing_page_declare_tiles(in_process):
    declared = ok_json(in_process, "/ogc/conformance")["conformsTo"]
    for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt", "png"):
        assert f"{TILES_CONF}/{name}" in declared
    # Not passed, so not declared: no dataset tilesets, no collection selection, no OpenAPI.
    assert not [c for c in declared if c.startswith(TILES_CONF) and
                c.rsplit("/", 1)[1] in ("dataset-tilesets", "geodata-selection", "oas30")]
    landing = ok_json(in_process, "/ogc/")
    listed = ok_json(in_process, local(in_process, link(landing, f"{OGC_REL}/tiling-schemes")))
    assert [m["id"] for m in listed["tileMatrixSets"]] == ["WebMercatorQuad", "WorldCRS84Quad"]


@pytest.mark.parametrize("matrix_set", ["WebMercatorQuad", "WorldCRS84Quad"])
def test_tile_matrix_sets_are_read_back_by_morecantile(in_process, matrix_set):
    listed = ok_json(in_process, "/ogc/tileMatrixSets")
    entry = next(m for m in listed["tileMatrixSets"] if m["id"] == matrix_set)
    document = ok_json(in_process, local(in_process, link(entry, "self")))
    served = morecantile.TileMatrixSet.model_validate(document)
    reference = morecantile.tms.get(matrix_set)
    assert str(served.crs.root) == str(reference.crs.root)
    assert [m.matrixWidth for m in served.tileMatrices] == \
        [m.matrixWidth for m in reference.tileMatrices[:len(served.tileMatrices)]]


def test_the_web_mercator_grid_of_our_tiles_is_morecantiles():
    """The renderers' grid (catalog/core/webmercator.py) is WebMercatorQuad to the millimetre."""
    tms = morecantile.tms.get("WebMercatorQuad")
    for z, x, y in ((0, 0, 0), (5, 22, 11), (11, 1448, 762), (18, 185000, 97000)):
        ours = TileBounds.checked(z, x, y).mercator
        assert all(abs(a - b) < 1e-3 for a, b in zip(ours, tms.xy_bounds(x, y, z), strict=True))


def test_mercator_metres_are_the_c_librarys_to_the_bit_and_pyprojs_to_the_nanometre():
    """Vector tiles' coordinates (and ETags) must not depend on the machine: numpy's own
    vectorised log and tan run other code on CPUs with AVX-512 and differ in the last bit, so
    the conversion uses the C library's, value by value (the golden tile of mobile-coverage
    differed between two machines before). The reference: Python's math (the C library) for
    the bits, and PROJ's EPSG:3857 (pyproj) for the projection itself."""
    rng = np.random.default_rng(7)
    lon = rng.uniform(-180, 180, 5000)
    lat = np.concatenate([rng.uniform(-85.05, 85.05, 4990), [0.0, 42.87, -85.06, 85.06, 89.0,
                                                            -90.0, 1e-300, -0.0, 60.0, 74.5]])
    x, y = lonlat_to_mercator(lon, lat)
    clipped = [max(-85.05112878, min(85.05112878, value)) for value in lat.tolist()]
    expected = [math.log(math.tan(math.pi / 4 + math.radians(value) / 2)) * WORLD / math.pi
                for value in clipped]
    assert y.tolist() == expected
    proj_x, proj_y = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(
        lon, np.asarray(clipped))
    assert np.abs(x - proj_x).max() < 1e-6 and np.abs(y - proj_y).max() < 1e-6


# --- vector tiles -------------------------------------------------------------------------

def test_vector_tiles_found_through_the_links_hold_every_feature(in_process):
    tileset = walk_to_tileset(in_process, "settlements", "vector", "WebMercatorQuad")
    assert tileset["layers"][0]["id"] == "settlements"
    assert tileset["layers"][0]["geometryDimension"] == 0
    scheme = link(tileset, f"{OGC_REL}/tiling-scheme")
    assert morecantile.TileMatrixSet.model_validate(ok_json(in_process, local(in_process, scheme)))
    level5 = next(x for x in tileset["tileMatrixSetLimits"] if x["tileMatrix"] == "5")
    ids = set()
    for row in range(level5["minTileRow"], level5["maxTileRow"] + 1):
        for col in range(level5["minTileCol"], level5["maxTileCol"] + 1):
            response = in_process.get(tile_path(in_process, tileset,
                                                "application/vnd.mapbox-vector-tile", 5, row, col))
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
            assert response.headers["Cache-Control"] == "public, max-age=60"
            ids |= decoded_ids(response.content, "settlements", "geonames_id")
    items = ok_json(in_process, "/ogc/collections/settlements/items?f=json&limit=1000")
    assert ids == {f["id"] for f in items["features"]} and len(ids) == 112


def test_tilejson_names_the_layer_and_its_fields(in_process):
    tileset = walk_to_tileset(in_process, "settlements", "vector", "WebMercatorQuad")
    response = in_process.get(local(in_process, link(tileset, "alternate",
                                                     "application/vnd.mapbox.tile+json")))
    assert response.headers["Content-Type"] == "application/vnd.mapbox.tile+json"
    tilejson = response.json()
    assert tilejson["tilejson"] == "3.0.0" and tilejson["maxzoom"] == 14
    assert tilejson["vector_layers"][0]["id"] == "settlements"
    assert "geonames_id" in tilejson["vector_layers"][0]["fields"]
    z, x, y = 5, 22, 11
    path = local(in_process, tilejson["tiles"][0].format(z=z, x=x, y=y))
    assert in_process.get(path).content == \
        in_process.get(f"/tiles/settlements/1/{z}/{x}/{y}.mvt").content


# --- map tiles of rasters -----------------------------------------------------------------

@pytest.mark.parametrize("matrix_set", ["WebMercatorQuad", "WorldCRS84Quad"])
def test_map_tiles_draw_the_raster_where_it_is(in_process, matrix_set):
    tileset = walk_to_tileset(in_process, "elevation", "map", matrix_set)
    tms = morecantile.TileMatrixSet.model_validate(
        ok_json(in_process, local(in_process, link(tileset, f"{OGC_REL}/tiling-scheme"))))
    inside = tms.tile(*BISHKEK, 7)
    response = in_process.get(tile_path(in_process, tileset, "image/png", 7, inside.y, inside.x))
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    alpha = rgba(response.content)[3]
    assert (alpha == 255).mean() > 0.5
    limits = {x["tileMatrix"]: x for x in tileset["tileMatrixSetLimits"]}
    assert limits["7"]["minTileCol"] <= inside.x <= limits["7"]["maxTileCol"]
    assert limits["7"]["minTileRow"] <= inside.y <= limits["7"]["maxTileRow"]
    # A corner tile of the limits is served; beyond the limits: 404 (OGC API - Tiles).
    corner = in_process.get(tile_path(in_process, tileset, "image/png", 7,
                                      limits["7"]["maxTileRow"], limits["7"]["minTileCol"]))
    assert corner.status_code == 200
    outside = tms.tile(10.0, 50.0, 7)  # Europe
    beyond = in_process.get(tile_path(in_process, tileset, "image/png", 7, outside.y, outside.x))
    assert beyond.status_code == 404 and "tileMatrixSetLimits" in beyond.json()["description"]


def test_the_world_crs84_tile_is_drawn_on_its_own_grid(in_process):
    """A WorldCRS84Quad tile is not a WebMercator tile relabelled: each pixel is drawn where
    the COG has data at that pixel's centre on the CRS84 grid (looked up by index, not warped)."""
    tms = morecantile.tms.get("WorldCRS84Quad")
    tile = tms.tile(78.0, 42.0, 7)  # the east of the country, with its border in the tile
    alpha = rgba(in_process.get(
        f"/ogc/collections/elevation/map/tiles/WorldCRS84Quad/7/{tile.y}/{tile.x}").content)[3]
    west, south, east, north = tms.bounds(tile)
    step = (east - west) / 256
    centres = np.arange(256) + 0.5
    lons, lats = np.meshgrid(west + centres * step, north - centres * step)
    with rasterio.open(in_process.home / "datasets/elevation/1/elevation.tif") as dataset:
        valid = dataset.read_masks(1) > 0
        rows, cols = rasterio.transform.rowcol(dataset.transform, lons.ravel(), lats.ravel())
        rows, cols = np.asarray(rows), np.asarray(cols)
        inside = (rows >= 0) & (rows < dataset.height) & (cols >= 0) & (cols < dataset.width)
    expected = np.zeros(lons.size, dtype=bool)
    expected[inside] = valid[rows[inside], cols[inside]]
    drawn = (alpha == 255).ravel()
    assert 0.2 < expected.mean() < 0.95  # the tile shows an edge of the data
    assert (drawn == expected).mean() > 0.98  # bilinear resampling moves edges by a pixel


@pytest.mark.parametrize("matrix_set", ["WebMercatorQuad", "WorldCRS84Quad"])
def test_map_tiles_of_a_class_raster_draw_only_its_class_colours(in_process, matrix_set):
    """Land cover codes are classes, not quantities: every pixel drawn is in one of its
    classes' colours (a ramp over the codes, or codes averaged by resampling, would not be)."""
    record = CatalogStore(in_process.home).record("land-cover", 1)
    colours = set(layers.class_colours(record).values())
    tileset = walk_to_tileset(in_process, "land-cover", "map", matrix_set)
    tile = morecantile.tms.get(matrix_set).tile(*BISHKEK, 7)
    image = rgba(in_process.get(tile_path(in_process, tileset, "image/png", 7, tile.y,
                                          tile.x)).content)
    drawn = image[3] == 255
    assert drawn.mean() > 0.5
    found = {tuple(int(v) for v in pixel) for pixel in image[:3, drawn].T}
    assert len(found) > 2 and found <= colours


# --- styles -------------------------------------------------------------------------------

def test_styles_follow_the_portal_legend(in_process):
    style = in_process.get("/ogc/collections/settlements/styles/default")
    assert style.headers["Content-Type"] == "application/vnd.mapbox.style+json"
    document = style.json()
    assert document["version"] == 8
    assert document["sources"]["settlements"]["url"].endswith(
        "/ogc/collections/settlements/tiles/WebMercatorQuad?f=tilejson")
    (layer,) = document["layers"]
    assert layer["type"] == "circle" and layer["source-layer"] == "settlements"
    entries = layers.map_layers(CatalogStore(in_process.home).current_records())
    portal_colour = next(e for e in entries if e["id"] == "settlements")["legend"]["colour"]
    assert layer["paint"]["circle-color"] == portal_colour
    raster = ok_json(in_process, "/ogc/collections/slope/styles/default")
    assert raster["sources"]["slope"]["type"] == "raster"


TEST_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/vendor/maplibre-gl/dist/maplibre-gl.css"></head>
<body style="margin:0"><div id="map" style="width:512px;height:512px"></div>
<script src="/vendor/maplibre-gl/dist/maplibre-gl.js"></script>
<script src="/__test__/map.js"></script></body></html>"""
TEST_SCRIPT = """const params = new URLSearchParams(location.search);
window.tileRequests = [];
window.map = new maplibregl.Map({container: "map", style: params.get("style"),
  center: [74.6, 41.6], zoom: 5, fadeDuration: 0,
  transformRequest: (url) => { window.tileRequests.push(url); return {url}; }});
window.map.on("idle", () => { window.idle = true; });
window.map.on("error", (event) => { window.mapError = String(event.error); });"""


@pytest.mark.parametrize("collection,kind,least", [
    ("settlements", "vector", 50), ("mobile-coverage", "vector", 1),  # colours by category
    ("elevation", "map", 0)])
def test_maplibre_draws_a_collection_from_its_style(browser, server, collection,  # noqa: F811
                                                    kind, least):
    """MapLibre reads the style, its TileJSON and the tiles. The test page is served by
    Playwright on the server's origin (the catalog has no page of its own for this)."""
    context = browser.new_context(viewport={"width": 600, "height": 600})
    page = context.new_page()
    page.route(re.compile(r".*/__test__/page\.html(\?.*)?$"), lambda route: route.fulfill(
        status=200, content_type="text/html", body=TEST_PAGE))
    page.route(f"{server.url}/__test__/map.js", lambda route: route.fulfill(
        status=200, content_type="text/javascript", body=TEST_SCRIPT))
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    try:
        style = f"{server.url}/ogc/collections/{collection}/styles/default"
        page.goto(f"{server.url}/__test__/page.html?style={style}")
        page.wait_for_function("() => window.idle === true || window.mapError", timeout=30_000)
        assert page.evaluate("() => window.mapError || null") is None
        requested = page.evaluate("() => window.tileRequests")
        tiles_path = "tiles" if kind == "vector" else "map/tiles"
        tile_url = re.compile(rf".*/ogc/collections/{collection}/{tiles_path}/WebMercatorQuad/"
                              r"\d+/\d+/\d+$")
        assert [url for url in requested if tile_url.match(url)], requested
        if kind == "vector":
            drawn = page.evaluate("() => window.map.queryRenderedFeatures().length")
            assert drawn >= least
        else:
            assert page.evaluate(f"() => window.map.isSourceLoaded('{collection}')")
        assert not failed
    finally:
        context.close()


# --- the `latest` XYZ URLs -----------------------------------------------------------------

def test_latest_xyz_tiles_are_the_live_versions_with_short_caching(in_process):
    for latest, versioned in (("/tiles/settlements/latest/5/22/11.mvt",
                               "/tiles/settlements/1/5/22/11.mvt"),
                              ("/tiles/elevation/latest/relief/6/45/23.png",
                               "/tiles/elevation/1/relief/6/45/23.png")):
        follows, fixed = in_process.get(latest), in_process.get(versioned)
        assert follows.status_code == fixed.status_code == 200
        assert follows.content == fixed.content
        assert follows.headers["Cache-Control"] == "public, max-age=60"
        assert fixed.headers["Cache-Control"] == "public, max-age=300"
        assert follows.headers["ETag"] == fixed.headers["ETag"]


def test_latest_and_ogc_tile_urls_survive_a_republish(tmp_path, scratch_home):
    manifest = copy_dataset("airports", tmp_path / "work")
    taza("publish", str(manifest), home=scratch_home)
    app = InProcess(scratch_home)
    latest = "/tiles/airports/latest/5/22/11.mvt"
    ogc = "/ogc/collections/airports/tiles/WebMercatorQuad/5/11/22"
    before = decoded_ids(app.get(latest).content, "airports", "icao")
    assert len(before) > 5 and decoded_ids(app.get(ogc).content, "airports", "icao") == before

    source = tmp_path / "work/sources/airports.geojson"
    data = json.loads(source.read_text())
    data["features"] = data["features"][:5]
    source.write_text(json.dumps(data))
    taza("publish", str(manifest), home=scratch_home)

    assert app.get("/tiles/airports/1/5/22/11.mvt").status_code == 404  # taken down
    deadline = time.monotonic() + 10  # a worker looks at current.json once a second
    while time.monotonic() < deadline:
        after = decoded_ids(app.get(ogc).content, "airports", "icao")
        if after != before:
            break
        time.sleep(0.2)
    assert len(after) <= 5 and after < before
    assert decoded_ids(app.get(latest).content, "airports", "icao") == after


def test_gdal_36_reads_the_latest_xyz_template(server):
    """QGIS 3.22 and GDAL 3.6 cannot read OGC API - Tiles; they take the XYZ template, whose
    `latest` form keeps working across versions (docs/clients.md)."""
    url = f"/vsicurl/{server.url}/tiles/settlements/latest/5/22/11.mvt"
    result = subprocess.run(["ogrinfo", "-ro", "-al", "-so", url], capture_output=True,
                            text=True, timeout=60, env={"GDAL_HTTP_TIMEOUT": "30",
                                                        "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "Layer name: settlements" in result.stdout
    assert "Pseudo-Mercator" in result.stdout
    count = int(result.stdout.split("Feature Count: ")[1].split()[0])
    direct = decoded_ids(server.get("/tiles/settlements/1/5/22/11.mvt").content, "settlements",
                         "geonames_id")
    assert count == len(direct) > 10
