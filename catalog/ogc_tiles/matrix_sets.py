"""The tile matrix sets tiles are offered in (OGC Two Dimensional Tile Matrix Set 2.0), from
morecantile's registry: WebMercatorQuad for vector and map tiles, WorldCRS84Quad for map tiles.

A tile is addressed the OGC way, {tileMatrix}/{tileRow}/{tileCol}; `place` checks it against the
set and the zooms served and gives what the renderers need (catalog.portal.tile_service).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import morecantile

from catalog.core.webmercator import TileBounds, TileOutOfRange
from catalog.portal.tile_service import GridTile

WEB_MERCATOR = "WebMercatorQuad"
WORLD_CRS84 = "WorldCRS84Quad"
# The deepest tile matrix served in each set. WorldCRS84Quad level 17 has about the pixel size
# of WebMercatorQuad level 18 at Kyrgyzstan's latitudes (the raster tiler's deepest).
MAX_ZOOM = {WEB_MERCATOR: 18, WORLD_CRS84: 17}
VECTOR_SETS = (WEB_MERCATOR,)  # the MVT encoder draws on the WebMercator grid only
MAP_SETS = (WEB_MERCATOR, WORLD_CRS84)


class UnknownMatrixSet(LookupError):
    """A tile matrix set id this server does not offer."""


def matrix_set(matrix_set_id: str) -> morecantile.TileMatrixSet:
    if matrix_set_id not in MAX_ZOOM:
        raise UnknownMatrixSet(f"no tile matrix set {matrix_set_id!r}; offered: "
                               f"{sorted(MAX_ZOOM)}")
    return morecantile.tms.get(matrix_set_id)


def definition(matrix_set_id: str) -> dict:
    """The tile matrix set as TMS 2.0 JSON, its levels cut at the deepest one served."""
    document = matrix_set(matrix_set_id).model_dump(mode="json", exclude_none=True)
    document["tileMatrices"] = document["tileMatrices"][:MAX_ZOOM[matrix_set_id] + 1]
    return document


@dataclass(frozen=True)
class Limits:
    """The tiles of one tile matrix that meet a layer's extent (TMS 2.0 TileMatrixSetLimits)."""

    tile_matrix: int
    min_row: int
    max_row: int
    min_col: int
    max_col: int

    def contain(self, row: int, col: int) -> bool:
        return self.min_row <= row <= self.max_row and self.min_col <= col <= self.max_col

    def as_json(self) -> dict:
        return {"tileMatrix": str(self.tile_matrix), "minTileRow": self.min_row,
                "maxTileRow": self.max_row, "minTileCol": self.min_col,
                "maxTileCol": self.max_col}


def limits(matrix_set_id: str, bbox: tuple[float, float, float, float],
           max_zoom: int) -> list[Limits]:
    """Per tile matrix 0..max_zoom, the rows and columns of tiles meeting `bbox` (lon/lat)."""
    return [level_limits(matrix_set_id, bbox, zoom) for zoom in range(max_zoom + 1)]


@functools.lru_cache(maxsize=4096)
def level_limits(matrix_set_id: str, bbox: tuple[float, float, float, float],
                 zoom: int) -> Limits:
    """Kept per layer extent and zoom: every tile request checks them, and a matrix set from
    morecantile is a deep copy that builds its PROJ transformers anew (a third of a vector
    tile's time on PostGIS)."""
    tms = matrix_set(matrix_set_id)
    west, south, east, north = bbox
    top_left, bottom_right = tms.tile(west, north, zoom), tms.tile(east, south, zoom)
    return Limits(zoom, top_left.y, bottom_right.y, top_left.x, bottom_right.x)


def place(matrix_set_id: str, z: int, row: int, col: int,
          max_zoom: int) -> TileBounds | GridTile:
    """The tile at {z}/{row}/{col}: a TileBounds on WebMercatorQuad, else a GridTile.
    Raises TileOutOfRange outside the set or beyond `max_zoom`."""
    if matrix_set_id == WEB_MERCATOR:
        return TileBounds.checked(z, col, row, max_zoom)
    tms = matrix_set(matrix_set_id)
    if not 0 <= z <= max_zoom:
        raise TileOutOfRange(f"tile matrix {z} is outside 0..{max_zoom}")
    matrix = tms.matrix(z)
    if not (0 <= row < matrix.matrixHeight and 0 <= col < matrix.matrixWidth):
        raise TileOutOfRange(f"tile row {row}, column {col} does not exist in tile matrix {z} "
                             f"({matrix.matrixHeight} rows, {matrix.matrixWidth} columns)")
    grid = tuple(tms.xy_bounds(col, row, z))
    lonlat = tuple(tms.bounds(col, row, z))
    return GridTile(z, col, row, grid, tms.crs.srs, lonlat)
