"""A map preview of a staged source and its extent, made in the isolated reader while staging.

The stewards' report page and the reviewers' queue draw the preview over the basemap: a
vector source as its features (in WGS 84, simplified, at most MAX_FEATURES of them and
MAX_VERTICES vertices, with the count shown), a raster as its footprint and a small image
reprojected to WGS 84 (at most PREVIEW_PIXELS on a side). The server process only serves
the files written here (preview.json, preview.png in the stage folder); it never opens the
upload.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.warp import reproject, transform_bounds

from catalog.sources.vector import list_layers, open_vector

WGS84 = "EPSG:4326"
PREVIEW_JSON = "preview.json"
PREVIEW_PNG = "preview.png"
MAX_FEATURES = 1000
MAX_VERTICES = 50_000
PREVIEW_PIXELS = 256
SIMPLIFY_FRACTION = 1 / 1000  # of the extent's larger side, in degrees
DECIMALS = 6  # about 10 cm: enough for a preview, keeps the file small
DENSIFY_POINTS = 21  # per edge of a footprint, so a projected grid's edges curve as they do


class NoPreview(Exception):
    """The source has nothing a map can show (no CRS, no finite coordinates)."""


def write_preview(source: Path, kind: str, workdir: Path) -> dict:
    """Write the preview files of `source` into workdir; return its extent for the facts:
    {"crs", "bbox" (in the data's CRS), "wgs84" (lon/lat)}."""
    if kind == "raster":
        return _raster_preview(source, workdir)
    return _vector_preview(source, workdir)


def _vector_preview(source: Path, workdir: Path) -> dict:
    layer = list_layers(source)[0]
    with open_vector(source, layer) as collection:
        crs = collection.crs.to_string() if collection.crs else None
        bbox = _finite(collection.bounds)
        to_wgs84 = _transformer(crs)
        wgs84 = _wgs84_bounds(to_wgs84, bbox)
        tolerance = max(wgs84[2] - wgs84[0], wgs84[3] - wgs84[1]) * SIMPLIFY_FRACTION
        features, vertices, total = [], 0, 0
        for index, feature in enumerate(collection):
            total += 1
            if len(features) >= MAX_FEATURES or vertices >= MAX_VERTICES:
                continue  # still counted: the page says how many of how many it shows
            geometry = _preview_geometry(feature.geometry, to_wgs84, tolerance)
            if geometry is None:
                continue
            vertices += shapely.get_num_coordinates(geometry)
            features.append({"type": "Feature", "properties": {"feature": index},
                             "geometry": shapely.geometry.mapping(geometry)})
    preview = {"kind": "vector", "shown": len(features), "total": total,
               "features": {"type": "FeatureCollection", "features": features}}
    _write_json(workdir / PREVIEW_JSON, preview)
    return _extent(crs, bbox, wgs84)


def _preview_geometry(geometry, to_wgs84: Transformer, tolerance: float):
    """The feature's geometry in WGS 84, simplified and rounded; None if it has none to show."""
    if geometry is None:
        return None
    try:
        shape = shapely.geometry.shape(geometry)
        if shape.is_empty or not np.isfinite(shapely.get_coordinates(shape)).all():
            return None
        lonlat = shapely.transform(shape, lambda xy: np.column_stack(
            to_wgs84.transform(xy[:, 0], xy[:, 1])))
        simple = shapely.simplify(lonlat, tolerance, preserve_topology=False)
        shown = lonlat if simple.is_empty else simple
        return shapely.transform(shown, lambda xy: np.round(xy, DECIMALS))
    except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError, ProjError):
        return None  # an unreadable geometry is a finding of the scan, not the preview's


def _raster_preview(source: Path, workdir: Path) -> dict:
    with rasterio.open(source) as dataset:
        crs = dataset.crs.to_string() if dataset.crs else None
        bbox = _finite(tuple(dataset.bounds))
        _transformer(crs)  # refuses a grid without a CRS
        wgs84 = _finite(transform_bounds(dataset.crs, WGS84, *bbox,
                                         densify_pts=DENSIFY_POINTS))
        footprint = _footprint(crs, bbox)
        image_bounds = _write_image(dataset, workdir / PREVIEW_PNG)
    corners = [[image_bounds[0], image_bounds[3]], [image_bounds[2], image_bounds[3]],
               [image_bounds[2], image_bounds[1]], [image_bounds[0], image_bounds[1]]]
    preview = {"kind": "raster", "image": {"coordinates": corners},
               "features": {"type": "FeatureCollection", "features": [
                   {"type": "Feature", "properties": {},
                    "geometry": shapely.geometry.mapping(footprint)}]}}
    _write_json(workdir / PREVIEW_JSON, preview)
    return _extent(crs, bbox, wgs84)


def _footprint(crs: str, bbox: tuple) -> shapely.Polygon:
    """The grid's outline in WGS 84, its edges densified so they bend as projected."""
    edges = shapely.segmentize(shapely.box(*bbox),
                               max(bbox[2] - bbox[0], bbox[3] - bbox[1]) / DENSIFY_POINTS)
    to_wgs84 = _transformer(crs)
    lonlat = shapely.transform(edges, lambda xy: np.column_stack(
        to_wgs84.transform(xy[:, 0], xy[:, 1])))
    return shapely.transform(lonlat, lambda xy: np.round(xy, DECIMALS))


def _write_image(dataset, path: Path) -> tuple[float, float, float, float]:
    """A small PNG of the first band (or the RGB bands of a byte image) in WGS 84: grey from
    the 2nd to the 98th percentile, nodata transparent. Returns its lon/lat bounds."""
    scale = max(dataset.width, dataset.height) / PREVIEW_PIXELS
    shape = (max(1, round(dataset.height / scale)), max(1, round(dataset.width / scale))) \
        if scale > 1 else (dataset.height, dataset.width)
    bands = [1, 2, 3] if dataset.count >= 3 and dataset.dtypes[0] == "uint8" else [1]
    small = dataset.read(bands, out_shape=(len(bands), *shape), masked=True,
                         resampling=Resampling.nearest)
    small_transform = dataset.transform * dataset.transform.scale(dataset.width / shape[1],
                                                                  dataset.height / shape[0])
    west, south, east, north = transform_bounds(dataset.crs, WGS84, *dataset.bounds,
                                                densify_pts=DENSIFY_POINTS)
    # The grid's own pixel count over its lon/lat box (rasterio's calculate_default_transform
    # would do it through a VRT, a driver the reader process does not load).
    aspect = (east - west) / max(north - south, 1e-12)
    side = max(shape)
    width, height = (side, max(1, round(side / aspect))) if aspect >= 1 \
        else (max(1, round(side * aspect)), side)
    transform = from_bounds(west, south, east, north, width, height)
    rgba = np.zeros((4, height, width), dtype="uint8")
    valid = np.zeros((height, width), dtype="uint8")
    for index, band in enumerate(_to_bytes(small)):
        reproject(band, rgba[index], src_transform=small_transform, src_crs=dataset.crs,
                  dst_transform=transform, dst_crs=WGS84, resampling=Resampling.nearest)
    reproject((~np.ma.getmaskarray(small[0])).astype("uint8"), valid,
              src_transform=small_transform, src_crs=dataset.crs, dst_transform=transform,
              dst_crs=WGS84, resampling=Resampling.nearest)
    if len(bands) == 1:
        rgba[1] = rgba[2] = rgba[0]
    rgba[3] = valid * 255
    path.write_bytes(_png(rgba))
    return west, south, east, north


def _png(rgba: np.ndarray) -> bytes:
    """RGBA pixels (4, rows, columns) as a PNG file. Written here, not by GDAL: GDAL makes
    PNGs through a VRT, a driver the reader process does not load."""
    rows = np.ascontiguousarray(np.moveaxis(rgba, 0, -1)).reshape(rgba.shape[1], -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 on each row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", rgba.shape[2], rgba.shape[1], 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _to_bytes(bands: np.ma.MaskedArray) -> list[np.ndarray]:
    if bands.dtype == np.uint8:
        return [band.filled(0) for band in bands]
    values = bands[0].compressed().astype("float64")
    values = values[np.isfinite(values)]
    low, high = (np.percentile(values, (2, 98)) if values.size else (0.0, 1.0))
    span = high - low if high > low else 1.0
    scaled = np.clip((bands[0].filled(low).astype("float64") - low) / span, 0, 1)
    return [np.nan_to_num(scaled * 254 + 1).astype("uint8")]


def _transformer(crs: str | None) -> Transformer:
    if not crs:
        raise NoPreview("the data has no coordinate reference system")
    return Transformer.from_crs(CRS.from_user_input(crs), WGS84, always_xy=True)


def _wgs84_bounds(to_wgs84: Transformer, bbox: tuple) -> tuple:
    return _finite(to_wgs84.transform_bounds(*bbox, densify_pts=DENSIFY_POINTS))


def _finite(bounds) -> tuple[float, float, float, float]:
    values = tuple(float(v) for v in bounds)
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise NoPreview("the data has no finite extent")
    return values


def _extent(crs: str | None, bbox: tuple, wgs84: tuple) -> dict:
    return {"crs": crs, "bbox": [round(v, DECIMALS) for v in bbox],
            "wgs84": [round(v, DECIMALS) for v in wgs84]}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, separators=(",", ":"), allow_nan=False), encoding="utf-8")
