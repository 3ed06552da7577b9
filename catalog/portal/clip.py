"""A raster download cut to one region or a box: a Cloud Optimized GeoTIFF of the pixels of one
published raster (one step of a time series) inside a region's bounding box, with the pixels
outside the region's polygon set to nodata, or inside a WGS 84 box.

Only our own published COGs are read, through a pixel window (the same window rule as the OGC
API Coverages provider, catalog.ogc.providers.cog), and the answer is bounded: its size is
estimated from the window before a pixel is read, and a clip above the limit
(settings.clip_max_bytes) is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio import features, warp
from rasterio.io import MemoryFile
from rasterio.windows import Window
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from catalog import settings
from catalog.core.languages import LANGUAGES
from catalog.core.pixel_window import OutsideGrid, pixel_window
from catalog.processes.layers import cached, read_features

ESTIMATE_NOTE = ("an estimate: width x height x bands x bytes per value, before compression "
                 "(the file is DEFLATE-compressed and usually smaller) and without overviews")


class ClipError(ValueError):
    """A request that cannot be answered; status is the HTTP status to answer it with,
    message_code (with params) names the refusal for the portal to say it in the page's
    language (strings.yml `problem.<code>`, checked by tests/test_message_codes.py)."""

    def __init__(self, message: str, status: int = 400, message_code: str | None = None,
                 params: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message_code = message_code
        self.params = params or {}


@dataclass(frozen=True)
class Area:
    """What to cut: a name for the file, a box in WGS 84 degrees and, for a region, its
    polygon (pixels outside it become nodata)."""
    name: str
    bbox: tuple[float, float, float, float]  # west, south, east, north
    outline: BaseGeometry | None = None


@dataclass(frozen=True)
class Plan:
    """The pixel window a clip reads and the size of its answer."""
    window: Window
    band: int
    dtype: str

    @property
    def bytes_per_value(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def size_bytes(self) -> int:
        return int(self.window.width) * int(self.window.height) * self.bytes_per_value

    def estimate(self) -> dict:
        limit = settings.clip_max_bytes()
        return {"width": int(self.window.width), "height": int(self.window.height), "bands": 1,
                "bytes_per_value": self.bytes_per_value, "bytes": self.size_bytes,
                "limit_bytes": limit, "allowed": self.size_bytes <= limit,
                "estimate": True, "note": ESTIMATE_NOTE}


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    """west,south,east,north in WGS 84 degrees, finite, in range and not empty."""
    try:
        values = tuple(float(v) for v in raw.split(","))
    except ValueError:
        raise ClipError(f"bbox: expected four numbers west,south,east,north, got {raw!r}") \
            from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ClipError(f"bbox: expected four finite numbers west,south,east,north, got {raw!r}")
    west, south, east, north = values
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ClipError("bbox: expected -180 <= west < east <= 180 and -90 <= south < north <= "
                        f"90 (WGS 84 degrees), got {list(values)}")
    return values


@cached(maxsize=2)
def region_outlines(regions_path: str) -> dict[str, tuple[dict[str, str], BaseGeometry]]:
    """{ISO 3166-2 code: ({language: name}, polygon)} of the published regions layer (property
    region_iso; names from name_ky/name_ru/name_en, the code where one is missing)."""
    return {props["region_iso"]: ({lang: props.get(f"name_{lang}") or props["region_iso"]
                                   for lang in LANGUAGES}, geometry)
            for props, geometry in read_features(regions_path)
            if props.get("region_iso") and geometry is not None}


def region_area(regions_path: str, code: str) -> Area:
    """The region with this code, cut to its polygon."""
    outlines = region_outlines(regions_path)
    if code not in outlines:
        raise ClipError(f"region: no region {code!r} with an outline; regions are "
                        f"{sorted(outlines)}")
    outline = outlines[code][1]
    return Area(code, tuple(outline.bounds), outline)


def plan(path: str, area: Area, band: int) -> Plan:
    """The window of every pixel overlapping the area's box (in the raster's CRS)."""
    with rasterio.open(path) as dataset:
        left, bottom, right, top = warp.transform_bounds("EPSG:4326", dataset.crs, *area.bbox,
                                                         densify_pts=21)
        try:
            window = pixel_window(dataset, left, bottom, right, top)
        except OutsideGrid as err:
            raise ClipError(str(err), message_code="clip_outside") from None
        return Plan(window, band, dataset.dtypes[band - 1])


def checked(clip_plan: Plan) -> Plan:
    """The plan, or 413 naming the limit and the size asked for."""
    limit = settings.clip_max_bytes()
    if clip_plan.size_bytes > limit:
        raise ClipError(
            f"the clip would hold {clip_plan.size_bytes:,} bytes ({clip_plan.window.width} x "
            f"{clip_plan.window.height} pixels x {clip_plan.bytes_per_value} bytes); the limit "
            f"is {limit:,} bytes: choose a smaller area or download the whole COG", 413,
            message_code="clip_too_large", params={"bytes": clip_plan.size_bytes, "limit": limit})
    return clip_plan


def clip_cog(path: str, area: Area, clip_plan: Plan, categorical: bool) -> bytes:
    """The window of one band as a COG (DEFLATE, overviews), pixels outside the region's
    polygon set to nodata. Class rasters get nearest-neighbour overviews (no mixed codes)."""
    window, band = clip_plan.window, clip_plan.band
    with rasterio.open(path) as dataset:
        data = dataset.read(band, window=window)
        transform = dataset.window_transform(window)
        nodata = dataset.nodata
        profile = {"driver": "COG", "width": int(window.width), "height": int(window.height),
                   "count": 1, "dtype": data.dtype, "crs": dataset.crs, "transform": transform,
                   "nodata": nodata, "compress": "DEFLATE",
                   "overview_resampling": "nearest" if categorical else "average"}
        if area.outline is not None:
            nodata = _nodata_for(data.dtype, nodata)
            profile["nodata"] = nodata
            outline = warp.transform_geom("EPSG:4326", dataset.crs, mapping(area.outline))
            outside = features.geometry_mask([outline], out_shape=data.shape,
                                             transform=transform)
            data[outside] = nodata
        description = dataset.descriptions[band - 1]
        units = dataset.units[band - 1]
    with MemoryFile() as memory:
        with memory.open(**profile) as target:
            target.write(data, 1)
            if description:
                target.set_band_description(1, description)
            if units:
                target.set_band_unit(1, units)
        return memory.read()


def _nodata_for(dtype: np.dtype, nodata: float | None) -> float:
    """The raster's nodata value; a raster without one gets NaN (floats) or its type's lowest
    value (integers) to mark the pixels outside the region."""
    if nodata is not None:
        return nodata
    return float("nan") if dtype.kind == "f" else int(np.iinfo(dtype).min)
