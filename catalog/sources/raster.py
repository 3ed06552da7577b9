"""Check a raster source with rasterio and describe it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from catalog.problems import Problem


@dataclass(frozen=True)
class RasterInfo:
    path: Path
    crs: str
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]
    nodata: float | None


def inspect_raster(path: Path) -> tuple[RasterInfo | None, list[Problem]]:
    """Open the raster and read every block once, so a truncated file is caught now."""
    where = path.name
    try:
        with rasterio.open(path) as dataset:
            if dataset.count == 0:
                return None, [Problem(where, "has no bands")]
            info = RasterInfo(path, dataset.crs.to_string() if dataset.crs else "", dataset.width,
                              dataset.height, dataset.count, tuple(dataset.dtypes), dataset.nodata)
            problems = _check_grid(dataset, where)
            problems += _check_bands(dataset, where)
    except (RasterioError, OSError, ValueError) as err:
        return None, [Problem(where, f"cannot be read as a raster: {err}")]
    return info, problems


def _check_grid(dataset, where: str) -> list[Problem]:
    problems = []
    if not dataset.crs:
        problems.append(Problem(where, "has no coordinate reference system"))
    if dataset.transform.is_identity:
        problems.append(Problem(where, "has no georeferencing (identity geotransform)"))
    if dataset.transform.b != 0 or dataset.transform.d != 0:
        problems.append(Problem(where, "is rotated; publish a north-up grid"))
    return problems


def _check_bands(dataset, where: str) -> list[Problem]:
    problems = []
    for band in range(1, dataset.count + 1):
        has_data = False
        for _, window in dataset.block_windows(band):
            data = dataset.read(band, window=window, masked=True)
            has_data = has_data or bool(np.ma.count(data))
        if not has_data:
            problems.append(Problem(f"{where} band {band}", "holds no valid pixels (all nodata)"))
    return problems
