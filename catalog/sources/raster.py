"""Check a raster source with rasterio and describe it.

A raster is refused before any pixel is read when it is larger than the pixel budget (width x
height x bands, TAZA_RASTER_MAX_PIXELS) or stores its pixels in blocks too large to read one at
a time (a single-strip TIFF holds a whole band in one block): everything after this reads by
blocks, so memory stays bounded whatever the raster's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from catalog.problems import Problem
from catalog.sources.content import driver_for

DEFAULT_MAX_PIXELS = 8_000_000_000  # width x height x bands; a 65,536² single band is 4.3e9
MAX_BLOCK_BYTES = 64 << 20  # one block of one band, uncompressed


@dataclass(frozen=True)
class RasterInfo:
    path: Path
    crs: str
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]
    nodata: float | None


def max_raster_pixels() -> int:
    """The pixel budget: TAZA_RASTER_MAX_PIXELS, default 8 gigapixels."""
    return int(os.environ.get("TAZA_RASTER_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def inspect_raster(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS
                   ) -> tuple[RasterInfo | None, list[Problem]]:
    """Open the raster and read every block once, so a truncated file is caught now."""
    where = path.name
    try:
        with rasterio.open(path, driver=driver_for(path)) as dataset:
            if dataset.count == 0:
                return None, [Problem(where, "has no bands", code="raster_no_bands",
                                        params={"file": where})]
            too_large = size_problems(dataset, where, max_pixels)
            if too_large:
                return None, too_large
            info = RasterInfo(path, dataset.crs.to_string() if dataset.crs else "", dataset.width,
                              dataset.height, dataset.count, tuple(dataset.dtypes), dataset.nodata)
            problems = _check_grid(dataset, where)
            problems += _check_bands(dataset, where)
    except (RasterioError, OSError, ValueError) as err:
        return None, [Problem(where, f"cannot be read as a raster: {err}",
                              code="raster_unreadable", params={"file": where})]
    return info, problems


def size_problems(dataset, where: str, max_pixels: int) -> list[Problem]:
    """The pixel budget and the block size, from the header alone."""
    pixels = dataset.width * dataset.height * dataset.count
    if pixels > max_pixels:
        return [Problem(where, f"has {dataset.width:,} x {dataset.height:,} pixels in "
                               f"{dataset.count} band(s), {pixels:,} in all; the catalog "
                               f"accepts at most {max_pixels:,}",
                        code="raster_too_many_pixels",
                        params={"file": where, "width": dataset.width, "height": dataset.height,
                                "bands": dataset.count, "pixels": pixels,
                                "limit": max_pixels})]
    problems = []
    for band, (rows, columns) in enumerate(dataset.block_shapes, start=1):
        size = rows * columns * np.dtype(dataset.dtypes[band - 1]).itemsize
        if size > MAX_BLOCK_BYTES:
            problems.append(Problem(f"{where} band {band}", (
                f"stores its pixels in blocks of {columns:,} x {rows:,} ({size:,} bytes "
                f"each, the limit is {MAX_BLOCK_BYTES:,}): write a tiled GeoTIFF "
                "(for example gdal_translate -co TILED=YES)"), code="raster_blocks_too_large",
                params={"file": where, "band": band, "columns": columns, "rows": rows,
                        "bytes": size, "limit": MAX_BLOCK_BYTES}))
            break
    return problems


def _check_grid(dataset, where: str) -> list[Problem]:
    problems = []
    if not dataset.crs:
        problems.append(Problem(where, "has no coordinate reference system",
                                code="raster_no_crs", params={"file": where}))
    if dataset.transform.is_identity:
        problems.append(Problem(where, "has no georeferencing (identity geotransform)",
                                code="raster_no_georeferencing", params={"file": where}))
    if dataset.transform.b != 0 or dataset.transform.d != 0:
        problems.append(Problem(where, "is rotated; publish a north-up grid",
                                code="raster_rotated", params={"file": where}))
    return problems


def _check_bands(dataset, where: str) -> list[Problem]:
    problems = []
    for band in range(1, dataset.count + 1):
        has_data = False
        for _, window in dataset.block_windows(band):
            data = dataset.read(band, window=window, masked=True)
            has_data = has_data or bool(np.ma.count(data))
        if not has_data:
            problems.append(Problem(f"{where} band {band}", "holds no valid pixels (all nodata)",
                                    code="raster_band_empty", params={"file": where, "band": band}))
    return problems
