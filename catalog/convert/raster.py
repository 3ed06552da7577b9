"""Raster sources to Cloud Optimized GeoTIFFs, with the facts STAC needs (grid, statistics)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.warp import transform_bounds

from catalog.convert import Asset, describe_file


@dataclass(frozen=True)
class RasterFacts:
    item_id: str
    bbox: tuple[float, float, float, float]  # EPSG:4326
    epsg: int | None
    crs_wkt: str
    shape: tuple[int, int]  # rows, columns
    transform: tuple[float, ...]  # the six GDAL/affine coefficients a-f
    bands: tuple[dict, ...]  # per band: data_type, nodata, statistics, unit


def convert_raster(
    source: Path, item_id: str, out_dir: Path, unit: str | None
) -> tuple[Asset, RasterFacts]:
    """Write <item_id>.tif as a COG: DEFLATE, predictor 2 for integers and 3 for floats."""
    target = out_dir / f"{item_id}.tif"
    with rasterio.open(source) as src:
        floating = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
        rasterio.shutil.copy(
            src,
            target,
            driver="COG",
            COMPRESS="DEFLATE",
            PREDICTOR="3" if floating else "2",
            BLOCKSIZE="512",
            OVERVIEWS="AUTO",
            RESAMPLING="AVERAGE",
            BIGTIFF="IF_SAFER",
        )
    facts = _describe(target, item_id, unit)
    asset = describe_file(target, "data", "Cloud Optimized GeoTIFF", ("data",))
    return asset, facts


def _describe(path: Path, item_id: str, unit: str | None) -> RasterFacts:
    with rasterio.open(path) as dataset:
        bbox = transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds, densify_pts=21)
        bands = tuple(_band_facts(dataset, band, unit) for band in range(1, dataset.count + 1))
        return RasterFacts(
            item_id=item_id,
            bbox=tuple(round(v, 7) for v in bbox),
            epsg=dataset.crs.to_epsg(),
            crs_wkt=dataset.crs.to_wkt(),
            shape=(dataset.height, dataset.width),
            transform=tuple(dataset.transform)[:6],
            bands=bands,
        )


def _band_facts(dataset, band: int, unit: str | None) -> dict:
    data = dataset.read(band, masked=True)
    valid = data.compressed()
    stats = {}
    if valid.size:
        stats = {
            "minimum": float(valid.min()),
            "maximum": float(valid.max()),
            "mean": round(float(valid.mean()), 4),
            "stddev": round(float(valid.std()), 4),
            "valid_percent": round(100.0 * valid.size / data.size, 3),
        }
    facts = {
        "data_type": dataset.dtypes[band - 1],
        "statistics": stats,
        "spatial_resolution": abs(dataset.transform.a),
    }
    if dataset.nodata is not None:
        facts["nodata"] = dataset.nodata
    if unit:
        facts["unit"] = unit
    return facts
