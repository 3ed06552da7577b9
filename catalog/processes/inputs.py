"""Reading and checking process inputs: every problem is an InvalidInput (HTTP 400) that names
the input and says what is wrong."""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import shapely
from pygeoapi.process.base import ProcessorExecuteError
from shapely.geometry.base import BaseGeometry

from catalog.core.parse import (
    CRS84_URI,
    BBoxError,
    BBoxRules,
    CrsError,
    CrsRules,
    parse_bbox,
    parse_crs,
)

MAX_AREA_VERTICES = 50_000
# The `area` input's bbox (catalog/core/parse.py): four JSON numbers in degrees with some area;
# its crs: CRS84 or EPSG:4326 (read as longitude, latitude), http URIs or short names.
_BBOX_SHAPE = "{param}: bbox {value!r} must be four numbers west, south, east, north"
_BBOX_ORDER = ("{param}: bbox {value!r}: west must be less than east and south less than "
               "north")
BBOX_RULES = BBoxRules(sizes=(4,), text=False, number_text=False, lon_lat=True, empty=False,
                       messages={
    "type": _BBOX_SHAPE, "count": _BBOX_SHAPE, "number": _BBOX_SHAPE, "finite": _BBOX_SHAPE,
    "longitude": "{param}: longitude {item!r} is outside -180..180 (CRS84: lon, lat)",
    "latitude": "{param}: latitude {item!r} is outside -90..90 (CRS84: lon, lat)",
    "y_order": _BBOX_ORDER, "x_order": _BBOX_ORDER, "empty": _BBOX_ORDER,
})
_CRS_REFUSED = "{param}: bbox crs {value!r} is not supported; use CRS84 (lon/lat)"
CRS_RULES = CrsRules(https=False, short_forms=True, allowed=frozenset({None, 4326}), messages={
    "type": _CRS_REFUSED, "syntax": _CRS_REFUSED, "not_allowed": _CRS_REFUSED})


# The refusals a person can provoke from the portal's analysis form, by stable message code:
# the English text (the `description` API clients read) and the params the portal fills into
# its own translation (strings.yml `problem.<code>`, checked by tests/test_processes.py).
MESSAGES = {
    "range_order": "{low} ({low_value:g}) is greater than {high} ({high_value:g})",
    "out_of_range": "{name}: {value!r} is out of range; allowed {low:g} to {high:g}",
    "outside_country": "area: lies outside Kyrgyzstan (it does not overlap the country boundary)",
    "too_many_cells": "area: spans {cells:,} cells; at most {most:,}",
    "not_a_number": "{name}: {value!r} is not a number",
    "not_whole_number": "{name}: {value!r} must be a whole number",
    "not_one_of": "{name}: {value!r} is not one of {options}",
    "not_boolean": "{name}: {value!r} must be true or false",
    "region_unknown": "region: {value!r} is not a region code; codes: {codes}",
    "area_vertices": "area: {count} vertices; at most {most}",
    "area_empty": "area: the polygon is empty",
    "area_not_valid": "area: the polygon is not valid; a ring must not cross itself or another "
                      "ring",
}
# The refusal of the execution running in this context (an InvalidInput, or a 503 of a busy
# server: OverBudget, ServerBusy), for the /ogc edge to add its code and params to pygeoapi's
# exception body (catalog/ogc/routes.py).
last_refusal: ContextVar[ProcessorExecuteError | None] = ContextVar("last_refusal",
                                                                    default=None)


class InvalidInput(ProcessorExecuteError):
    """A process input is missing, malformed or out of range: HTTP 400 with this message.
    A refusal made with `coded` also carries a message code and its params."""
    http_status_code = HTTPStatus.BAD_REQUEST
    ogc_exception_code = "InvalidParameterValue"

    def __init__(self, message: str, code: str | None = None, params: dict | None = None):
        super().__init__(message, user_msg=message)
        self.code = code
        self.params = params or {}

    @classmethod
    def coded(cls, code: str, **params: Any) -> InvalidInput:
        return cls(MESSAGES[code].format(**params), code, params)


def check_names(data: dict, allowed: dict) -> None:
    if not isinstance(data, dict):
        raise InvalidInput("inputs must be a JSON object of input name to value")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown input {unknown[0]!r}; this process takes: "
                           f"{', '.join(sorted(allowed))}")


def number(data: dict, name: str, default: float | None, low: float, high: float,
           integer: bool = False) -> float | None:
    """A number in [low, high], or default when the input is absent or null."""
    value = _unwrap(data.get(name))
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput.coded("not_a_number", name=name, value=value)
    if integer and value != int(value):
        raise InvalidInput.coded("not_whole_number", name=name, value=value)
    if not low <= value <= high:
        raise InvalidInput.coded("out_of_range", name=name, value=value, low=low, high=high)
    return int(value) if integer else float(value)


def choice(data: dict, name: str, default: str, options: tuple[str, ...]) -> str:
    value = _unwrap(data.get(name))
    if value is None:
        return default
    if value not in options:
        raise InvalidInput.coded("not_one_of", name=name, value=value,
                                 options=", ".join(options))
    return value


def number_range(data: dict, low_name: str, high_name: str, low: float, high: float
                 ) -> tuple[float | None, float | None]:
    """Two optional bounds, each within [low, high], the first not above the second."""
    first = number(data, low_name, None, low, high)
    second = number(data, high_name, None, low, high)
    if first is not None and second is not None and first > second:
        raise InvalidInput.coded("range_order", low=low_name, low_value=first, high=high_name,
                                 high_value=second)
    return first, second


@dataclass(frozen=True)
class Area:
    """Where a process computes: the requested geometry clipped to the country."""
    kind: str  # country, region, bbox or polygon
    geometry: BaseGeometry  # inside the country, in degrees (CRS84)
    requested: BaseGeometry  # as given (the country or region outline for those kinds)
    region: str | None = None  # region code when kind == 'region'


def area(data: dict, country: BaseGeometry, regions: dict[str, Any] | None = None,
         cities: bool = False) -> Area:
    """The `area` (bbox or GeoJSON polygon) or `region` input; the whole country by default.
    With cities, a region without a polygon (Osh City) is accepted as its point."""
    given, region = data.get("area"), _unwrap(data.get("region"))
    if given is not None and region is not None:
        raise InvalidInput("give either area or region, not both")
    if region is not None:
        return _region_area(region, regions or {}, cities)
    if given is None:
        return Area("country", country, country)
    kind, geometry = _requested_geometry(given)
    inside = geometry.intersection(country)
    if inside.is_empty or inside.area == 0:
        raise InvalidInput.coded("outside_country")
    return Area(kind, inside, geometry)


def _region_area(code: Any, regions: dict[str, Any], cities: bool) -> Area:
    if not isinstance(code, str) or code.upper() not in regions:
        raise InvalidInput.coded("region_unknown", value=code, codes=", ".join(sorted(regions)))
    found = regions[code.upper()]
    if found.outline is None and cities and found.place is not None:
        return Area("region", found.place, found.place, found.code)
    if found.outline is None:
        raise InvalidInput(f"region: {found.code} has no published outline (it lies inside "
                           f"{found.within or 'another region'}); give an area instead")
    return Area("region", found.outline, found.outline, found.code)


def _requested_geometry(value: Any) -> tuple[str, BaseGeometry]:
    value = _unwrap(value)
    if isinstance(value, dict) and "bbox" in value:
        try:
            parse_crs(value.get("crs", CRS84_URI), "area", CRS_RULES)
        except CrsError as err:  # coded by the shared parser (PARSE_MESSAGE_CODES)
            raise InvalidInput(str(err), err.message_code, err.params) from None
        return "bbox", _bbox(value["bbox"])
    if isinstance(value, list):
        return "bbox", _bbox(value)
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidInput("area: must be a bbox ([west, south, east, north] or "
                           "{\"bbox\": [...]}) or a GeoJSON Polygon or MultiPolygon")
    return "polygon", _polygon(value)


def _bbox(values: Any) -> BaseGeometry:
    try:
        box = parse_bbox(values, "area", BBOX_RULES)
    except BBoxError as err:  # coded by the shared parser (PARSE_MESSAGE_CODES)
        raise InvalidInput(str(err), err.message_code, err.params) from None
    return shapely.box(*box.bounds)


def _polygon(value: dict) -> BaseGeometry:
    try:
        geometry = shapely.geometry.shape(value)
    except Exception as err:  # shapely raises several types for malformed coordinates
        raise InvalidInput(f"area: not a valid GeoJSON {value.get('type')}: {err}") from None
    coordinates = shapely.get_coordinates(geometry)
    if len(coordinates) > MAX_AREA_VERTICES:
        raise InvalidInput.coded("area_vertices", count=len(coordinates), most=MAX_AREA_VERTICES)
    if geometry.is_empty or not len(coordinates):
        raise InvalidInput.coded("area_empty")
    _check_lon_lat(coordinates[:, 0], coordinates[:, 1])
    if not geometry.is_valid:
        # A drawn area that crosses itself. GEOS's reason (English, with the crossing point) goes
        # into the API's description only: the pages' texts have no words for it.
        reason = shapely.is_valid_reason(geometry)
        raise InvalidInput(f"area: the polygon is not valid ({reason}); a ring must not cross "
                           "itself or another ring", "area_not_valid", {})
    return geometry


def _check_lon_lat(lons, lats) -> None:
    for lon in lons:
        if not math.isfinite(lon) or not -180 <= lon <= 180:
            raise InvalidInput(f"area: longitude {lon!r} is outside -180..180 (CRS84: lon, lat)")
    for lat in lats:
        if not math.isfinite(lat) or not -90 <= lat <= 90:
            raise InvalidInput(f"area: latitude {lat!r} is outside -90..90 (CRS84: lon, lat)")


def _unwrap(value: Any) -> Any:
    """The value of an OGC qualified input ({"value": ..., "mediaType": ...})."""
    if isinstance(value, dict) and "value" in value and set(value) <= {
            "value", "mediaType", "encoding", "schema"}:
        return value["value"]
    return value


def boolean(data: dict, name: str, default: bool) -> bool:
    value = _unwrap(data.get(name))
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput.coded("not_boolean", name=name, value=value)
    return value
