"""The bytes of one Mapbox Vector Tile layer, written with numpy: byte for byte what
mapbox-vector-tile's `encode` writes for the same features with the options the tiles use
(version 2, y down, no winding-order check: catalog/features/mvt.py has oriented the polygons).

The library walks every coordinate in Python (rounding, zig-zag, dropping repeated points) and
fills protobuf objects a value at a time: for a tile of a thousand parcels that was most of the
tile's time. Here the commands of all the tile's geometries are computed at once from shapely's
ragged arrays, and the protobuf messages are written as bytes. What the library does is kept
exactly: coordinates rounded half to even; a point repeating the one before it left out; a line
or ring left with no segment left out, and a polygon whose exterior is left out left out whole;
a ring's closing point not written; a feature without geometry commands not written (nor its
properties); keys and values numbered in the order first met, an integer and a float of equal
value sharing one value, booleans apart; properties of other types skipped.

`encode_layer` answers None for what it does not write (geometries of different dimensions in
one tile, a geometry collection, an id or integer beyond 64 bits, text that is not UTF-8): the
caller then asks the library, which says what is wrong. tests/test_tiles.py compares both on
generated features and on whole tiles.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely

MOVE_TO, LINE_TO, CLOSE_PATH = 1, 2, 7
POINT, LINESTRING, POLYGON = 1, 2, 3  # the tile's geometry types
FAMILIES = {shapely.GeometryType.POINT: POINT, shapely.GeometryType.MULTIPOINT: POINT,
            shapely.GeometryType.LINESTRING: LINESTRING,
            shapely.GeometryType.MULTILINESTRING: LINESTRING,
            shapely.GeometryType.POLYGON: POLYGON, shapely.GeometryType.MULTIPOLYGON: POLYGON}
INT64_MIN, INT64_MAX, UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
VERSION = 2


def encode_layer(name: str, geometries: np.ndarray, properties: Sequence[dict[str, Any]],
                 ids: Sequence[Any], extent: int) -> bytes | None:
    """A tile of one layer: its features' geometries (shapely, in tile coordinates, none
    empty), properties and ids; None when the library must write it."""
    commands = _geometry_commands(geometries)
    if commands is None:
        return None
    family, values, feature_bounds = commands
    drawn = np.flatnonzero(np.diff(feature_bounds) > 0)  # the others are not written at all
    table = _Attributes()
    tags, tag_counts = [], []
    try:
        for position in drawn.tolist():
            found = table.tags(properties[position])
            if found is None:
                return None
            tags += found
            tag_counts.append(len(found))
        kept_ids = [ids[position] for position in drawn.tolist()]
        if any(fid is not None and (type(fid) is not int or fid > UINT64_MAX)
               for fid in kept_ids):
            return None  # a float, boolean or text id: the library's protobuf decides
        features = _features(family, kept_ids, _varints(values), feature_bounds[drawn],
                             feature_bounds[drawn + 1], _varints(np.array(tags, np.int64)),
                             tag_counts)
        return _message(3, b"".join([
            _message(1, name.encode()), *features,
            *(_message(3, key.encode()) for key in table.keys),
            *(_message(4, value) for value in table.messages),
            b"\x28" + _varint(extent), b"\x78" + _varint(VERSION)]))  # field 15, varint
    except UnicodeEncodeError:  # text with lone surrogates
        return None


def _features(family: int, ids: list, geometry: tuple[np.ndarray, np.ndarray],
              firsts: np.ndarray, lasts: np.ndarray, tags: tuple[np.ndarray, np.ndarray],
              tag_counts: list[int]) -> list[bytes]:
    """Each feature's message, as a layer's field 2: id, packed tags, type, packed geometry."""
    geometry_bytes, geometry_bounds = geometry
    tag_bytes, tag_bounds = tags
    geometry_starts, geometry_ends = geometry_bounds[firsts].tolist(), \
        geometry_bounds[lasts].tolist()
    tag_ends = np.cumsum(tag_counts, dtype=np.int64)
    tag_starts = (tag_bounds[tag_ends - np.asarray(tag_counts, dtype=np.int64)]).tolist()
    tag_stops = tag_bounds[tag_ends].tolist()
    blob, tag_blob, kind = geometry_bytes.tobytes(), tag_bytes.tobytes(), bytes((0x18, family))
    out = []
    for fid, g0, g1, t0, t1 in zip(ids, geometry_starts, geometry_ends, tag_starts, tag_stops,
                                   strict=True):
        parts = b"\x08" + _varint(fid) if fid is not None and fid >= 0 else b""
        if t1 > t0:
            parts += b"\x12" + _varint(t1 - t0) + tag_blob[t0:t1]
        parts += kind + b"\x22" + _varint(g1 - g0) + blob[g0:g1]
        out.append(b"\x12" + _varint(len(parts)) + parts)
    return out


# -- geometries ---------------------------------------------------------------------------------

def _geometry_commands(geometries: np.ndarray) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(geometry type, the command integers of every feature in a row, each feature's first
    and last index in them), or None for geometries the library must write."""
    types = {FAMILIES.get(shapely.GeometryType(t)) for t in np.unique(
        shapely.get_type_id(geometries))}
    if len(types) != 1 or None in types:
        return None
    family = types.pop()
    try:
        _, coords, offsets = shapely.to_ragged_array(geometries, include_z=False)
    except ValueError:
        return None
    if not np.isfinite(coords).all():  # an empty part inside a multi-part geometry
        return None
    xy = np.rint(coords).astype(np.int64)
    count = len(geometries)
    if family == POINT:
        values, per_feature = _points(xy, offsets[0] if offsets else np.arange(count + 1))
    else:
        values, per_feature = _paths(xy, offsets, count, closed=family == POLYGON)
    if values.size and (values.max() > 0xFFFFFFFF or values.min() < 0):
        return None
    bounds = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(per_feature, out=bounds[1:])
    return family, values, bounds


def _points(xy: np.ndarray, geometry_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MoveTo(n) and each point's step from the one before (the first from 0, 0): repeated
    points are kept, as the library keeps them."""
    sizes = np.diff(geometry_offsets)
    starts = geometry_offsets[:-1]
    steps = _steps(xy, starts[sizes > 0])
    per_feature = np.where(sizes > 0, 1 + 2 * sizes, 0)
    values = np.empty(int(per_feature.sum()), dtype=np.int64)
    headers = np.cumsum(per_feature) - per_feature
    owner = np.repeat(np.arange(len(sizes)), sizes)
    rank = np.arange(len(xy)) - starts[owner]
    values[headers[sizes > 0]] = (sizes[sizes > 0] << 3) | MOVE_TO
    slots = headers[owner] + 1 + 2 * rank
    _put_steps(values, slots, steps)
    return values, per_feature


def _paths(xy: np.ndarray, offsets: tuple, count: int,
           closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Lines or polygon rings: MoveTo(1), LineTo(n) and (rings) ClosePath per path kept, steps
    carried from path to path of a feature."""
    path_offsets = offsets[0]
    if closed:  # rings, polygons, geometries (a single Polygon layer has no third level)
        polygon_offsets = offsets[1]
        geometry_offsets = offsets[2] if len(offsets) > 2 else np.arange(count + 1)
    else:
        polygon_offsets = np.arange(len(path_offsets))  # each line its own "polygon"
        geometry_offsets = offsets[1] if len(offsets) > 1 else np.arange(count + 1)
    paths = len(path_offsets) - 1
    path_of_point = np.repeat(np.arange(paths), np.diff(path_offsets))
    ends = path_offsets[1:]
    written = np.ones(len(xy), dtype=bool)
    if closed:
        written[ends[ends > path_offsets[:-1]] - 1] = False  # a ring's closing point
    repeated = np.zeros(len(xy), dtype=bool)
    if len(xy) > 1:
        same = (xy[1:] == xy[:-1]).all(axis=1) & (path_of_point[1:] == path_of_point[:-1])
        repeated[1:] = same  # equal to the point before, so to the last one written
    kept = written & ~repeated
    kept_per_path = np.bincount(path_of_point[kept], minlength=paths)
    path_ok = kept_per_path >= 2  # at least one segment
    polygon_of_path = np.repeat(np.arange(len(polygon_offsets) - 1), np.diff(polygon_offsets))
    exterior = polygon_offsets[:-1]
    polygon_ok = np.zeros(len(polygon_offsets) - 1, dtype=bool)
    has_rings = exterior < np.asarray(polygon_offsets[1:])
    polygon_ok[has_rings] = path_ok[exterior[has_rings]]
    path_drawn = path_ok & polygon_ok[polygon_of_path]
    geometry_of_path = np.repeat(np.arange(count), np.diff(geometry_offsets))[polygon_of_path]

    drawn = kept & path_drawn[path_of_point]
    points = xy[drawn]
    point_path = path_of_point[drawn]
    point_geometry = geometry_of_path[point_path]
    steps = _steps(points, np.flatnonzero(np.r_[True, point_geometry[1:] !=
                                                 point_geometry[:-1]]) if len(points) else [])

    sizes = np.where(path_drawn, kept_per_path, 0)
    lengths = np.where(path_drawn, 2 * sizes + 2 + closed, 0)
    headers = np.cumsum(lengths) - lengths
    values = np.empty(int(lengths.sum()), dtype=np.int64)
    drawn_paths = np.flatnonzero(path_drawn)
    values[headers[drawn_paths]] = (1 << 3) | MOVE_TO
    values[headers[drawn_paths] + 3] = ((sizes[drawn_paths] - 1) << 3) | LINE_TO
    if closed:
        values[headers[drawn_paths] + lengths[drawn_paths] - 1] = (1 << 3) | CLOSE_PATH
    first_of_path = np.zeros(paths + 1, dtype=np.int64)
    np.cumsum(sizes, out=first_of_path[1:])
    rank = np.arange(len(points)) - first_of_path[point_path]
    slots = headers[point_path] + np.where(rank == 0, 1, 2 * rank + 2)
    _put_steps(values, slots, steps)
    per_feature = np.bincount(geometry_of_path, weights=lengths, minlength=count).astype(np.int64)
    return values, per_feature


def _steps(points: np.ndarray, firsts) -> np.ndarray:
    """Each point's step from the point before it; a feature's first point (at `firsts`)
    steps from 0, 0, where the library's cursor starts for every feature."""
    steps = np.diff(points, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    steps[firsts] = points[firsts]
    return steps


def _put_steps(values: np.ndarray, slots: np.ndarray, steps: np.ndarray) -> None:
    """The steps' x at `slots` and y just after, zig-zag encoded."""
    values[slots], values[slots + 1] = _zigzag(steps[:, 0]), _zigzag(steps[:, 1])


def _zigzag(steps: np.ndarray) -> np.ndarray:
    return (steps << 1) ^ (steps >> 31)  # the library's formula, for 32-bit steps


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every value as a protobuf varint, in one byte array, and where each value starts
    (one more entry: the end)."""
    sizes = 1 + sum((values >= 1 << (7 * k)).astype(np.int64) for k in range(1, 5))
    bounds = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    out = np.empty(int(bounds[-1]), dtype=np.uint8)
    for k in range(5):
        has = sizes > k
        more = (sizes[has] > k + 1).astype(np.int64) << 7
        out[bounds[:-1][has] + k] = ((values[has] >> (7 * k)) & 0x7F) | more
    return out, bounds


# -- protobuf messages ----------------------------------------------------------------------------

class _Attributes:
    """A layer's keys and values, numbered as mapbox-vector-tile numbers them: in the order
    first met, booleans apart from other values (where 1 and 1.0 are one value)."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.values: dict[Any, int] = {}
        self.booleans: dict[bool, int] = {}
        self.messages: list[bytes] = []

    def tags(self, properties: dict[str, Any]) -> list[int] | None:
        """A feature's tags (key, value, key, value...); None for a value the library's
        protobuf must judge."""
        tags = []
        keys = self.keys
        for key, value in properties.items():
            if value.__class__ not in _PLAIN and not (
                    isinstance(key, str) and isinstance(value, (str, bool, int, float))):
                continue
            key_index = keys.get(key)
            if key_index is None:
                if not isinstance(key, str):
                    continue
                key_index = keys[key] = len(keys)
            table = self.booleans if value.__class__ is bool else self.values
            value_index = table.get(value)
            if value_index is None:
                message = _value(value)
                if message is None:
                    return None
                value_index = table[value] = len(self.messages)
                self.messages.append(message)
            tags += (key_index, value_index)
        return tags


_PLAIN = frozenset((str, int, float, bool))  # the usual values, checked without isinstance


def _value(value: str | bool | int | float) -> bytes | None:
    if isinstance(value, bool):
        return b"\x38" + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _message(1, value.encode())
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return None
        return b"\x20" + _varint(value & UINT64_MAX)
    return b"\x19" + struct.pack("<d", value)


def _message(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    if value < _SHORT:
        return _SHORT_VARINTS[value]
    return _long_varint(value)


def _long_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SHORT = 1 << 14  # lengths, tags and ids below this are most of a tile's varints
_SHORT_VARINTS = [_long_varint(value) for value in range(_SHORT)]
