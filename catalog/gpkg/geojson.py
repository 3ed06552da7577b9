"""GeoJSON features from rows of a feature table: the two writers of the library.

- `features` builds plain dicts (geometries as nested lists), for callers that serialise with
  `json` or hand dicts on (pygeoapi, processes).
- `orjson_features` builds dicts whose coordinates may be numpy views, for callers that
  serialise with ``orjson.dumps(..., option=OPT_SERIALIZE_NUMPY)`` (the items writer and the
  stored feature text): orjson writes them in C with shortest round-trip numbers.

Both take rows as `catalog.gpkg.layer.FeaturePage` holds them: the id first, then properties,
then the geometry blob unless geometries were skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import orjson
import shapely

from catalog.gpkg import blob

# shapely type id -> GeoJSON type, for the types shapely.to_ragged_array handles.
_RAGGED_TYPES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint",
                 5: "MultiLineString", 6: "MultiPolygon"}


def _simple_coordinates(geometries: np.ndarray, type_id: int, has_z: bool,
                        as_lists: bool = True) -> list | None:
    """Per-geometry coordinates of points, lines, multipoints and polygons without holes,
    sliced from one coordinate array (shapely.to_ragged_array builds a geometry per ring: 10x
    slower); nested lists, or with `as_lists=False` numpy views for orjson. None otherwise."""
    if type_id not in (0, 1, 3, 4):
        return None
    if type_id == 3 and shapely.get_num_interior_rings(geometries).any():
        return None
    coords = shapely.get_coordinates(geometries, include_z=has_z)
    if as_lists:
        coords = coords.tolist()
    if type_id == 0:
        return list(coords)
    ends = np.cumsum(shapely.get_num_coordinates(geometries)).tolist()
    parts = [coords[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    return [[part] for part in parts] if type_id == 3 else parts


def _page_geometries(geometries: np.ndarray) -> tuple[list[int], np.ndarray, int | None, bool]:
    """The positions of the present (not missing, not empty) geometries of a page, those
    geometries, their common shapely type id (None when types or dimensions differ, M values
    are present, or nothing is) and whether they have Z."""
    index = np.flatnonzero(~shapely.is_missing(geometries) & ~shapely.is_empty(geometries))
    present = geometries[index]
    if not len(index):
        return [], present, None, False
    types = shapely.get_type_id(present)
    has_z = shapely.has_z(present)
    type_id = int(types[0])
    uniform = type_id in _RAGGED_TYPES and (types == type_id).all() and \
        (has_z == has_z[0]).all() and not shapely.has_m(present).any()
    return index.tolist(), present, type_id if uniform else None, bool(has_z[0])


def geojson_geometries(geometries: np.ndarray) -> list[dict | None]:
    """GeoJSON geometry dicts for an array of shapely geometries (None for missing or empty).

    A page of one geometry type becomes one array of coordinates plus offsets, turned into
    nested lists by slicing: about 20x faster than per-geometry `mapping`. Other pages go
    through shapely's GeoJSON writer.
    """
    out: list[dict | None] = [None] * len(geometries)
    index, present, type_id, has_z = _page_geometries(geometries)
    if type_id is not None:
        items = _simple_coordinates(present, type_id, has_z)
        if items is None:
            _, coords, offsets = shapely.to_ragged_array(present)
            items = coords.tolist()
            for level in offsets:
                bounds = level.tolist()
                items = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        geojson = [{"type": _RAGGED_TYPES[type_id], "coordinates": item} for item in items]
    else:
        geojson = [json.loads(text) for text in shapely.to_geojson(present)]
    for i, geometry in zip(index, geojson, strict=True):
        out[i] = geometry
    return out


def orjson_geometries(geometries: np.ndarray) -> list:
    """Geometries ready for ``orjson.dumps(..., option=OPT_SERIALIZE_NUMPY)``; None for missing
    or empty ones.

    A page of one simple type (points, lines, multipoints, polygons without holes) becomes
    GeoJSON dicts whose coordinates are views into one coordinate array, which orjson writes in
    C with shortest round-trip numbers. Other pages get shapely's GeoJSON text as fragments.
    """
    out: list = [None] * len(geometries)
    index, present, type_id, has_z = _page_geometries(geometries)
    parts = None if type_id is None else \
        _simple_coordinates(present, type_id, has_z, as_lists=False)
    if parts is None:
        written = [orjson.Fragment(text) for text in shapely.to_geojson(present).tolist()]
    else:
        written = [{"type": _RAGGED_TYPES[type_id], "coordinates": part} for part in parts]
    for i, geometry in zip(index, written, strict=True):
        out[i] = geometry
    return out


def properties(rows: Sequence[tuple], columns: Sequence[str], kinds: Mapping[str, str],
               has_geometry: bool) -> list[dict]:
    """Each row's properties (the columns between the id and the geometry); booleans, which
    SQLite stores as 0/1, as booleans."""
    names = columns[1 : len(columns) - has_geometry]
    booleans = [i for i, name in enumerate(names) if kinds[name] == "boolean"]
    end = len(columns) - has_geometry
    out = [dict(zip(names, row[1:end], strict=True)) for row in rows]
    if booleans:
        for props in out:
            for i in booleans:
                if props[names[i]] is not None:
                    props[names[i]] = bool(props[names[i]])
    return out


def features(rows: Sequence[tuple], columns: Sequence[str], kinds: Mapping[str, str],
             geometry_column: str, source: str = "") -> list[dict]:
    """GeoJSON features as plain dicts. The last column is the geometry blob when it is
    `geometry_column`; unreadable geometries become null (logged, naming `source`)."""
    return _features(rows, columns, kinds, geometry_column, source, geojson_geometries)


def orjson_features(rows: Sequence[tuple], columns: Sequence[str], kinds: Mapping[str, str],
                    geometry_column: str, source: str = "") -> list[dict]:
    """GeoJSON features for orjson (see `orjson_geometries`), same rows as `features`."""
    return _features(rows, columns, kinds, geometry_column, source, orjson_geometries)


def _features(rows: Sequence[tuple], columns: Sequence[str], kinds: Mapping[str, str],
              geometry_column: str, source: str, write_geometries) -> list[dict]:
    has_geometry = columns[-1] == geometry_column
    geometries = write_geometries(
        blob.decode_many([row[-1] for row in rows], strict=False, source=source)
    ) if has_geometry else [None] * len(rows)
    return [{"type": "Feature", "id": row[0], "geometry": geometry, "properties": props}
            for row, geometry, props in zip(
                rows, geometries, properties(rows, columns, kinds, has_geometry), strict=True)]
