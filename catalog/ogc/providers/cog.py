"""OGC API Coverages over a published COG: a pygeoapi coverage provider with exact subsets.

pygeoapi's RasterioProvider cuts subsets with `rasterio.mask(crop=True)`, which adds an edge
row or column filled with nodata where the source has data, silently returns the whole grid
when only one axis is subset, and has no size bound; its CoverageJSON names every band "null"
(the band's description is read only from GRIB files), gives every band the values of all
bands, calls integers floats and sends nodata cells as numbers. This provider keeps its
constructor (the file, axes, CRS) and answers the provider interface itself (`fields`,
`get_fields`, `query`; nothing private read or written): it reads the exact pixel window that
intersects the request, accepts one or both axes, refuses huge answers and writes its own
CoverageJSON, each band under its own name and unit, nodata cells as null (docs/upstream.md).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import rasterio
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderRequestEntityTooLargeError
from pygeoapi.provider.rasterio_ import RasterioProvider
from pygeoapi.util import read_data
from pyproj import CRS, Transformer
from pyproj.exceptions import ProjError
from rasterio.io import MemoryFile
from rasterio.windows import Window

from catalog.core.assets import VSIS3
from catalog.core.parse import CrsError, CrsRules, parse_crs
from catalog.core.pixel_window import OutsideGrid, pixel_window

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MAX_VALUES = 40_000_000  # pixels x bands; the whole sample DEM is 2.7 million
# bbox-crs: an OGC CRS URI (CRS84 or EPSG, http or https) or, from pygeoapi, an EPSG code.
_CRS_SYNTAX = ("{param}: expected http://www.opengis.net/def/crs/OGC/1.3/CRS84 or "
               "http://www.opengis.net/def/crs/EPSG/0/{{code}}")
BBOX_CRS_RULES = CrsRules(integers=True, messages={"type": _CRS_SYNTAX, "syntax": _CRS_SYNTAX})


def whole_file(path: str) -> bytes:
    """The COG's bytes as published, from disk or, for a /vsis3/ path, from the bucket."""
    if path.startswith(VSIS3):
        from catalog.store.s3_assets import read_vsis3  # boto3 only where a bucket is used

        return read_vsis3(path)
    return read_data(path)


class CogProvider(RasterioProvider):
    """Coverage provider for one north-up raster in a geographic or projected CRS."""

    def __init__(self, provider_def: dict):
        self.band_fields: dict[str, dict] | None = None
        # A categorical raster's class table (manifest raster.classes, catalog/ogc/config.py).
        self.classes: list[dict] = list(provider_def.get("classes") or [])
        # pygeoapi's: opens the raster and sets the public axes, crs and num_bands (and the
        # extent description its collection pages read).
        super().__init__(provider_def)

    def get_fields(self) -> dict:
        """Band number (as text) -> its JSON schema: title (the band's name), type, unit."""
        if self.band_fields is None:
            with rasterio.open(self.data) as dataset:
                self.band_fields = _band_fields(dataset)
        return copy.deepcopy(self.band_fields)  # a copy: pygeoapi edits what it gets

    @property
    def fields(self) -> dict:
        # BaseProvider.fields answers a cache each provider fills itself (a private
        # attribute); ours answers get_fields().
        return self.get_fields()

    def query(
        self,
        properties=None,
        subsets=None,
        bbox=None,
        bbox_crs=4326,
        datetime_=None,
        format_="json",
        **kwargs,
    ):
        # datetime_ was checked against the collection's temporal extent by pygeoapi; the
        # grid is valid over that whole extent, so there is nothing more to cut in time.
        subsets = subsets or {}
        bands = [int(b) for b in properties] if properties else None
        if not bands and not subsets and not bbox and format_ != "json":
            return whole_file(self.data)
        with rasterio.open(self.data) as dataset:
            window = self._window(dataset, subsets, bbox or [], bbox_crs)
            _check_bands(bands, dataset.count)
            _check_size(window, len(bands) if bands else dataset.count)
            data = dataset.read(indexes=bands, window=window)
            meta = dict(dataset.meta)
            meta.update(
                driver=self.native_format,
                height=int(window.height),
                width=int(window.width),
                transform=dataset.window_transform(window),
            )
            if bands:
                meta["count"] = len(bands)
            bounds = rasterio.windows.bounds(window, dataset.transform)
            if format_ == "json":
                # CoverageJSON axis start/stop are pixel centres, not the grid's outer edges.
                x_res, y_res = dataset.res
                centres = [
                    bounds[0] + x_res / 2,
                    bounds[1] + y_res / 2,
                    bounds[2] - x_res / 2,
                    bounds[3] - y_res / 2,
                ]
                return self.coverage_json(dataset, window, centres, bands, data)
        with MemoryFile() as memory:
            with memory.open(**meta, compress="DEFLATE") as target:
                target.write(data)
            return memory.read()

    def _window(self, dataset, subsets: dict, bbox: list, bbox_crs) -> Window:
        x_axis, y_axis = self.axes
        if bbox and (x_axis in subsets or y_axis in subsets):
            raise ProviderInvalidQueryError(
                user_msg="bbox and subset by coordinates are exclusive: use one of them"
            )
        left, bottom, right, top = dataset.bounds
        if bbox:
            left, bottom, right, top = _to_dataset_crs(bbox, bbox_crs, dataset.crs)
        if x_axis in subsets:
            left, right = _ordered(subsets[x_axis], x_axis)
        if y_axis in subsets:
            bottom, top = _ordered(subsets[y_axis], y_axis)
        try:
            return pixel_window(dataset, left, bottom, right, top)
        except OutsideGrid as err:
            raise ProviderInvalidQueryError(user_msg=str(err)) from None


    def coverage_json(self, dataset, window: Window, centres: list[float],
                      bands: list[int] | None, data: np.ndarray) -> dict:
        """The window as a CoverageJSON grid: one parameter and one range per band, named
        after the band; cells holding the band's nodata value (or NaN) are null."""
        indexes = bands or list(dataset.indexes)
        minx, miny, maxx, maxy = centres
        coverage = {
            "type": "Coverage",
            "domain": {
                "type": "Domain",
                "domainType": "Grid",
                "axes": {"x": {"start": minx, "stop": maxx, "num": int(window.width)},
                         "y": {"start": maxy, "stop": miny, "num": int(window.height)}},
                "referencing": [{"coordinates": ["x", "y"], "system": _crs_system(dataset.crs)}],
            },
            "parameters": {},
            "ranges": {},
        }
        for position, index in enumerate(indexes):
            name = _band_name(dataset, index)
            unit = dataset.units[index - 1] or None
            coverage["parameters"][name] = {
                "type": "Parameter",
                "description": {"en": name},
                "unit": {"symbol": unit},
                "observedProperty": {"id": name, "label": {"en": name}},
            }
            if self.classes:
                _add_categories(coverage["parameters"][name], self.classes)
            coverage["ranges"][name] = {
                "type": "NdArray",
                "dataType": _coverage_json_type(dataset.dtypes[index - 1]),
                "axisNames": ["y", "x"],
                "shape": [int(window.height), int(window.width)],
                "values": _values(data[position], dataset.nodata),
            }
        return coverage


def _add_categories(parameter: dict, classes: list[dict]) -> None:
    """Make a parameter categorical (CoverageJSON): each class a category with its ky/ru/en
    title and colour, encoded by its pixel value; a categorical parameter has no unit."""
    parameter.pop("unit", None)
    parameter["observedProperty"]["categories"] = [
        {"id": c["name"], "label": dict(c["title"]), "preferredColor": c["colour"]}
        for c in classes]
    parameter["categoryEncoding"] = {c["name"]: c["value"] for c in classes}


def _ordered(interval, axis: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in interval)
    except (TypeError, ValueError) as err:
        raise ProviderInvalidQueryError(user_msg=f"subset {axis}: give two numbers") from err
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ProviderInvalidQueryError(user_msg=f"subset {axis}: give two finite numbers")
    if low > high:
        raise ProviderInvalidQueryError(user_msg=f"subset {axis}: low {low} is above high {high}")
    return low, high


def _to_dataset_crs(bbox: list, bbox_crs, dataset_crs) -> tuple[float, ...]:
    source = _bbox_crs(bbox_crs)
    target = CRS.from_user_input(dataset_crs.to_wkt())
    if source == target:
        return tuple(bbox[:4])
    try:
        transformer = Transformer.from_crs(source, target, always_xy=True)
        bounds = transformer.transform_bounds(*bbox[:4], densify_pts=21)
    except ProjError as err:
        raise ProviderInvalidQueryError(
            user_msg=f"bbox: cannot be transformed from bbox-crs to the coverage's CRS ({err})"
        ) from None
    if not all(math.isfinite(value) for value in bounds):
        raise ProviderInvalidQueryError(user_msg="bbox: outside the area where bbox-crs is "
                                                 "defined")
    return bounds


def _bbox_crs(bbox_crs) -> CRS:
    """The CRS a request names in bbox-crs (catalog.core.parse.parse_crs): never free text
    handed to PROJ."""
    try:
        return parse_crs(bbox_crs, "bbox-crs", BBOX_CRS_RULES).to_pyproj("bbox-crs")
    except CrsError as err:
        raise ProviderInvalidQueryError(user_msg=str(err)) from None


def _check_size(window: Window, band_count: int) -> None:
    values = int(window.width) * int(window.height) * band_count
    if values > MAX_VALUES:
        raise ProviderRequestEntityTooLargeError(
            f"the subset has {values:,} values ({band_count} band(s)); the limit is "
            f"{MAX_VALUES:,}: request a smaller area or download the COG asset"
        )


def _check_bands(bands: list[int] | None, count: int) -> None:
    if bands and len(set(bands)) != len(bands):
        # Each repetition would be read and sent again: properties=1,1,1,... multiplies the
        # answer (and the memory behind it) without limit.
        raise ProviderInvalidQueryError(user_msg="properties: a band is named more than once")
    for band in bands or []:
        if not 1 <= band <= count:
            raise ProviderInvalidQueryError(
                user_msg=f"properties: band {band} does not exist (the coverage has {count})"
            )


def _band_name(dataset, index: int) -> str:
    """The band's description (set at publish from the manifest), else band<N>."""
    return dataset.descriptions[index - 1] or f"band{index}"


def _band_fields(dataset) -> dict[str, dict]:
    fields = {}
    for index, dtype in zip(dataset.indexes, dataset.dtypes, strict=True):
        field = {"title": _band_name(dataset, index), "type": _schema_type(dtype)}
        if dataset.units[index - 1]:
            field["x-ogc-unit"] = dataset.units[index - 1]
        fields[str(index)] = field
    return fields


def _schema_type(dtype: str) -> str:
    return "integer" if np.issubdtype(np.dtype(dtype), np.integer) else "number"


def _coverage_json_type(dtype: str) -> str:
    return "integer" if np.issubdtype(np.dtype(dtype), np.integer) else "float"


def _values(band: np.ndarray, nodata: float | None) -> list:
    """Row by row; nodata and NaN cells as None (null)."""
    missing = np.isnan(band) if band.dtype.kind == "f" else np.zeros(band.shape, bool)
    if nodata is not None and not math.isnan(nodata):
        missing |= band == nodata
    values = band.astype(object)
    values[missing] = None
    return values.ravel().tolist()


def _crs_system(crs) -> dict:
    """CoverageJSON's reference system: CRS84 for geographic grids (whose axes are longitude
    and latitude), else the EPSG URI (pygeoapi wrote .../OGC/1.3/<code>, which names none)."""
    if crs is None or crs.is_geographic:
        return {"type": "GeographicCRS", "id": CRS84}
    return {"type": "ProjectedCRS", "id": f"http://www.opengis.net/def/crs/EPSG/0/{crs.to_epsg()}"}
