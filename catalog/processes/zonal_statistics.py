"""zonal-statistics: count, min, max, mean, standard deviation and histogram of a published
raster's cells inside an area.

A cell belongs to the area when its centre lies inside the area (GDAL's rasterisation rule);
nodata cells are left out and counted apart. The standard deviation is the population one
(ddof = 0). The histogram has `bins` equal bins over [histogram_min, histogram_max], by
default over [min, max]; cells outside an explicit range are not counted in it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from catalog.processes import inputs, layers
from catalog.processes.base import (
    AREA_INPUT,
    JSON,
    REGION_INPUT,
    Budget,
    CatalogProcessor,
    rounded,
)
from catalog.processes.inputs import InvalidInput

MAX_CELLS = 20_000_000  # cells in the area's bounding window; bounds time and memory
MAX_BINS = 1000

PROCESS_METADATA = {
    "version": "1.0.0",
    "id": "zonal-statistics",
    "title": {"en": "Zonal statistics of a raster",
              "ru": "Зональная статистика растра",
              "ky": "Растрдын зоналдык статистикасы"},
    "description": {
        "en": "Count, minimum, maximum, mean, standard deviation and histogram of a published "
              "raster (elevation, slope, ...) over an area, a region or the whole country. "
              "Cells count when their centre lies inside the area; nodata cells are left out.",
        "ru": "Количество, минимум, максимум, среднее, стандартное отклонение и гистограмма "
              "опубликованного растра по области, региону или всей стране.",
        "ky": "Жарыяланган растрдын аймак, регион же бүт өлкө боюнча саны, минимуму, "
              "максимуму, орточосу, стандарттык четтөөсү жана гистограммасы.",
    },
    "jobControlOptions": ["sync-execute", "async-execute"],
    "outputTransmission": ["value"],
    "keywords": ["zonal statistics", "raster", "elevation", "slope", "histogram"],
    "inputs": {
        "raster": {
            "title": "Raster",
            "description": "Id of a published raster dataset.",
            "schema": {"type": "string", "enum": []},  # filled from the live release
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "area": AREA_INPUT,
        "region": REGION_INPUT,
        "band": {"title": "Band", "description": "Band number (1 = first).",
                 "schema": {"type": "integer", "minimum": 1, "default": 1},
                 "minOccurs": 0, "maxOccurs": 1},
        "bins": {"title": "Histogram bins", "description": "Number of equal-width bins.",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_BINS,
                            "default": 20},
                 "minOccurs": 0, "maxOccurs": 1},
        "histogram_min": {"title": "Histogram lower edge",
                          "description": "Lower edge of the first bin (default: the minimum).",
                          "schema": {"type": "number"}, "minOccurs": 0, "maxOccurs": 1},
        "histogram_max": {"title": "Histogram upper edge",
                          "description": "Upper edge of the last bin (default: the maximum).",
                          "schema": {"type": "number"}, "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {
        "statistics": {
            "title": "Statistics",
            "description": "count, nodata_count, min, max, mean, std (population), histogram "
                           "{edges, counts}, with the raster, band, unit and area used.",
            "schema": {"type": "object", "contentMediaType": JSON},
        },
    },
    "example": {"inputs": {"raster": "elevation", "region": "KG-C", "bins": 10}},
}


class ZonalStatisticsProcessor(CatalogProcessor):
    METADATA = PROCESS_METADATA

    def describe(self) -> dict:
        metadata = super().describe()
        metadata["inputs"]["raster"]["schema"]["enum"] = sorted(self._numeric_rasters())
        if not all(self.layers.get(role) for role in ("settlements", "elevation")):
            metadata["inputs"].pop("region", None)
        return metadata

    def compute(self, data: dict, budget: Budget, wanted: list[str]) -> dict[str, Any]:
        inputs.check_names(data, self.metadata["inputs"])
        rasters = self._numeric_rasters()
        name = data.get("raster")
        if isinstance(name, str) and name in self.layers.get("rasters", {}) \
                and name not in rasters:
            raise InvalidInput(f"raster: {name!r} holds class codes, whose mean or histogram "
                               f"means nothing; numeric rasters: {', '.join(sorted(rasters))}")
        if name is None:
            raise InvalidInput("raster: missing; published rasters: " + ", ".join(sorted(rasters)))
        if not isinstance(name, str) or name not in rasters:  # a dict here is unhashable
            raise InvalidInput(f"raster: unknown raster {name!r}; published rasters: "
                               f"{', '.join(sorted(rasters))}")
        raster = rasters[name]
        info = layers.raster_info(raster["path"])
        band = inputs.number(data, "band", 1, 1, info.count, integer=True)
        bins = inputs.number(data, "bins", 20, 1, MAX_BINS, integer=True)
        low, high = inputs.number_range(data, "histogram_min", "histogram_max", -1e300, 1e300)
        if low is not None and high is not None and low == high:
            raise InvalidInput("histogram_min must be less than histogram_max")
        area = inputs.area(data, layers.boundary(self.layers["boundary"]), self._regions())
        stats = zonal_statistics(info, band, area.geometry, bins, (low, high), budget)
        stats.update(raster=name, version=raster.get("version"), unit=raster.get("unit"),
                     area={"kind": area.kind, "region": area.region},
                     sources=self._sources(name, area))
        return {"statistics": stats}

    def _sources(self, raster: str, area: inputs.Area) -> dict[str, str]:
        """The dataset the values come from and the one that drew the area: a region's
        outline, else the country boundary (the whole country, or what it clips of a drawn
        area)."""
        datasets = self.layers.get("datasets", {})
        outline = datasets.get("regions") if area.kind == "region" else datasets.get("boundary")
        return {"values": raster, "area": outline}

    def _numeric_rasters(self) -> dict:
        """The rasters of quantities (elevation, slope): class rasters hold codes."""
        return {name: raster for name, raster in self.layers.get("rasters", {}).items()
                if not raster.get("classes")}

    def _regions(self) -> dict:
        if not all(self.layers.get(role) for role in ("regions", "settlements", "elevation")):
            return {}
        return self.regions().by_code


def zonal_statistics(info: layers.RasterInfo, band: int, area: BaseGeometry, bins: int,
                     histogram_range: tuple[float | None, float | None],
                     budget: Budget) -> dict[str, Any]:
    """Statistics of the band's cells whose centre lies inside area (area in CRS84)."""
    grid = info.transform
    if grid.b != 0 or grid.d != 0 or grid.e >= 0:
        raise InvalidInput("raster: only north-up grids are supported")
    geometry = _in_raster_crs(area, info)
    window = layers.window_of(geometry.bounds, grid, info.width, info.height)
    if window.cells > MAX_CELLS:
        raise InvalidInput(f"area: covers {window.cells:,} cells of this raster; at most "
                           f"{MAX_CELLS:,} per request: use a smaller area")
    inside = layers.cells_inside(geometry, window, grid)
    budget.check("reading the raster")
    values = layers.read_band(info, band, window)
    valid = layers.valid_cells(values, info.nodata)
    selected = values[inside & valid].astype(np.float64)
    budget.check("statistics")
    result: dict[str, Any] = {
        "band": band,
        "cell_rule": "cells whose centre lies inside the area; nodata cells left out",
        "count": int(selected.size),
        "nodata_count": int(np.count_nonzero(inside & ~valid)),
    }
    result.update(_summary(selected, bins, histogram_range))
    return result


def _summary(values: np.ndarray, bins: int,
             histogram_range: tuple[float | None, float | None]) -> dict[str, Any]:
    if values.size == 0:
        return {"min": None, "max": None, "mean": None, "std": None,
                "histogram": {"edges": [], "counts": []}}
    low, high = float(values.min()), float(values.max())
    range_low = histogram_range[0] if histogram_range[0] is not None else low
    range_high = histogram_range[1] if histogram_range[1] is not None else high
    if range_low > range_high:
        raise InvalidInput(f"histogram range [{range_low:g}, {range_high:g}] is empty: its "
                           "lower edge is above its upper edge")
    counts, edges = np.histogram(values, bins=bins, range=(range_low, range_high))
    return {
        "min": low, "max": high, "mean": rounded(values.mean(), 6),
        "std": rounded(values.std(), 6),
        "histogram": {"edges": [rounded(e, 6) for e in edges],
                      "counts": [int(c) for c in counts]},
    }


def _in_raster_crs(area: BaseGeometry, info: layers.RasterInfo) -> BaseGeometry:
    if info.crs.equals(layers.WGS84) or info.crs.to_epsg() == 4326:
        return area
    to_raster = Transformer.from_crs("OGC:CRS84", info.crs, always_xy=True)
    dense = shapely.segmentize(area, 0.01)  # edges are curves in another CRS
    return shapely.transform(dense, lambda xy: np.column_stack(to_raster.transform(*xy.T)))
