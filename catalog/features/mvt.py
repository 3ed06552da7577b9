"""Mapbox Vector Tiles (MVT 2.1) from a published GeoPackage, through its R-tree: the `tile`
of the GeoPackage FeatureStore (catalog/features/geopackage.py).

A tile selects features by the R-tree index of the GeoPackage (read with plain SQLite, through
the GeoPackage library, catalog.gpkg), projects them to WebMercator tile coordinates, clips
them to the tile plus a buffer, simplifies those with more than a quadrilateral's points to a
fraction of a screen pixel below the source's maximum zoom, and encodes them: with numpy
(catalog/features/mvt_encoding.py, the bytes `mapbox-vector-tile` writes), or with
`mapbox-vector-tile` itself for a tile its winding-order check must see.

A tile never carries more than `FEATURE_CAP` features: where more fall in it (a million parcels
seen at country scale), an evenly spread, deterministic subset is drawn (a hash of the feature id
modulo the thinning factor), so the map shows the layer's density without shipping all of it.
Zooming in reaches tiles under the cap, where every feature is present.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid

from catalog.core.sql import quote_ident
from catalog.core.webmercator import WORLD, TileBounds, lonlat_to_mercator, mercator_to_lonlat
from catalog.features import mvt_encoding
from catalog.features.store import FeatureStoreError
from catalog.gpkg import connection, decode_many, file_version, table_meta

EXTENT = 4096  # tile coordinate units per tile side
BUFFER = 64  # units drawn beyond each edge, so strokes and points do not break at tile seams
FEATURE_CAP = 4000  # features per tile at most
MAX_ZOOM = 14  # the deepest tiles served; map clients overzoom beyond it
SIMPLIFY = 4.0  # units (a quarter of a 256-pixel screen pixel); none at MAX_ZOOM
# Geometries of at most this many coordinates are not simplified: a quadrilateral's ring (five
# with its closing point) or anything simpler has one vertex at most to lose, and simplifying
# costs more than that vertex saves (most of a PostGIS tile's time for a layer of parcels).
SIMPLIFIED_ABOVE = 5
WGS84_SRS_IDS = {4326}
HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: spreads consecutive ids
POLYGON_TYPE_IDS = (3, 6)  # shapely's type ids of Polygon and MultiPolygon
ENCODER_OPTIONS = {"extents": EXTENT, "y_coord_down": True,
                   "on_invalid_geometry": on_invalid_geometry_make_valid}


class UnsupportedLayer(FeatureStoreError):
    """The GeoPackage cannot be tiled (no R-tree, or not stored in WGS 84)."""


@dataclass(frozen=True)
class TileStats:
    candidates: int  # features whose envelope meets the buffered tile
    thinning: int  # 1 when every candidate is drawn
    encoded: int


def render_mvt(path: Path, table: str, layer: str, tile: TileBounds,
               cap: int = FEATURE_CAP) -> tuple[bytes, TileStats]:
    """The MVT of one tile of a GeoPackage table, and what went into it."""
    version = file_version(str(path))
    meta = table_meta(str(path), version, table)
    if meta.schema.rtree is None:
        raise UnsupportedLayer(f"{path.name}: no R-tree index to tile from")
    if meta.srs_id not in WGS84_SRS_IDS:
        raise UnsupportedLayer(f"{path.name}: stored in srs {meta.srs_id}, expected WGS 84")
    conn = connection(str(path), version)
    envelope = buffered_lonlat(tile)
    candidates = _count(conn, meta.schema.rtree, envelope)
    thinning = max(1, math.ceil(candidates / cap))
    rows = _rows(conn, meta, envelope, thinning)
    features = _features(rows, meta.columns, tile)
    if not features.ids:
        return b"", TileStats(candidates, thinning, 0)
    encoded = mvt_encoding.encode_layer(layer, features.geometries, features.properties,
                                        features.ids, EXTENT) if features.oriented else None
    if encoded is None:  # polygons left to the winding-order check, or what only it writes
        encoded = mapbox_vector_tile.encode(
            [{"name": layer, "features": features.for_the_library()}],
            default_options={**ENCODER_OPTIONS, "check_winding_order": not features.oriented},
        )
    return encoded, TileStats(candidates, thinning, len(features.ids))


def buffered_lonlat(tile: TileBounds) -> tuple[float, float, float, float]:
    """The tile plus its drawing buffer, in longitude/latitude (west, south, east, north)."""
    minx, miny, maxx, maxy = tile.mercator
    pad = (maxx - minx) * BUFFER / EXTENT
    west, south = mercator_to_lonlat(minx - pad, max(miny - pad, -WORLD))
    east, north = mercator_to_lonlat(maxx + pad, min(maxy + pad, WORLD))
    return west, south, east, north


def _count(conn, rtree: str, envelope: tuple) -> int:
    west, south, east, north = envelope
    sql = (f"SELECT COUNT(*) FROM {quote_ident(rtree)} "  # noqa: S608 - identifier from metadata
           "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?")
    return conn.execute(sql, (east, west, north, south)).fetchone()[0]


def _rows(conn, meta, envelope: tuple, thinning: int) -> list[tuple]:
    schema = meta.schema
    west, south, east, north = envelope
    columns = ", ".join(f"t.{quote_ident(c)}" for c in meta.columns)
    sql = (
        f"SELECT t.{quote_ident(schema.pk)}, t.{quote_ident(schema.geom)}"  # noqa: S608 - identifiers from metadata
        f"{', ' + columns if columns else ''} "
        f"FROM {quote_ident(schema.rtree)} AS r "
        f"JOIN {quote_ident(schema.table)} AS t ON t.{quote_ident(schema.pk)} = r.id "
        "WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?"
    )
    params: list = [east, west, north, south]
    if thinning > 1:
        sql += " AND ((r.id * ?) & 4294967295) % ? = 0"
        params += [HASH_MULTIPLIER, thinning]
    return conn.execute(sql, params).fetchall()


@dataclass(frozen=True)
class _TileFeatures:
    """The features a tile draws, as columns."""

    geometries: np.ndarray  # in tile coordinates, none missing or empty
    properties: list[dict]  # without NULLs
    ids: list[int]
    oriented: bool  # polygons already as the encoder's winding-order check would make them

    def for_the_library(self) -> list[dict]:
        """The features as mapbox-vector-tile takes them."""
        return [{"geometry": geometry, "properties": properties, "id": fid}
                for geometry, properties, fid in zip(self.geometries, self.properties,
                                                     self.ids, strict=True)]


def _features(rows: list[tuple], columns: list[str], tile: TileBounds) -> _TileFeatures:
    if not rows:
        return _TileFeatures(np.empty(0, dtype=object), [], [], False)
    geometries = decode_many([row[1] for row in rows], strict=False, source="vector tile")
    geometries = _to_tile_coordinates(geometries, tile)
    oriented = _rounded_and_oriented(geometries)
    if oriented is not None:
        geometries = oriented
    drawn = np.flatnonzero(~(shapely.is_missing(geometries) | shapely.is_empty(geometries)))
    drawn_rows = [rows[position] for position in drawn.tolist()]
    properties = [{name: value for name, value in zip(columns, row[2:], strict=True)
                   if value is not None} for row in drawn_rows]
    return _TileFeatures(geometries[drawn], properties, [row[0] for row in drawn_rows],
                         oriented is not None)


def _rounded_and_oriented(geometries: np.ndarray) -> np.ndarray | None:
    """The polygons as mapbox-vector-tile's winding-order check makes them, all at once: their
    coordinates rounded half to even (Python's round), exterior rings counter-clockwise in
    tile units and holes clockwise (shapely's orient, which it calls, is orient_polygons).
    Its check does this one polygon at a time in Python, most of a tile's encoding time.
    A polygon invalid once rounded (a sliver clipped at the tile's buffer that collapses) is
    None when the check would drop it; when the check would repair one instead (make_valid,
    then again), the answer is None and the tile is left to the check."""
    polygonal = np.flatnonzero(np.isin(shapely.get_type_id(geometries), POLYGON_TYPE_IDS))
    if not polygonal.size:
        return geometries
    oriented = shapely.orient_polygons(shapely.transform(geometries[polygonal], np.rint),
                                       exterior_cw=False)
    result = geometries.copy()
    result[polygonal] = oriented
    for position in polygonal[~shapely.is_valid(oriented)]:
        if not _dropped_by_the_encoder(geometries[position]):
            return None
        result[position] = None
    return result


def _dropped_by_the_encoder(geometry: shapely.Geometry) -> bool:
    """Whether mapbox-vector-tile, checking its winding order, leaves this feature out: asked
    by encoding it alone (a few per tile at most)."""
    alone = mapbox_vector_tile.encode([{"name": "alone", "features": [
        {"geometry": geometry, "properties": {}}]}], default_options=ENCODER_OPTIONS)
    return not mapbox_vector_tile.decode(alone).get("alone", {}).get("features")


def _to_tile_coordinates(geometries: np.ndarray, tile: TileBounds) -> np.ndarray:
    minx, _, maxx, maxy = tile.mercator
    scale = EXTENT / (maxx - minx)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = lonlat_to_mercator(coords[:, 0], coords[:, 1])
        return np.column_stack([(x - minx) * scale, (maxy - y) * scale])

    projected = shapely.transform(geometries, project)
    lines_or_areas = shapely.get_dimensions(projected) > 0
    if lines_or_areas.any():
        clipped = shapely.clip_by_rect(projected[lines_or_areas], -BUFFER, -BUFFER,
                                       EXTENT + BUFFER, EXTENT + BUFFER)
        if tile.z < MAX_ZOOM:
            detailed = shapely.get_num_coordinates(clipped) > SIMPLIFIED_ABOVE
            clipped[detailed] = shapely.simplify(clipped[detailed], SIMPLIFY,
                                                 preserve_topology=True)
        projected[lines_or_areas] = clipped
    return projected
