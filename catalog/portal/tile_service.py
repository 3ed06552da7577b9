"""Answering a map tile of a published version: the one place the portal's XYZ routes (versioned
and `latest`) and the OGC API - Tiles routes (catalog/ogc_tiles) render and cache tiles.

A tile is named by its record (dataset and version), its style and its place in a tile matrix
set. WebMercator tiles go through catalog.portal.tiles (raster) and the layer's FeatureStore
(MVT); a raster tile of another grid (WorldCRS84Quad) is read onto that grid's bounds and CRS.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from catalog import settings
from catalog.core.record import Record
from catalog.core.webmercator import TileBounds, lonlat_to_mercator
from catalog.features import LiveFeatures
from catalog.portal import layers, tiles
from catalog.store import CatalogStore
from catalog.store.release_records import RecordsUnavailable
from catalog.store.tile_cache import TileCache, TileKey, max_bytes_from_environment

RASTER_STYLES = ("relief", "values")


@dataclass(frozen=True)
class GridTile:
    """A tile of a tile matrix set other than WebMercatorQuad: its bounds in the set's CRS
    (`grid`) and in longitude/latitude (`lonlat`), used to skip tiles outside a layer."""

    z: int
    x: int
    y: int
    grid: tuple[float, float, float, float]
    crs: str
    lonlat: tuple[float, float, float, float]

    def meets(self, extent: tuple[float, float, float, float]) -> bool:
        west, south, east, north = extent
        tile_west, tile_south, tile_east, tile_north = self.lonlat
        return tile_west <= east and tile_east >= west and tile_south <= north \
            and tile_north >= south


class TileService:
    """Tiles of live records, cached in the home's tile cache (catalog.store.tile_cache)."""

    def __init__(self, store: CatalogStore, features: LiveFeatures):
        self.store = store
        self.features = features
        self.cache = TileCache(store.home, max_bytes_from_environment())
        # Purges run on another node meanwhile. With the database down (the purged numbers
        # are rows there) this waits for the next start: a tile is answered only for a
        # released version anyway, and a purged one is never released again.
        with contextlib.suppress(RecordsUnavailable):
            self.cache.drop_purged(store.purged_versions)
        self._water: dict[tuple[str, int], list[BaseGeometry]] = {}

    def raster(self, record: Record, style: str, tile: TileBounds, band: int = 1) -> tiles.Answer:
        """A WebMercator PNG: the relief basemap, the classes in their colours, or the values
        (of `band`, a time series' step) in the legend's colours."""
        path = self.store.assets.gdal_path(record, record.coverage.asset)
        if style == "relief":
            water, lakes = self._lakes()
            style = f"relief+{water.id}.{water.version}" if water else style  # its own tiles
            render = lambda: tiles.render_basemap(path, tile, lakes)  # noqa: E731
        elif colours := layers.class_colours(record):
            render = lambda: tiles.render_classes(path, tile, colours)  # noqa: E731
        else:
            stops = layers.raster_stops(record)
            render = lambda: tiles.render_coverage(path, tile, stops, band)  # noqa: E731
        key = TileKey(record.id, record.version, style, tile.z, tile.x, tile.y)
        return tiles.answer_tile(self.cache, key, tile, tiles.layer_extent(record), render)

    def raster_on_grid(self, record: Record, matrix_set: str, tile: GridTile) -> tiles.Answer:
        """A PNG of the classes or values (the first step of a time series) in the legend's
        colours on another tile matrix set's grid."""
        path = self.store.assets.gdal_path(record, record.coverage.asset)
        colours = layers.class_colours(record)
        stops = layers.raster_stops(record)

        def render() -> bytes | None:
            data = tiles.read_onto_grid(path, tile.grid, tile.crs, tile.lonlat, tiles.TILE_SIZE,
                                        categorical=bool(colours))
            return tiles.classes_png(data, colours) if colours else tiles.colour_png(data, stops)

        key = TileKey(record.id, record.version, f"values@{matrix_set}", tile.z, tile.x, tile.y)
        return tiles.answer_tile(self.cache, key, tile, tiles.layer_extent(record), render)

    def _lakes(self) -> tuple[Record | None, list[BaseGeometry]]:
        """The live water layer the relief draws (config/portal.yaml basemap.water) and its
        polygons in Web Mercator metres, kept per version; (None, []) when none is live."""
        name = settings.portal_config().get("basemap", {}).get("water")
        release = self.store.current()
        version = release.datasets.get(name) if release and name else None
        if version is None:
            return None, []
        record = self.store.record(name, version)
        if (name, version) not in self._water:
            features = self.features.store_of(record)
            self._water = {(name, version): [
                shapely.transform(f.geometry, lonlat_to_mercator, interleaved=False)
                for batch in features.iterate() for f in batch
                if f.geometry is not None and f.geometry.geom_type.endswith("Polygon")]}
        return record, self._water[(name, version)]

    def vector(self, record: Record, tile: TileBounds) -> tiles.Answer:
        """An MVT whose one layer is named after the dataset."""
        feature_store = self.features.store_of(record)

        def render() -> bytes | None:
            return feature_store.tile(tile, record.id) or None

        key = TileKey(record.id, record.version, "mvt", tile.z, tile.x, tile.y)
        return tiles.answer_tile(self.cache, key, tile, tiles.layer_extent(record), render)
