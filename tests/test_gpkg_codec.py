"""The GeoPackage blob codec (catalog/gpkg/blob.py) against GDAL's own GeoPackage writer.

Generated geometries (points, lines, polygons, multi-geometries and collections, with and
without Z, empty ones, NULL) are written by GDAL (through fiona) and encoded by us: 2D blobs
must be byte for byte GDAL's, every blob must decode to the geometry, and its header must say
what it holds (SRS, envelope, empty flag). Broken blobs raise in strict mode and become None
otherwise.
"""

from __future__ import annotations

import sqlite3

import fiona
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import mapping

from catalog.gpkg import decode, decode_many, encode, encode_many, read_header, wkb_of

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
# No negative zero: GDAL and shapely may differ in the sign of a zero in the envelope.
COORD = st.floats(-179, 179, allow_nan=False, allow_infinity=False, width=32).map(lambda v: v + 0.0)


def points(z: bool, n: int):
    size = 3 if z else 2
    return st.lists(st.tuples(*[COORD] * size), min_size=n, max_size=n + 4)


@st.composite
def geometries(draw):
    z = draw(st.booleans())
    kind = draw(st.sampled_from(["point", "line", "polygon", "multipoint", "multiline",
                                 "collection", "empty"]))
    if kind == "point":
        return shapely.Point(draw(points(z, 1))[0])
    if kind == "line":
        return shapely.LineString(draw(points(z, 2)))
    if kind == "polygon":
        ring = draw(points(z, 3))
        return shapely.Polygon([*ring, ring[0]])
    if kind == "multipoint":
        return shapely.MultiPoint(draw(points(z, 1)))
    if kind == "multiline":
        return shapely.MultiLineString([draw(points(z, 2)), draw(points(z, 2))])
    if kind == "collection":
        return shapely.GeometryCollection([shapely.Point(draw(points(z, 1))[0]),
                                           shapely.LineString(draw(points(z, 2)))])
    return draw(st.sampled_from([shapely.Polygon(), shapely.LineString(),
                                 shapely.MultiPolygon()]))


def gdal_blobs(path, items: list) -> list[bytes | None]:
    with fiona.open(path, "w", driver="GPKG", layer="t", crs="EPSG:4326",
                    schema={"geometry": "Unknown", "properties": {}}) as sink:
        for geometry in items:
            sink.write({"geometry": None if geometry is None else mapping(geometry),
                        "properties": {}})
    with sqlite3.connect(path) as conn:
        return [blob for (blob,) in conn.execute("SELECT geom FROM t ORDER BY fid")]


@SETTINGS
@given(items=st.lists(st.one_of(st.none(), geometries()), min_size=1, max_size=12))
def test_blobs_are_gdals_and_decode_to_the_geometry(tmp_path_factory, items):
    gdal = gdal_blobs(tmp_path_factory.mktemp("codec") / "t.gpkg", items)
    ours = encode_many(np.array(items, dtype=object), 4326)
    assert ours == [encode(g, 4326) for g in items]
    for geometry, blob, reference in zip(items, ours, gdal, strict=True):
        if geometry is None:
            assert blob is None and reference is None
            continue
        if not shapely.has_z(geometry) or geometry.is_empty:
            assert blob == reference, geometry.wkt
        assert decode(reference).equals_exact(geometry, 0) or geometry.is_empty
        assert decode(blob).equals_exact(geometry, 0) or decode(blob).is_empty
        header = read_header(blob)
        assert header.srs_id == 4326 and header.empty == geometry.is_empty
        assert wkb_of(blob) == shapely.to_wkb(geometry, flavor="iso", byte_order=1)
        if geometry.is_empty or geometry.geom_type == "Point":
            assert header.envelope is None
        else:
            minx, miny, maxx, maxy = geometry.bounds
            assert header.envelope == (minx, maxx, miny, maxy)
    decoded = decode_many(ours)
    assert [g is None for g in decoded] == [g is None for g in items]


BROKEN = [b"", b"XX\x00\x01\x00\x00\x00\x00", b"GP\x00\x0f\x00\x00\x00\x00",
          b"GP\x00\x21" + bytes(4), b"GP\x00\x03" + bytes(8),
          b"GP\x00\x01" + bytes(4) + b"\x01\x01\x00\x00"]


@pytest.mark.parametrize("blob", BROKEN)
def test_broken_blobs_raise_when_strict_and_are_skipped_otherwise(blob):
    good = encode(shapely.Point(1, 2), 4326)
    with pytest.raises((ValueError, shapely.errors.GEOSException)):
        decode_many([good, blob])
    decoded = decode_many([good, blob, None], strict=False, source="test")
    assert decoded[0].equals(shapely.Point(1, 2)) and decoded[1] is None and decoded[2] is None
