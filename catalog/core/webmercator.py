"""The WebMercator (EPSG:3857) tile grid of XYZ map tiles: tile bounds, and conversions
between longitude/latitude and WebMercator metres.

Both kinds of map tile use it: raster tiles (catalog/portal/tiles.py) and the vector tiles a
FeatureStore renders (catalog/features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_ZOOM = 18  # the deepest zoom level of the grid that tiles are served at
WORLD = 20037508.342789244  # half the WebMercator world width, metres
# Beyond its edges a tile draws a 64/4096 buffer (vector tiles) or one pixel (relief): a
# feature or pixel that close to a tile still shows in it.
EDGE_MARGIN = 1 / 64


class TileOutOfRange(ValueError):
    """z/x/y outside the tile pyramid."""


@dataclass(frozen=True)
class TileBounds:
    z: int
    x: int
    y: int

    @classmethod
    def checked(cls, z: int, x: int, y: int, max_zoom: int = MAX_ZOOM) -> TileBounds:
        if not 0 <= z <= max_zoom:
            raise TileOutOfRange(f"zoom {z} is outside 0..{max_zoom}")
        if not (0 <= x < 2**z and 0 <= y < 2**z):
            raise TileOutOfRange(f"tile {x}/{y} does not exist at zoom {z}")
        return cls(z, x, y)

    @property
    def mercator(self) -> tuple[float, float, float, float]:
        size = 2 * WORLD / 2**self.z
        minx = -WORLD + self.x * size
        maxy = WORLD - self.y * size
        return minx, maxy - size, minx + size, maxy

    def meets(self, extent: tuple[float, float, float, float],
              margin: float = EDGE_MARGIN) -> bool:
        """Whether the tile, widened by `margin` of its width, meets a lon/lat extent."""
        west, south, east, north = extent
        if west > east:  # crosses the antimeridian: draw rather than guess
            return True
        minx, miny, maxx, maxy = self.mercator
        pad = (maxx - minx) * margin
        tile_west, tile_south = mercator_to_lonlat(minx - pad, max(miny - pad, -WORLD))
        tile_east, tile_north = mercator_to_lonlat(maxx + pad, min(maxy + pad, WORLD))
        return tile_west <= east and tile_east >= west and tile_south <= north \
            and tile_north >= south

    @property
    def lonlat(self) -> tuple[float, float, float, float]:
        minx, miny, maxx, maxy = self.mercator
        return (*mercator_to_lonlat(minx, miny), *mercator_to_lonlat(maxx, maxy))


def mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    lon = x / WORLD * 180.0
    lat = math.degrees(2 * math.atan(math.exp(y / WORLD * math.pi)) - math.pi / 2)
    return lon, lat


def lonlat_to_mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WebMercator metres of longitudes and latitudes, the same bits on every machine: the
    latitude's log and tan are the C library's, value by value. numpy's vectorised ones take
    other code on CPUs with AVX-512 and differ there in the last bit, which moved a vector
    tile's coordinates (and its ETag) from one machine to another (tests/golden)."""
    lat = np.clip(np.asarray(lat, dtype=np.float64), -85.05112878, 85.05112878)
    x = np.asarray(lon) * WORLD / 180.0
    stretched = np.fromiter((_log_tan(value) for value in lat.ravel().tolist()),
                            dtype=np.float64, count=lat.size).reshape(lat.shape)
    return x, stretched * WORLD / np.pi


def _log_tan(latitude: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(latitude) / 2))
