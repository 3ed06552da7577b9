"""Site screening criteria on class rasters: land cover classes to include or exclude, degree of
urbanisation, climate zone. Each names classes of the raster that holds a role (`land-cover`,
`urbanisation`, `climate-zones`; docs/manifest.md), by the names of its class table; a cell
stays a candidate only when the raster's class under its centre passes every criterion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import reproject

from catalog.processes import inputs, layers

NO_CLASS = 255  # class rasters' nodata (outside the country): never passes a criterion
# input name -> (role of the class raster, True: keep the classes named, False: drop them)
CRITERIA = {
    "land_cover_include": ("land-cover", True),
    "land_cover_exclude": ("land-cover", False),
    "urbanisation": ("urbanisation", True),
    "climate_zones": ("climate-zones", True),
}
_TITLES = {
    "land_cover_include": "Land cover classes to keep",
    "land_cover_exclude": "Land cover classes to leave out",
    "urbanisation": "Degrees of urbanisation to keep",
    "climate_zones": "Climate zones to keep (Koppen-Geiger main groups)",
}
INPUTS = {
    name: {"title": _TITLES[name],
           "description": f"Class names of the dataset with role {role!r} (its class table, "
                         "e.g. /ogc/collections/<id>); no restriction by default.",
           "schema": {"type": "array", "minItems": 1, "maxItems": 64,
                      "items": {"type": "string", "maxLength": 64}},
           "minOccurs": 0, "maxOccurs": 1}
    for name, (role, _) in CRITERIA.items()
}


@dataclass(frozen=True)
class ClassCriterion:
    name: str  # the input
    dataset: str
    path: str
    codes: tuple[int, ...]
    classes: tuple[str, ...]
    keep: bool


def read(data: dict, paths: dict) -> tuple[ClassCriterion, ...]:
    """The class criteria given, checked against the live class tables (400 otherwise)."""
    return tuple(_criterion(name, data[name], paths) for name in CRITERIA if name in data)


def _criterion(name: str, value: Any, paths: dict) -> ClassCriterion:
    role, keep = CRITERIA[name]
    dataset = paths.get("datasets", {}).get(role)
    if dataset is None:
        raise inputs.InvalidInput(f"{name}: no published dataset holds the role {role!r}")
    raster = paths["rasters"][dataset]
    table = {c["name"]: c["value"] for c in raster.get("classes") or ()}
    if not isinstance(value, list) or not value or len(value) > 64 \
            or not all(isinstance(v, str) for v in value):
        raise inputs.InvalidInput(f"{name}: expected a list of class names of {dataset}: "
                                  f"{', '.join(table)}")
    unknown = [v for v in value if v not in table]
    if unknown:
        raise inputs.InvalidInput(f"{name}: {unknown[0]!r} is not a class of {dataset}; "
                                  f"its classes: {', '.join(table)}")
    return ClassCriterion(name, dataset, raster["path"], tuple(table[v] for v in value),
                          tuple(value), keep)


def cells_passing(criteria: tuple[ClassCriterion, ...], index: np.ndarray,
                  window: layers.Window, grid: Affine) -> np.ndarray:
    """For the window's cells at `index` (flat), True where every criterion passes."""
    passing = np.ones(index.size, dtype=bool)
    for criterion in criteria:
        codes = class_grid(criterion.path, window, grid).ravel()[index]
        chosen = np.isin(codes, criterion.codes)
        passing &= (codes != NO_CLASS) & (chosen if criterion.keep else ~chosen)
    return passing


def class_grid(path: str, window: layers.Window, grid: Affine) -> np.ndarray:
    """The class raster on the window of the analysis grid: the class under each cell centre
    (nearest neighbour: codes are never averaged)."""
    codes = np.full((window.height, window.width), NO_CLASS, dtype=np.uint8)
    with rasterio.open(path) as source:  # the analysis grid is EPSG:4326 (layers.terrain)
        reproject(rasterio.band(source, 1), codes, dst_transform=window.transform(grid),
                  dst_crs=layers.WGS84, dst_nodata=NO_CLASS, resampling=Resampling.nearest)
    return codes


def echo(criteria: tuple[ClassCriterion, ...]) -> dict[str, list[str]]:
    return {c.name: list(c.classes) for c in criteria}


def notes(criteria: tuple[ClassCriterion, ...]) -> dict[str, str]:
    """Which dataset each class criterion read (the outputs name their layers)."""
    return {c.name: f"classes of dataset {c.dataset}, under each cell's centre" for c in criteria}
