"""Raster map tiles rendered from published COGs: the hillshaded basemap and coverage layers.

Tiles are XYZ in WebMercator (EPSG:3857), 256 x 256 PNG. A tile reads only the window of the COG
under it, at a decimation that lets GDAL use the COG's overviews, then `rasterio.warp.reproject`
resamples that window onto the tile grid. Published versions never change, so each tile with
something drawn is cached, keyed by dataset version and style, in the size-capped cache of
catalog.store.tile_cache; tiles outside a layer's extent are answered without rendering.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize
from rasterio.io import MemoryFile
from rasterio.warp import reproject
from rasterio.windows import Window, from_bounds
from shapely.geometry.base import BaseGeometry

from catalog.core.record import Record
from catalog.core.webmercator import (  # noqa: F401 - the tile grid, used by portal callers
    WORLD,
    TileBounds,
    TileOutOfRange,
    lonlat_to_mercator,
    mercator_to_lonlat,
)
from catalog.store.tile_cache import TileCache, TileKey

TILE_SIZE = 256
MAX_ZOOM = 18
MERCATOR = "EPSG:3857"
EXTENT_PAD = 1e-6  # degrees

# Elevation tints (metres -> RGB): lowland greens, steppe yellows, mountain browns, snow.
WATER_RGB = (156, 195, 228)  # the portal's water colour (static/portal/map.js WATER)
TERRAIN_STOPS = [(400, (98, 145, 88)), (900, (150, 180, 104)), (1500, (214, 205, 140)),
                 (2200, (196, 163, 112)), (3000, (160, 118, 84)), (3800, (150, 130, 120)),
                 (4600, (214, 210, 206)), (6000, (252, 252, 252))]
SLOPE_STOPS = [(0, (255, 255, 212)), (5, (254, 227, 145)), (10, (254, 196, 79)),
               (20, (254, 153, 41)), (30, (217, 95, 14)), (45, (153, 52, 4))]
VIRIDIS_STOPS = [(0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)),
                 (0.75, (94, 201, 98)), (1.0, (253, 231, 37))]


# --- reading a COG onto the tile grid ---------------------------------------------------------


def read_tile(path: str | Path, tile: TileBounds, buffer: int = 0,
              categorical: bool = False, band: int = 1) -> np.ndarray | None:
    """Band 1 resampled onto the tile grid (plus `buffer` pixels each side), NaN for nodata.

    None when the COG does not reach the tile. `band` picks a step of a time series (one band
    per item, catalog.convert.raster.combine_items). Categorical bands (class codes) are resampled
    by nearest neighbour and decimated by mode, never averaged into codes that mean nothing.
    """
    minx, miny, maxx, maxy = tile.mercator
    pixel = (maxx - minx) / TILE_SIZE
    west, south = mercator_to_lonlat(minx - buffer * pixel, miny - buffer * pixel)
    east, north = mercator_to_lonlat(maxx + buffer * pixel, maxy + buffer * pixel)
    grid = (minx - buffer * pixel, miny - buffer * pixel, maxx + buffer * pixel,
            maxy + buffer * pixel)
    return read_onto_grid(path, grid, MERCATOR, (west, south, east, north),
                          TILE_SIZE + 2 * buffer, categorical, band)


def read_onto_grid(path: str | Path, grid: tuple[float, float, float, float], crs: str,
                   lonlat: tuple[float, float, float, float], size: int,
                   categorical: bool = False, band: int = 1) -> np.ndarray | None:
    """A band resampled onto a square `size` x `size` grid covering `grid` (bounds in `crs`,
    `lonlat` the same area in longitude/latitude), NaN for nodata; None when the COG does not
    reach it. Any tile matrix set's tile reads through here (catalog/ogc_tiles); class codes by
    nearest neighbour and mode (see read_tile)."""
    minx, miny, maxx, maxy = grid
    dst_transform = Affine((maxx - minx) / size, 0, minx, 0, -(maxy - miny) / size, maxy)
    with rasterio.open(path) as dataset:
        source = _source_window(dataset, lonlat, size,
                                Resampling.mode if categorical else Resampling.average, band)
        if source is None:
            return None
        data, src_transform = source
        destination = np.full((size, size), np.nan, dtype="float32")
        reproject(data, destination, src_transform=src_transform, src_crs=dataset.crs,
                  src_nodata=dataset.nodata, dst_transform=dst_transform, dst_crs=crs,
                  dst_nodata=np.nan,
                  resampling=Resampling.nearest if categorical else Resampling.bilinear)
    return destination


def _source_window(dataset, bounds: tuple, size: int, decimation: Resampling,
                   band: int = 1) -> tuple[np.ndarray, Affine] | None:
    """The COG window under `bounds` (2 pixels margin), decimated to about 2x the tile size."""
    window = from_bounds(*bounds, transform=dataset.transform)
    col0, row0 = math.floor(window.col_off) - 2, math.floor(window.row_off) - 2
    col1 = math.ceil(window.col_off + window.width) + 2
    row1 = math.ceil(window.row_off + window.height) + 2
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, dataset.width), min(row1, dataset.height)
    if col1 <= col0 or row1 <= row0:
        return None
    window = Window(col0, row0, col1 - col0, row1 - row0)
    scale = max(window.width / (2 * size), window.height / (2 * size), 1.0)
    shape = (max(1, round(window.height / scale)), max(1, round(window.width / scale)))
    # A decimated read lets GDAL pick the COG overview; 'average' and 'mode' skip nodata.
    data = dataset.read(band, window=window, out_shape=shape, resampling=decimation)
    transform = dataset.window_transform(window) * Affine.scale(
        window.width / shape[1], window.height / shape[0])
    return data, transform


# --- styling ----------------------------------------------------------------------------------


def ramp(values: np.ndarray, stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """RGB (h, w, 3) uint8 by linear interpolation between (value, colour) stops."""
    levels = np.array([s[0] for s in stops], dtype="float64")
    colours = np.array([s[1] for s in stops], dtype="float64")
    filled = np.nan_to_num(values, nan=levels[0])
    channels = [np.interp(filled, levels, colours[:, c]) for c in range(3)]
    return np.dstack(channels).astype("uint8")


def hillshade(dem: np.ndarray, tile: TileBounds, azimuth: float = 315.0,
              altitude: float = 45.0) -> np.ndarray:
    """Shading in 0..1 for a DEM with a 1-pixel buffer on the tile grid; returns the inner tile.

    Mercator pixels are cos(latitude) times smaller on the ground; low zooms are exaggerated
    so the mountains still read at country scale.
    """
    minx, miny, maxx, maxy = tile.mercator
    latitude = math.radians(mercator_to_lonlat(0, (miny + maxy) / 2)[1])
    ground = (maxx - minx) / TILE_SIZE * math.cos(latitude)
    exaggeration = max(1.0, 2.0 ** ((9 - tile.z) / 2.5))
    filled = np.where(np.isnan(dem), np.nanmin(dem) if np.isfinite(dem).any() else 0, dem)
    dzdy, dzdx = np.gradient(filled * exaggeration, ground)
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(-dzdx, dzdy)
    zenith, az = math.radians(90 - altitude), math.radians(360 - azimuth + 90)
    shade = (math.cos(zenith) * np.cos(slope)
             + math.sin(zenith) * np.sin(slope) * np.cos(az - aspect))
    return np.clip(shade, 0, 1)[1:-1, 1:-1]


def basemap_rgba(dem: np.ndarray, tile: TileBounds) -> np.ndarray:
    """Elevation tint multiplied by a soft hillshade; transparent outside the data."""
    inner = dem[1:-1, 1:-1]
    shade = hillshade(dem, tile)
    tint = ramp(inner, TERRAIN_STOPS).astype("float32")
    lit = tint * (0.45 + 0.65 * shade)[..., None]
    alpha = np.where(np.isnan(inner), 0, 255)
    return np.dstack([np.clip(lit, 0, 255), alpha]).astype("uint8")


def classes_rgba(data: np.ndarray, colours: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """Each class code in its colour; nodata and codes outside the table transparent."""
    rgba = np.zeros(data.shape + (4,), dtype="uint8")
    for code, colour in colours.items():
        rgba[data == code] = (*colour, 255)
    return rgba


def coverage_rgba(data: np.ndarray, stops: list, opacity: int = 255) -> np.ndarray:
    alpha = np.where(np.isnan(data), 0, opacity)
    return np.dstack([ramp(data, stops), alpha]).astype("uint8")


def stretched_stops(minimum: float, maximum: float) -> list:
    """The default ramp spread over a band's value range."""
    span = (maximum - minimum) or 1.0
    return [(minimum + f * span, colour) for f, colour in VIRIDIS_STOPS]


def encode_png(rgba: np.ndarray) -> bytes:
    bands = np.moveaxis(rgba, -1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile() as memory:
            with memory.open(driver="PNG", width=bands.shape[2], height=bands.shape[1],
                             count=bands.shape[0], dtype="uint8") as png:
                png.write(bands)
            return memory.read()


def empty_png() -> bytes:
    return _EMPTY_PNG


_EMPTY_PNG = encode_png(np.zeros((TILE_SIZE, TILE_SIZE, 4), dtype="uint8"))


# --- answering a tile: outside the layer, cached, or rendered ---------------------------------


@dataclass(frozen=True)
class Answer:
    data: bytes | None  # None: nothing to draw (the caller sends its format's empty tile)
    how: str  # one of ANSWERS, for the Server-Timing header


ANSWERS = {
    "outside": "outside the layer's extent: not rendered, not cached",
    "cached": "from the tile cache",
    "rendered": "rendered and cached",
    "uncached": "rendered, not cached (cache off, tile too large, or no room freed)",
    "empty": "rendered, nothing drawn: not cached",
}


def layer_extent(record: Record) -> tuple[float, float, float, float]:
    """A published layer's extent in WGS 84 longitude/latitude (from its record)."""
    west, south, east, north = record.bbox
    # Records round coordinates to 7 decimals: widen by more than that, never clip an edge.
    return west - EXTENT_PAD, south - EXTENT_PAD, east + EXTENT_PAD, north + EXTENT_PAD


class PlacedTile(Protocol):
    """A tile of any tile matrix set that can tell whether it meets a lon/lat extent."""

    def meets(self, extent: tuple[float, float, float, float]) -> bool: ...


def answer_tile(cache: TileCache, key: TileKey, tile: PlacedTile,
                extent: tuple[float, float, float, float],
                render: Callable[[], bytes | None]) -> Answer:
    """A tile outside the layer's extent is answered without rendering; only tiles with
    something drawn are cached (anonymous requests for empty tiles must not fill the disk)."""
    if not tile.meets(extent):
        return Answer(None, "outside")
    data = cache.get(key)
    if data is not None:
        return Answer(data, "cached")
    data = render()
    if not data:
        return Answer(None, "empty")
    return Answer(data, "rendered" if cache.put(key, data) else "uncached")


# --- the tiles the portal asks for -------------------------------------------------------------


def render_basemap(dem_path: str | Path, tile: TileBounds,
                   water: Sequence[BaseGeometry] = ()) -> bytes | None:
    """The relief tile as PNG, lakes (`water`, polygons in Web Mercator metres) in the water
    colour: a DEM gives a lake its flat surface, which the tint would draw as low land. None
    where the DEM has no data under the tile."""
    dem = read_tile(dem_path, tile, buffer=1)
    if dem is None or np.isnan(dem[1:-1, 1:-1]).all():
        return None
    rgba = basemap_rgba(dem, tile)
    rgba[water_mask(water, tile)] = (*WATER_RGB, 255)
    return encode_png(rgba)


def water_mask(water: Sequence[BaseGeometry], tile: TileBounds) -> np.ndarray:
    """True for the tile's pixels whose centre lies in one of the polygons (Web Mercator)."""
    outline = shapely.box(*tile.mercator)
    shapes = [polygon for polygon in water if polygon.intersects(outline)]
    if not shapes:
        return np.zeros((TILE_SIZE, TILE_SIZE), dtype=bool)
    minx, miny, maxx, maxy = tile.mercator
    grid = Affine((maxx - minx) / TILE_SIZE, 0, minx, 0, -(maxy - miny) / TILE_SIZE, maxy)
    return rasterize(shapes, out_shape=(TILE_SIZE, TILE_SIZE), transform=grid, fill=0,
                     default_value=1, dtype="uint8").astype(bool)


def render_coverage(path: str | Path, tile: TileBounds, stops: list, band: int = 1) -> bytes | None:
    """The raster in its legend's colours as PNG; None where it has no data under the tile."""
    return colour_png(read_tile(path, tile, band=band), stops)


def colour_png(data: np.ndarray | None, stops: list) -> bytes | None:
    """Values on a tile grid in the legend's colours as PNG; None where nothing is drawn."""
    if data is None or np.isnan(data).all():
        return None
    return encode_png(coverage_rgba(data, stops))


def render_classes(path: str | Path, tile: TileBounds,
                   colours: dict[int, tuple[int, int, int]]) -> bytes | None:
    """A class raster in its classes' colours as PNG; None where it has no data under the tile."""
    return classes_png(read_tile(path, tile, categorical=True), colours)


def classes_png(data: np.ndarray | None, colours: dict[int, tuple[int, int, int]]) -> bytes | None:
    """Class codes on a tile grid in their classes' colours as PNG; None where nothing is drawn."""
    if data is None or np.isnan(data).all():
        return None
    return encode_png(classes_rgba(data, colours))
