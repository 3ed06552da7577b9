"""Raster sources to Cloud Optimized GeoTIFFs, with the facts STAC needs (grid, statistics).

Nothing here reads a whole band: GDAL's COG driver copies block by block, and the statistics
are accumulated over the COG's 512 x 512 blocks (exact, combined with Chan's formula), so
memory stays flat whatever the raster's size (bench/raster_publish.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import rasterio.merge
import rasterio.shutil
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds

from catalog.convert import Asset, describe_file
from catalog.core.record import Band, BandStatistics, RasterFacts
from catalog.sources.content import driver_for


def convert_raster(
    source: Path, item_id: str, out_dir: Path, unit: str | None
) -> tuple[Asset, RasterFacts]:
    """Write <item_id>.tif as a COG: DEFLATE, predictor 2 for integers and 3 for floats."""
    target = out_dir / f"{item_id}.tif"
    with rasterio.open(source, driver=driver_for(source)) as src:
        _write_cog(src, target)
    facts = _describe(target, item_id, unit)
    asset = describe_file(target, "data", "Cloud Optimized GeoTIFF", ("data",))
    return asset, facts


def combine_items(items: list[Path], layer_id: str, out_dir: Path, unit: str | None,
                  time_series: bool) -> tuple[Asset, RasterFacts]:
    """The one layer of a dataset of several items, as <layer_id>-layer.tif (a COG): a time
    series stacks its items' first bands in order (band i = item i, named after it), tiles of
    a mosaic are merged (the first item wins where they overlap). `items` are COGs this
    pipeline wrote (the isolated reader converted them), opened with the GTiff driver only."""
    target = out_dir / f"{layer_id}-layer.tif"
    datasets = [rasterio.open(path, driver="GTiff") for path in items]
    try:
        if time_series:
            data = np.stack([d.read(1) for d in datasets])
            transform = datasets[0].transform
        else:
            data, transform = rasterio.merge.merge(datasets)
        profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1],
                   "width": data.shape[2], "dtype": data.dtype, "crs": datasets[0].crs,
                   "transform": transform, "nodata": datasets[0].nodata}
        names = [p.stem for p in items] if time_series else \
            [datasets[0].descriptions[0] or layer_id]
    finally:
        for dataset in datasets:
            dataset.close()
    with MemoryFile() as memory:
        with memory.open(**profile) as stacked:
            stacked.write(data)
            for index, name in enumerate(names, start=1):
                stacked.set_band_description(index, name)
        with memory.open() as stacked:
            _write_cog(stacked, target)
    asset = describe_file(target, "layer", "Cloud Optimized GeoTIFF: every item in one layer",
                          ("data", "layer"))
    return asset, _describe(target, layer_id, unit)


def _write_cog(src, target: Path) -> None:
    floating = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
    rasterio.shutil.copy(src, target, driver="COG", COMPRESS="DEFLATE",
                         PREDICTOR="3" if floating else "2", BLOCKSIZE="512", OVERVIEWS="AUTO",
                         RESAMPLING="AVERAGE", BIGTIFF="IF_SAFER")


def _describe(path: Path, item_id: str, unit: str | None) -> RasterFacts:
    with rasterio.open(path, driver="GTiff") as dataset:
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


def _band_facts(dataset, band: int, unit: str | None) -> Band:
    return Band(data_type=dataset.dtypes[band - 1], statistics=_band_statistics(dataset, band),
                spatial_resolution=abs(dataset.transform.a), nodata=dataset.nodata,
                unit=unit or None, name=dataset.descriptions[band - 1] or None)


class _Moments:
    """Count, extremes, mean and sum of squared deviations, merged block by block."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.minimum, self.maximum = np.inf, -np.inf

    def add(self, values: np.ndarray) -> None:
        if not values.size:
            return
        values = values.astype(np.float64, copy=False)
        count, mean = values.size, float(values.mean())
        m2 = float(np.square(values - mean).sum())
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))


def _band_statistics(dataset, band: int) -> BandStatistics | None:
    moments = _Moments()
    for _, window in dataset.block_windows(band):
        moments.add(dataset.read(band, window=window, masked=True).compressed())
    if not moments.count:
        return None
    return BandStatistics(
        minimum=moments.minimum,
        maximum=moments.maximum,
        mean=round(moments.mean, 4),
        stddev=round(float(np.sqrt(moments.m2 / moments.count)), 4),
        valid_percent=round(100.0 * moments.count / (dataset.width * dataset.height), 3),
    )
