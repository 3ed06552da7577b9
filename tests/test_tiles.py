"""Map tiles: MVT from GeoPackages (checked against shapely on a large synthetic layer) and the
raster tiles (relief basemap, coverage colours) over HTTP on the sample catalog."""

from __future__ import annotations

import sqlite3
import struct
import warnings
from pathlib import Path

import fiona
import mapbox_vector_tile
import numpy as np
import pytest
import rasterio
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from catalog.features import mvt as vector_tiles
from catalog.features import mvt_encoding
from catalog.portal import tiles
from catalog.portal.tiles import TileBounds, mercator_to_lonlat

SYNTHETIC_COUNT = 250_000
CELL = 0.01  # degrees; each synthetic parcel is a 0.006 degree square inside its cell
SIDE = 0.006
WEST, SOUTH = 70.0, 41.5  # the grid lies inside the zoom-5 tile 22/11
COLUMNS = 500  # 500 x 500 cells = 5 x 5 degrees


@pytest.fixture(scope="module")
def synthetic_gpkg(tmp_path_factory) -> Path:
    """SYNTHETIC: 250,000 invented square parcels on a regular grid, written as GDAL would
    (fiona creates the layer, R-tree and triggers), the rows bulk-inserted with SQLite."""
    path = tmp_path_factory.mktemp("synthetic") / "synthetic-parcels.gpkg"
    schema = {"geometry": "Polygon", "properties": {"parcel": "int", "kind": "str:12"}}
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs="EPSG:4326", layer="parcels"):
        pass
    index = np.arange(SYNTHETIC_COUNT)
    minx = WEST + (index % COLUMNS) * CELL
    miny = SOUTH + (index // COLUMNS) * CELL
    boxes = shapely.box(minx, miny, minx + SIDE, miny + SIDE)
    wkbs = shapely.to_wkb(boxes, flavor="iso", byte_order=1)
    header = b"GP\x00\x03" + struct.pack("<i", 4326)
    ids, xs, ys = index.tolist(), minx.tolist(), miny.tolist()  # plain ints/floats for sqlite3
    rows = [(i + 1, header + struct.pack("<4d", x, x + SIDE, y, y + SIDE) + wkb, i,
             ("cropland", "pasture", "orchard")[i % 3])
            for i, x, y, wkb in zip(ids, xs, ys, wkbs, strict=True)]
    with sqlite3.connect(path) as conn:
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, _ in triggers:  # they call SpatiaLite functions plain SQLite lacks
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.executemany("INSERT INTO parcels (fid, geom, parcel, kind) VALUES (?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO rtree_parcels_geom VALUES (?, ?, ?, ?, ?)",
                         [(i + 1, x, x + SIDE, y, y + SIDE)
                          for i, x, y in zip(ids, xs, ys, strict=True)])
        for _, sql in triggers:
            conn.execute(sql)
    return path


def tile_at(z: int, lon: float, lat: float) -> TileBounds:
    n = 2**z
    y = (1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n
    return TileBounds.checked(z, int((lon + 180) / 360 * n), int(y))


def decoded(data: bytes) -> list[dict]:
    if not data:
        return []
    layer = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})["parcels"]
    assert layer["extent"] == vector_tiles.EXTENT
    return layer["features"]


def tile_to_lonlat(tile: TileBounds, x: float, y: float) -> tuple[float, float]:
    minx, _, maxx, maxy = tile.mercator
    size = maxx - minx
    return mercator_to_lonlat(minx + x / vector_tiles.EXTENT * size,
                              maxy - y / vector_tiles.EXTENT * size)


def reference_ids(tile: TileBounds, buffered: bool) -> set[int]:
    """Parcels (fid) meeting the tile, computed from the grid formula with shapely."""
    west, south, east, north = vector_tiles.buffered_lonlat(tile) if buffered else tile.lonlat
    index = np.arange(SYNTHETIC_COUNT)
    minx = WEST + (index % COLUMNS) * CELL
    miny = SOUTH + (index // COLUMNS) * CELL
    boxes = shapely.box(minx, miny, minx + SIDE, miny + SIDE)
    hits = shapely.intersects(boxes, shapely.box(west, south, east, north))
    return {int(i) + 1 for i in index[hits]}


def test_a_deep_tile_holds_exactly_the_parcels_in_it(synthetic_gpkg):
    tile = tile_at(11, 72.5, 43.5)  # inside the grid: about 700 parcels
    data, stats = vector_tiles.render_mvt(synthetic_gpkg, "parcels", "parcels", tile)
    features = decoded(data)
    ids = {f["id"] for f in features}
    assert stats.thinning == 1 and stats.encoded == len(features) > 100
    # Everything inside the tile is there; nothing beyond the buffered tile is.
    assert reference_ids(tile, buffered=False) <= ids <= reference_ids(tile, buffered=True)
    by_id = {f["id"]: f for f in features}
    sample = sorted(reference_ids(tile, buffered=False))[::37]
    for fid in sample:
        feature = by_id[fid]
        assert feature["properties"] == {"parcel": fid - 1,
                                         "kind": ("cropland", "pasture", "orchard")[(fid - 1) % 3]}
        ring = feature["geometry"]["coordinates"][0]
        drawn = shapely.Polygon([tile_to_lonlat(tile, x, y) for x, y in ring])
        i = fid - 1
        x0, y0 = WEST + (i % COLUMNS) * CELL, SOUTH + (i // COLUMNS) * CELL
        truth = shapely.box(x0, y0, x0 + SIDE, y0 + SIDE).intersection(shapely.box(*tile.lonlat))
        clipped = drawn.intersection(shapely.box(*tile.lonlat))
        # One tile unit is ~10 m here; rounding moves a corner by at most half a unit.
        unit = (tile.lonlat[2] - tile.lonlat[0]) / vector_tiles.EXTENT
        assert shapely.hausdorff_distance(clipped, truth) < 1.5 * unit


def test_a_country_scale_tile_is_capped_and_thinned_evenly(synthetic_gpkg):
    tile = TileBounds.checked(5, 22, 11)  # covers the whole grid
    data, stats = vector_tiles.render_mvt(synthetic_gpkg, "parcels", "parcels", tile)
    features = decoded(data)
    assert stats.candidates == SYNTHETIC_COUNT
    assert stats.thinning == -(-SYNTHETIC_COUNT // vector_tiles.FEATURE_CAP)
    assert vector_tiles.FEATURE_CAP // 2 < len(features) <= vector_tiles.FEATURE_CAP
    # The kept parcels spread over the whole grid: every 1-degree block keeps some.
    centres = [tile_to_lonlat(tile, *np.mean(f["geometry"]["coordinates"][0], axis=0))
               for f in features if f["geometry"]["type"] == "Polygon"]
    blocks = {(int(lon - WEST), int(lat - SOUTH)) for lon, lat in centres}
    assert blocks == {(bx, by) for bx in range(5) for by in range(5)}


# Near Bishkek, inside tile 10/724/376 (z/x/y): a quadrilateral whose second vertex lies 3.2
# tile units (of 4,096) off the line through its neighbours, under the 4-unit simplification,
# and a square with three such vertices along one edge (8 coordinates). Shared with
# tests/test_postgis_features.py, which checks that PostGIS tiles keep the same rule.
SIMPLIFICATION_TILE = (10, 724, 376)
QUADRILATERAL = "POLYGON((74.58 42.86, 74.59 42.8598, 74.60 42.86, 74.60 42.88, 74.58 42.86))"
DETAILED_SQUARE = ("POLYGON((74.63 42.86, 74.635 42.86001, 74.64 42.86, 74.645 42.85999, "
                   "74.65 42.86, 74.65 42.88, 74.63 42.88, 74.63 42.86))")


def test_only_geometries_with_more_than_a_quadrilaterals_points_are_simplified():
    """Simplifying a quadrilateral saves one vertex at most and costs more than that (most of
    a PostGIS tile's time for parcels): it keeps its four corners; the square loses its
    three near-collinear vertices."""
    tile = TileBounds.checked(*SIMPLIFICATION_TILE)
    assert tile.z < vector_tiles.MAX_ZOOM  # a zoom where simplification applies
    shapes = shapely.from_wkt([QUADRILATERAL, DETAILED_SQUARE])
    quadrilateral, square = vector_tiles._to_tile_coordinates(shapes, tile)  # noqa: SLF001
    assert shapely.get_num_coordinates(quadrilateral) == 5
    assert shapely.get_num_coordinates(square) == 5
    assert shapely.get_num_coordinates(shapely.simplify(quadrilateral, vector_tiles.SIMPLIFY,
                                                        preserve_topology=True)) == 4


def _encoded(geometries: list, checked: bool) -> bytes:
    """The tile mapbox-vector-tile encodes: with its own winding-order check (the reference),
    or from what catalog.features.mvt rounded and oriented beforehand."""
    if not checked:
        geometries = list(vector_tiles._rounded_and_oriented(np.array(geometries)))  # noqa: SLF001
    return mapbox_vector_tile.encode(
        [{"name": "layer", "features": [{"geometry": g, "properties": {}, "id": i}
                                        for i, g in enumerate(geometries)]}],
        default_options={"extents": vector_tiles.EXTENT, "y_coord_down": True,
                         "on_invalid_geometry": vector_tiles.on_invalid_geometry_make_valid,
                         "check_winding_order": checked})


tile_units = st.floats(-64, 4160, allow_nan=False)


@st.composite
def polygons(draw) -> shapely.Geometry:
    """Star-shaped rings in either direction, some with a hole, some in a MultiPolygon, their
    coordinates on a half-unit grid: halves (x.5) are where rounding half to even matters."""
    def ring(cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
        count = draw(st.integers(3, 9))
        angles = sorted(draw(st.lists(st.floats(0, 6.283), min_size=count, max_size=count,
                                      unique=True)))
        points = [(round(2 * (cx + radius * np.cos(a))) / 2,  # x.5: rounding to even
                   round(2 * (cy + radius * np.sin(a))) / 2) for a in angles]
        return points[::-1] if draw(st.booleans()) else points

    def polygon(cx: float, cy: float) -> shapely.Polygon:
        radius = draw(st.floats(1, 300))
        hole = ring(cx, cy, radius / 3) if draw(st.booleans()) else None
        return shapely.Polygon(ring(cx, cy, radius), [hole] if hole else None)

    first = polygon(draw(tile_units), draw(tile_units))
    if draw(st.booleans()):
        return first
    return shapely.MultiPolygon([first, polygon(draw(tile_units) + 5000, draw(tile_units))])


@settings(max_examples=600, deadline=None)
@given(st.lists(polygons(), min_size=1, max_size=6))
def test_polygons_rounded_and_oriented_beforehand_encode_as_the_encoders_check_does(shapes):
    """mapbox-vector-tile's winding-order check rounds and orients each polygon in Python;
    catalog.features.mvt does it for a whole tile at once with shapely and tells the encoder
    to skip it. Same bytes; polygons invalid once rounded are dropped where the check drops
    them, and a tile with one the check repairs is left to the check."""
    if vector_tiles._rounded_and_oriented(np.array(shapes)) is None:  # noqa: SLF001
        return
    assert _encoded(shapes, checked=False) == _encoded(shapes, checked=True)


# --- the tile's bytes written with numpy (catalog/features/mvt_encoding.py) against the library --

grid_units = st.one_of(st.integers(-70, 4170).map(float), st.integers(-140, 8340).map(
    lambda half: half / 2), st.floats(-70, 4170, allow_nan=False))


def _points_of(draw, count: int) -> list[tuple[float, float]]:
    """Points close to each other, some repeated or equal once rounded (left out by both)."""
    x, y = draw(grid_units), draw(grid_units)
    points = [(x, y)]
    for _ in range(count - 1):
        dx, dy = draw(st.sampled_from([0.0, 0.3, 0.5, 1.0, -2.5, 40.0])), \
            draw(st.sampled_from([0.0, 0.4, -0.5, 1.5, 33.0]))
        points.append((points[-1][0] + dx, points[-1][1] + dy))
    return points


@st.composite
def tile_geometries(draw, family: str) -> shapely.Geometry:
    def polygon() -> shapely.Polygon:
        holes = [_points_of(draw, draw(st.integers(3, 6)))
                 for _ in range(draw(st.integers(0, 2)))]
        if draw(st.integers(0, 3)) == 0:  # an exterior that rounding collapses to one point
            x, y = draw(grid_units), draw(grid_units)
            exterior = [(x, y), (x + 0.1, y), (x + 0.1, y + 0.2)]
        else:
            exterior = _points_of(draw, draw(st.integers(3, 8)))
        return shapely.Polygon(exterior, holes)

    def line() -> shapely.LineString:
        return shapely.LineString(_points_of(draw, draw(st.integers(2, 7))))

    one = {"point": lambda: shapely.Point(_points_of(draw, 1)[0]), "line": line,
           "polygon": polygon}[family]
    many = {"point": lambda: shapely.MultiPoint(_points_of(draw, draw(st.integers(1, 5)))),
            "line": lambda: shapely.MultiLineString([line() for _ in range(
                draw(st.integers(1, 3)))]),
            "polygon": lambda: shapely.MultiPolygon([polygon() for _ in range(
                draw(st.integers(1, 3)))])}[family]
    return one() if draw(st.booleans()) else many()


property_values = st.one_of(
    st.text(max_size=4), st.booleans(), st.integers(-(1 << 63), (1 << 63) - 1),
    st.integers(-3, 3), st.floats(), st.sampled_from([0, 1, 0.0, 1.0, -0.0, True, False]),
    st.none(), st.binary(max_size=2))


@st.composite
def tile_features(draw) -> tuple[list, list, list]:
    family = draw(st.sampled_from(["point", "line", "polygon"]))
    count = draw(st.integers(1, 8))
    geometries = [draw(tile_geometries(family)) for _ in range(count)]
    properties = [draw(st.dictionaries(st.sampled_from(["kind", "n", "name", "ok", "é"]),
                                       property_values, max_size=5)) for _ in range(count)]
    ids = [draw(st.one_of(st.none(), st.integers(-5, (1 << 64) - 1))) for _ in range(count)]
    return geometries, properties, ids


@settings(max_examples=400, deadline=None)
@given(tile_features())
def test_the_numpy_encoder_writes_the_bytes_mapbox_vector_tile_writes(features):
    """Points, lines and polygons (repeated points, rings and lines that rounding empties,
    polygons whose exterior vanishes), ids absent, negative or 64-bit, and property values of
    every kind the library takes or skips (1 and 1.0 one value, True apart, NaN, bytes)."""
    geometries, properties, ids = features
    geometries = [g for g in geometries if not g.is_empty]
    properties, ids = properties[:len(geometries)], ids[:len(geometries)]
    if not geometries:
        return
    ours = mvt_encoding.encode_layer("layer", np.array(geometries, dtype=object), properties,
                                     ids, vector_tiles.EXTENT)
    theirs = mapbox_vector_tile.encode(
        [{"name": "layer", "features": [
            {"geometry": g, "properties": p, "id": i}
            for g, p, i in zip(geometries, properties, ids, strict=True)]}],
        default_options={**vector_tiles.ENCODER_OPTIONS, "check_winding_order": False})
    assert ours is not None
    assert ours == theirs


def test_what_the_numpy_encoder_does_not_write_is_left_to_the_library():
    square = shapely.box(0, 0, 10, 10)
    for geometries, properties, ids in (
            ([square, shapely.Point(1, 1)], [{}, {}], [1, 2]),  # two dimensions in one tile
            ([square], [{"n": 1 << 63}], [1]),  # beyond int64: the library raises
            ([square], [{}], [1.5]),  # a float id
            ([square], [{"s": "\ud800"}], [1])):  # not UTF-8
        assert mvt_encoding.encode_layer("layer", np.array(geometries, dtype=object),
                                         properties, ids, vector_tiles.EXTENT) is None


def test_tiles_of_every_zoom_encode_as_the_encoders_check_would(synthetic_gpkg, monkeypatch):
    """Whole tiles of the synthetic parcels, from country scale (thinned, polygons that rounding
    makes invalid) to the deepest zoom: the same bytes with and without rounding and orienting
    beforehand, and most tiles take the quicker way."""
    quick = vector_tiles._rounded_and_oriented  # noqa: SLF001
    taken, written = [], []
    numpy_encoder = mvt_encoding.encode_layer

    def recording_encoder(*args, **kwargs) -> bytes | None:
        encoded = numpy_encoder(*args, **kwargs)
        written.append(encoded is not None)
        return encoded

    monkeypatch.setattr(mvt_encoding, "encode_layer", recording_encoder)

    def recording(geometries: np.ndarray) -> np.ndarray | None:
        result = quick(geometries)
        taken.append(result is not None)
        return result

    for z in (6, 8, 10, 12, 14):
        n = 2**z  # the tile holding the grid's middle, (72.5 E, 44 N)
        y = (1 - np.arcsinh(np.tan(np.radians(44.0))) / np.pi) / 2 * n
        tile = TileBounds.checked(z, int((72.5 + 180) / 360 * n), int(y))
        monkeypatch.setattr(vector_tiles, "_rounded_and_oriented", recording)
        fast, _ = vector_tiles.render_mvt(synthetic_gpkg, "parcels", "parcels", tile)
        monkeypatch.setattr(vector_tiles, "_rounded_and_oriented", lambda g: None)
        reference, _ = vector_tiles.render_mvt(synthetic_gpkg, "parcels", "parcels", tile)
        assert fast and fast == reference, tile
    assert any(taken) and written and all(written)  # rounded beforehand: numpy writes them


def test_tiles_outside_the_layer_are_empty(synthetic_gpkg):
    data, stats = vector_tiles.render_mvt(synthetic_gpkg, "parcels", "parcels",
                                          TileBounds.checked(6, 10, 10))
    assert data == b"" and stats.candidates == 0


@pytest.mark.parametrize("z,x,y", [(-1, 0, 0), (3, 8, 0), (3, 0, 8), (40, 0, 0)])
def test_tile_indices_are_checked(z, x, y):
    with pytest.raises(tiles.TileOutOfRange):
        TileBounds.checked(z, x, y)


# --- over HTTP, on the sample catalog ---------------------------------------------------------


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    # Versioned, but a version can be taken down: five minutes, not "immutable" (issue 11).
    assert response.headers["Cache-Control"] == "public, max-age=300"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        memory = MemoryFile(response.content)
        image = memory.open()
    with memory, image:
        assert (image.width, image.height, image.count) == (256, 256, 4)
        return image.read()


def test_relief_basemap_tiles_are_shaded_and_transparent_outside(server):
    rgba = png(server.get("/tiles/elevation/1/relief/6/45/23.png"))  # Issyk-Kul and the Tian Shan
    alpha, red = rgba[3], rgba[0].astype(float)
    assert 0.2 < (alpha == 255).mean() < 0.9  # the country and, north of it, nothing
    assert red[alpha == 255].std() > 15  # relief, not a flat colour
    empty = png(server.get("/tiles/elevation/1/relief/6/10/10.png"))
    assert (empty[3] == 0).all()


def test_coverage_tiles_follow_the_legend(server, published_home):
    rgba = png(server.get("/tiles/slope/1/values/7/90/47.png"))
    with rasterio.open(published_home / "datasets/slope/1/slope.tif") as dataset:
        assert dataset.nodata is not None
    colours = {tuple(c) for c in rgba[:3, rgba[3] == 255].T.tolist()}
    legend = [c for _, c in tiles.SLOPE_STOPS]
    # Every drawn pixel lies on the ramp between two legend stops (within rounding).
    lo, hi = np.array(legend).min(axis=0) - 1, np.array(legend).max(axis=0) + 1
    assert len(colours) > 20
    assert all((np.array(c) >= lo).all() and (np.array(c) <= hi).all() for c in colours)


def test_vector_tiles_over_http_cover_every_feature(server):
    ids = set()
    for x, y in ((22, 11), (22, 12), (23, 11), (23, 12)):  # the four zoom-5 tiles over the country
        response = server.get(f"/tiles/settlements/1/5/{x}/{y}.mvt")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
        if response.content:
            layer = mapbox_vector_tile.decode(response.content)["settlements"]
            ids |= {f["properties"]["geonames_id"] for f in layer["features"]}
    items = server.get("/ogc/collections/settlements/items?f=json&limit=1000").json()
    assert ids == {f["id"] for f in items["features"]} and len(ids) == 112


@pytest.mark.parametrize("path,status", [
    ("/tiles/settlements/1/5/22/11.mvt?x=1", 400),
    ("/tiles/settlements/1/15/0/0.mvt", 404),
    ("/tiles/settlements/1/5/99/11.mvt", 404),
    ("/tiles/settlements/9/5/22/11.mvt", 404),
    ("/tiles/settlements/1/values/5/22/11.png", 404),
    ("/tiles/elevation/1/5/22/11.mvt", 404),
    ("/tiles/elevation/1/sepia/5/22/11.png", 404),
    ("/tiles/nope/1/5/22/11.mvt", 404),
    ("/tiles/..%2Fcurrent.json/1/5/22/11.mvt", 404),
    # OGC API - Tiles and the `latest` URLs (tests/test_ogc_tiles.py)
    ("/ogc/tileMatrixSets/NoSuchSet", 404),
    ("/ogc/tileMatrixSets?f=html", 400),
    ("/ogc/tileMatrixSets?x=1", 400),
    ("/ogc/collections/nope/tiles", 404),
    ("/ogc/collections/settlements/tiles/NoSuchSet", 404),
    ("/ogc/collections/settlements/tiles/WorldCRS84Quad", 404),  # vector: WebMercatorQuad only
    ("/ogc/collections/settlements/tiles/WebMercatorQuad?f=xml", 400),
    ("/ogc/collections/settlements/tiles/WebMercatorQuad/15/0/0", 404),
    ("/ogc/collections/settlements/tiles/WebMercatorQuad/5/32/0", 404),
    ("/ogc/collections/settlements/tiles/WebMercatorQuad/5/0/32", 404),
    ("/ogc/collections/settlements/tiles/WebMercatorQuad/-1/0/0", 404),
    ("/ogc/collections/settlements/tiles/WebMercatorQuad/5/11/22?f=png", 400),
    ("/ogc/collections/settlements/tiles/WebMercatorQuad/5/11/22?bbox=1,2,3,4", 400),
    ("/ogc/collections/settlements/map/tiles", 404),
    ("/ogc/collections/elevation/tiles", 404),
    ("/ogc/collections/elevation/map/tiles/WorldCRS84Quad/5/32/0", 404),
    ("/ogc/collections/elevation/map/tiles/WorldCRS84Quad/5/0/64", 404),
    ("/ogc/collections/elevation/map/tiles/WorldCRS84Quad/18/0/0", 404),
    ("/ogc/collections/elevation/styles/sepia", 404),
    ("/ogc/collections/elevation/styles/default?f=sld", 400),
    ("/ogc/TileMatrixSets", 404),  # pygeoapi's spelling, still refused (stock templates)
    ("/tiles/settlements/latest/15/0/0.mvt", 404),
    ("/tiles/settlements/latest/5/22/11.mvt?x=1", 400),
    ("/tiles/elevation/latest/sepia/5/22/11.png", 404),
    ("/tiles/nope/latest/5/22/11.mvt", 404),
    ("/tiles/elevation/latest/5/22/11.mvt", 404),
    ("/portal/value/elevation?lon=74.6&lat=abc", 400),
    ("/portal/value/elevation?lon=74.6", 400),
    ("/portal/value/elevation?lon=74.6&lat=42.5&z=1", 400),
    ("/portal/value/settlements?lon=74.6&lat=42.5", 404),
    ("/?lang=de", 400),
    ("/?zoom=3", 400),
    ("/datasets/nope", 404),
])
def test_bad_tile_and_page_requests_answer_json_errors(server, path, status):
    response = server.get(path)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["description"]


def test_point_values_of_rasters(server, published_home):
    body = server.get("/portal/value/elevation?lon=74.6&lat=42.87").json()  # Bishkek
    with rasterio.open(published_home / "datasets/elevation/1/elevation.tif") as dataset:
        expected = float(next(dataset.sample([(74.6, 42.87)]))[0])
    assert body["value"] == expected and body["unit"] == "m"
    assert server.get("/portal/value/elevation?lon=60&lat=42").json()["value"] is None
