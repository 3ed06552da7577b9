"""The published layers the processes compute on, read once per immutable dataset version.

Published versions never change (catalog/store), so everything read or derived from a file is
cached by its path: a publish makes new paths, and the old entries age out of the LRU caches.

Distances on the grid are measured in an equidistant conic projection fitted to Kyrgyzstan
(standard parallels 40 and 42.5 N, central meridian 74.75 E, WGS84): inside the country they
are within 0.05 % of geodesic distances. Distances reported for a place are geodesic
(pyproj.Geod, WGS84). Cell areas are geodesic (each row of cells is a band of the ellipsoid).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer
from rasterio import features
from shapely.geometry.base import BaseGeometry

from catalog.features import GeoPackageFeatureStore

GEOD = Geod(ellps="WGS84")
GRID_PROJECTION = CRS.from_proj4(
    "+proj=eqdc +lat_1=40 +lat_2=42.5 +lon_0=74.75 +datum=WGS84 +units=m +no_defs")
TO_GRID = Transformer.from_crs("EPSG:4326", GRID_PROJECTION, always_xy=True)
FROM_GRID = Transformer.from_crs(GRID_PROJECTION, "EPSG:4326", always_xy=True)
WGS84 = CRS.from_epsg(4326)
# Rasters up to this many cells are kept in memory whole (the sample DEM has 2.7 million).
CACHED_CELLS = 30_000_000
COVERAGE_CODES = {"none": 0, "3G": 1, "4G": 2}  # 4G cells also have 3G (see mobile-coverage)

_load_lock = threading.RLock()


def cached(maxsize: int):
    """lru_cache whose misses are computed one at a time, so a burst of first requests
    loads a layer once instead of once per thread."""
    def decorate(function):
        memo = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def wrapper(*args):
            with _load_lock:
                return memo(*args)
        wrapper.cache_clear = memo.cache_clear
        return wrapper
    return decorate


# -- vectors -------------------------------------------------------------------------------

def read_features(path: str) -> list[tuple[dict, BaseGeometry | None]]:
    """(properties, geometry) of every feature in a published single-layer GeoPackage, read
    through its FeatureStore (catalog.features)."""
    return [(feature.properties, feature.geometry)
            for batch in GeoPackageFeatureStore(path).iterate() for feature in batch]


@dataclass(frozen=True)
class Places:
    """Point features with their coordinates in degrees and in the grid projection."""
    properties: list[dict]
    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.properties)

    def subset(self, keep: np.ndarray) -> Places:
        return Places([p for p, k in zip(self.properties, keep, strict=True) if k],
                      self.lon[keep], self.lat[keep], self.x[keep], self.y[keep])


@cached(maxsize=8)
def places(path: str) -> Places:
    rows = [(props, geom) for props, geom in read_features(path) if geom is not None]
    lon = np.array([g.x for _, g in rows], dtype=np.float64)
    lat = np.array([g.y for _, g in rows], dtype=np.float64)
    x, y = TO_GRID.transform(lon, lat)
    return Places([p for p, _ in rows], lon, lat, np.asarray(x), np.asarray(y))


@cached(maxsize=4)
def boundary(path: str) -> BaseGeometry:
    """The country: the union of the boundary layer's polygons, prepared for predicates."""
    geometry = shapely.union_all([g for _, g in read_features(path) if g is not None])
    shapely.prepare(geometry)
    return geometry


@cached(maxsize=4)
def coverage_polygons(path: str) -> dict[str, BaseGeometry]:
    """{'4G': ..., '3G': ...} from mobile-coverage's coverage_class (3G means 3G only)."""
    parts: dict[str, list] = {"4G": [], "3G": []}
    for props, geom in read_features(path):
        if geom is not None and props.get("coverage_class") in parts:
            parts[props["coverage_class"]].append(geom)
    result = {}
    for name, geoms in parts.items():
        result[name] = shapely.union_all(geoms) if geoms else shapely.Polygon()
        shapely.prepare(result[name])
    return result


def coverage_class_at(polygons: dict[str, BaseGeometry], lon: np.ndarray,
                      lat: np.ndarray) -> np.ndarray:
    """Coverage class ('4G', '3G' or 'none') at each point; 4G wins where both claim it."""
    classes = np.full(lon.shape, "none", dtype=object)
    classes[shapely.intersects_xy(polygons["3G"], lon, lat)] = "3G"
    classes[shapely.intersects_xy(polygons["4G"], lon, lat)] = "4G"
    return classes


@cached(maxsize=4)
def water(lakes_path: str, rivers_path: str | None) -> BaseGeometry:
    """The lakes and (when a rivers layer is live) the rivers, in the grid projection (metres),
    as one prepared geometry: site screening measures distances to water from it."""
    parts = [g for _, g in read_features(lakes_path) if g is not None]
    if rivers_path:
        parts += [g for _, g in read_features(rivers_path) if g is not None]
    geometry = to_grid_projection(shapely.union_all(parts)) if parts else shapely.Polygon()
    shapely.prepare(geometry)
    return geometry


@cached(maxsize=4)
def lake_cells(lakes_path: str, elevation_path: str) -> np.ndarray:
    """True for the cells of the elevation grid whose centre lies in a lake (GDAL's rule)."""
    info = raster_info(elevation_path)
    lakes = [g for _, g in read_features(lakes_path) if g is not None and not g.is_empty]
    if not lakes:
        cells = np.zeros((info.height, info.width), dtype=bool)
    else:
        cells = features.geometry_mask(lakes, (info.height, info.width), info.transform,
                                       invert=True)
    cells.flags.writeable = False
    return cells


# -- rasters -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RasterInfo:
    path: str
    width: int
    height: int
    count: int
    transform: Affine
    crs: CRS
    nodata: float | None
    dtype: str


@cached(maxsize=16)
def raster_info(path: str) -> RasterInfo:
    with rasterio.open(path) as dataset:
        crs = CRS.from_user_input(dataset.crs.to_wkt()) if dataset.crs else WGS84
        return RasterInfo(path, dataset.width, dataset.height, dataset.count, dataset.transform,
                          crs, dataset.nodata, dataset.dtypes[0])


@cached(maxsize=6)
def _whole_band(path: str, band: int) -> np.ndarray:
    with rasterio.open(path) as dataset:
        values = dataset.read(band)
    values.flags.writeable = False  # shared between threads
    return values


def read_band(info: RasterInfo, band: int, window: Window) -> np.ndarray:
    """The cells of one band inside a window (a read-only view when the band is cached)."""
    if info.width * info.height <= CACHED_CELLS:
        return _whole_band(info.path, band)[window.slices]
    with rasterio.open(info.path) as dataset:
        return dataset.read(band, window=rasterio.windows.Window(
            window.col0, window.row0, window.width, window.height))


def valid_cells(values: np.ndarray, nodata: float | None) -> np.ndarray:
    valid = np.ones(values.shape, dtype=bool) if nodata is None else values != nodata
    if values.dtype.kind == "f":
        valid &= np.isfinite(values)
    return valid


@dataclass(frozen=True)
class Window:
    """Rows row0:row1 and columns col0:col1 of a grid."""
    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def height(self) -> int:
        return self.row1 - self.row0

    @property
    def width(self) -> int:
        return self.col1 - self.col0

    @property
    def cells(self) -> int:
        return self.height * self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    def transform(self, grid: Affine) -> Affine:
        return grid @ Affine.translation(self.col0, self.row0)


def window_of(bounds: tuple[float, float, float, float], grid: Affine, width: int,
              height: int) -> Window:
    """The cells whose centres can fall inside bounds (north-up grids), clipped to the grid."""
    west, south, east, north = bounds
    inverse = ~grid
    cols, rows = zip(*(inverse @ (x, y) for x, y in ((west, north), (east, south))),
                     strict=True)
    col0 = max(int(np.floor(min(cols) - 0.5)), 0)
    col1 = min(int(np.ceil(max(cols) + 0.5)), width)
    row0 = max(int(np.floor(min(rows) - 0.5)), 0)
    row1 = min(int(np.ceil(max(rows) + 0.5)), height)
    return Window(row0, max(row1, row0), col0, max(col1, col0))


def cells_inside(geometry: BaseGeometry, window: Window, grid: Affine) -> np.ndarray:
    """True for the cells of window whose centre lies inside geometry (GDAL's rule)."""
    if window.cells == 0:
        return np.zeros((window.height, window.width), dtype=bool)
    return features.geometry_mask([geometry], (window.height, window.width),
                                  window.transform(grid), invert=True)


@cached(maxsize=8)
def row_cell_areas_km2(grid: Affine, height: int) -> np.ndarray:
    """Geodesic area of one cell in each row of a north-up geographic grid, in km2."""
    west, east = grid.c, grid.c + grid.a
    areas = np.empty(height)
    for row in range(height):
        north = grid.f + grid.e * row
        south = north + grid.e
        area, _ = GEOD.polygon_area_perimeter([west, east, east, west],
                                              [south, south, north, north])
        areas[row] = abs(area) / 1e6
    areas.flags.writeable = False
    return areas


@cached(maxsize=4)
def projected_centres(grid: Affine, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a geographic grid in the grid projection (metres, float32)."""
    lon = grid.c + grid.a * (np.arange(width) + 0.5)
    x = np.empty((height, width), dtype=np.float32)
    y = np.empty((height, width), dtype=np.float32)
    step = 64  # rows at a time: no full-size float64 temporaries
    for row in range(0, height, step):
        rows = np.arange(row, min(row + step, height))
        lons, lats = np.meshgrid(lon, grid.f + grid.e * (rows + 0.5))
        x[rows], y[rows] = TO_GRID.transform(lons, lats)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def cell_centres(window: Window, grid: Affine) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes of the window's columns and latitudes of its rows (cell centres)."""
    lon = grid.c + grid.a * (np.arange(window.col0, window.col1) + 0.5)
    lat = grid.f + grid.e * (np.arange(window.row0, window.row1) + 0.5)
    return lon, lat


# -- the terrain grid site screening and coverage statistics use ---------------------------

@dataclass(frozen=True)
class Terrain:
    """Elevation, slope and coverage class on the DEM's cells."""
    elevation: np.ndarray
    slope: np.ndarray
    coverage: np.ndarray  # COVERAGE_CODES
    valid: np.ndarray  # elevation and slope both have data
    grid: Affine
    width: int
    height: int


@cached(maxsize=2)
def terrain(elevation_path: str, slope_path: str, coverage_path: str) -> Terrain:
    elevation_info, slope_info = raster_info(elevation_path), raster_info(slope_path)
    same_grid = (elevation_info.transform.almost_equals(slope_info.transform)
                 and (elevation_info.width, elevation_info.height)
                 == (slope_info.width, slope_info.height))
    if not same_grid or not elevation_info.crs.equals(WGS84):
        raise RuntimeError("elevation and slope must share one geographic (EPSG:4326) grid")
    elevation = _whole_band(elevation_path, 1)
    slope = _whole_band(slope_path, 1)
    valid = valid_cells(elevation, elevation_info.nodata) & valid_cells(slope, slope_info.nodata)
    shape = (elevation_info.height, elevation_info.width)
    polygons = coverage_polygons(coverage_path)
    coverage = features.rasterize(
        [(g, COVERAGE_CODES[name]) for name, g in (("3G", polygons["3G"]),
                                                    ("4G", polygons["4G"])) if not g.is_empty],
        out_shape=shape, transform=elevation_info.transform, dtype="uint8", fill=0)
    for array in (valid, coverage):
        array.flags.writeable = False
    return Terrain(elevation, slope, coverage, valid, elevation_info.transform,
                   elevation_info.width, elevation_info.height)


def geodesic_area_km2(geometry: BaseGeometry) -> float:
    if geometry.is_empty:
        return 0.0
    area, _ = GEOD.geometry_area_perimeter(geometry)
    return abs(area) / 1e6


def to_grid_projection(geometry: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geometry, lambda xy: np.column_stack(TO_GRID.transform(*xy.T)))


def from_grid_projection(geometry: BaseGeometry, max_segment_m: float = 1000.0) -> BaseGeometry:
    """Back to degrees, densified first: straight projected edges are curves in degrees."""
    dense = shapely.segmentize(geometry, max_segment_m)
    return shapely.transform(dense, lambda xy: np.column_stack(FROM_GRID.transform(*xy.T)))
