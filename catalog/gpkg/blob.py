"""The GeoPackage geometry blob: a small binary header, then the geometry as (ISO) WKB
(GeoPackage 1.3, clause 2.1.3). The one codec of the catalog: readers of published files,
bulk conversion, the feature writers, map tiles, processes and the STAC index all use it.

NULL geometries are SQL NULL (None here). An empty geometry has the header's empty flag set
and, as GDAL writes it, no envelope.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

LOGGER = logging.getLogger(__name__)

# Envelope indicator (flags bits 1-3) -> envelope size in bytes.
ENVELOPE_SIZES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_EXTENDED = 0x20  # extended geometry types (not supported)
_EMPTY = 0x10


@dataclass(frozen=True)
class Header:
    """The header that precedes the WKB."""

    version: int
    srs_id: int
    envelope: tuple[float, ...] | None  # minx, maxx, miny, maxy[, minz, maxz][, minm, maxm]
    empty: bool
    wkb_offset: int


def read_header(blob: bytes) -> Header:
    """The header of a geometry blob; ValueError naming the problem if it is not one."""
    if len(blob) < 8 or blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry (missing 'GP' magic)")
    flags = blob[3]
    if flags & _EXTENDED:
        raise ValueError("extended GeoPackage geometry types are not supported")
    envelope_size = ENVELOPE_SIZES.get((flags >> 1) & 0x07)
    if envelope_size is None:
        raise ValueError(f"invalid envelope indicator in flags {flags:#04x}")
    order = "<" if flags & 0x01 else ">"
    if len(blob) < 8 + envelope_size:
        raise ValueError("truncated GeoPackage geometry header")
    (srs_id,) = struct.unpack_from(f"{order}i", blob, 4)
    envelope = (
        struct.unpack_from(f"{order}{envelope_size // 8}d", blob, 8) if envelope_size else None
    )
    return Header(blob[2], srs_id, envelope, bool(flags & _EMPTY), 8 + envelope_size)


def wkb(blob: bytes) -> bytes:
    """The WKB part of a geometry blob (the WKB carries its own byte order); ValueError if
    the header is not a GeoPackage one."""
    if len(blob) >= 8 and blob[:2] == b"GP" and not blob[3] & _EXTENDED:  # quickly
        size = ENVELOPE_SIZES.get((blob[3] >> 1) & 0x07)
        if size is not None and len(blob) >= 8 + size:
            return bytes(blob[8 + size :])
    return bytes(blob[read_header(blob).wkb_offset :])  # raises, naming the problem


def decode(blob: bytes | None) -> BaseGeometry | None:
    """The geometry of one blob (None for NULL); ValueError or GEOSException if unreadable."""
    if blob is None:
        return None
    return shapely.from_wkb(wkb(blob))


def decode_many(blobs: Sequence[bytes | None], strict: bool = True,
                source: str = "") -> np.ndarray:
    """Geometries of many blobs at once (None for NULL).

    strict: an unreadable blob raises (ValueError for the header, GEOSException for the WKB).
    Otherwise it becomes None and is logged, naming `source`: a reader serves the rest.
    """
    wkbs: list[bytes | None] = []
    for blob in blobs:
        if blob is None:
            wkbs.append(None)
            continue
        try:
            wkbs.append(wkb(blob))
        except ValueError as err:
            if strict:
                raise
            LOGGER.warning("%s: unreadable geometry: %s", source, err)
            wkbs.append(None)
    array = np.array(wkbs, dtype=object)
    if strict:
        return shapely.from_wkb(array, on_invalid="raise")
    geometries = shapely.from_wkb(array, on_invalid="ignore")
    lost = sum(1 for data, geometry in zip(wkbs, geometries, strict=True)
               if data is not None and geometry is None)
    if lost:
        LOGGER.warning("%s: %d unreadable geometries skipped", source, lost)
    return geometries


def encode_many(geometries: np.ndarray, srs_id: int) -> list[bytes | None]:
    """Blobs as GDAL writes 2D geometries: little-endian, an xy envelope except for points and
    empty geometries (which carry the empty flag); None stays None. Geometries with Z get an
    xy envelope too (GDAL writes xyz): both are valid GeoPackage, and the R-tree is 2D."""
    wkbs = shapely.to_wkb(geometries, flavor="iso", byte_order=1)
    bounds = shapely.bounds(geometries)[:, [0, 2, 1, 3]]  # minx, maxx, miny, maxy
    with_envelope = b"GP\x00\x03" + struct.pack("<i", srs_id)
    point_header = b"GP\x00\x01" + struct.pack("<i", srs_id)
    empty_header = b"GP\x00\x11" + struct.pack("<i", srs_id)
    is_point = shapely.get_type_id(geometries) == 0
    is_empty = shapely.is_empty(geometries)
    out: list[bytes | None] = []
    for data, box, point, empty in zip(wkbs, bounds, is_point, is_empty, strict=True):
        if data is None:
            out.append(None)
        elif empty:
            out.append(empty_header + data)
        elif point:
            out.append(point_header + data)
        else:
            out.append(with_envelope + box.tobytes() + data)
    return out


def encode(geometry: BaseGeometry | None, srs_id: int) -> bytes | None:
    """The blob of one geometry (None for None)."""
    return encode_many(np.array([geometry], dtype=object), srs_id)[0]
