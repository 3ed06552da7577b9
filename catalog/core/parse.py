"""One parser each for the bbox, datetime and CRS values of requests.

Each service used to carry its own parser for these values, and they differed in ways clients
can see: which forms are accepted, in which order problems are found, and the words of the
answer. The parsing is done once, here; what differs is written down as rules that each
service passes in (`BBoxRules`, `DatetimeRules`, `CrsRules`, defined where the service lives,
with its own wording as `messages`), so a difference is a visible line instead of a second
parser. docs/architecture.md lists the rules of each service.

A value that cannot be used raises a `ParameterError` (`BBoxError`, `DatetimeError`,
`CrsError`): its message names the parameter, `param` holds the name and `problem` says what
is wrong in a word (the keys of the `messages` tables below).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

# The stable message code of each problem of these parsers (the portal says a refusal in the
# page's language from its code and params: catalog/portal/strings.yml `problem.<code>`, checked
# by tests/test_message_codes.py). Keys: (the error's `kind`, its `problem`).
PARSE_MESSAGE_CODES = {
    ("bbox", "type"): "bbox_shape", ("bbox", "count"): "bbox_shape",
    ("bbox", "number"): "bbox_shape", ("bbox", "finite"): "bbox_shape",
    ("bbox", "longitude"): "bbox_range", ("bbox", "latitude"): "bbox_range",
    ("bbox", "y_order"): "bbox_order", ("bbox", "x_order"): "bbox_order",
    ("bbox", "z_order"): "bbox_order", ("bbox", "empty"): "bbox_order",
    ("datetime", "type"): "datetime_invalid", ("datetime", "form"): "datetime_invalid",
    ("datetime", "empty"): "datetime_invalid", ("datetime", "lone_open"): "datetime_invalid",
    ("datetime", "slashes"): "datetime_invalid", ("datetime", "instant"): "datetime_invalid",
    ("datetime", "instant_value"): "datetime_invalid", ("datetime", "open"): "datetime_invalid",
    ("datetime", "order"): "datetime_order",
    ("crs", "type"): "crs_unsupported", ("crs", "syntax"): "crs_unsupported",
    ("crs", "not_allowed"): "crs_unsupported", ("crs", "unknown"): "crs_unsupported",
    ("filter", "type"): "filter_syntax", ("filter", "syntax"): "filter_syntax",
    ("filter", "depth"): "filter_syntax", ("filter", "value"): "filter_value",
    ("filter", "invalid"): "filter_invalid",
}


class ParameterError(ValueError):
    """A request value that cannot be used (HTTP 400); the message names the parameter.

    `message_code` and `params` say the problem for translation: given explicitly, or looked
    up from the error's kind and problem (PARSE_MESSAGE_CODES); params always hold `param`."""

    kind = "parameter"

    def __init__(self, param: str, message: str, problem: str = "invalid",
                 message_code: str | None = None, params: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.param = param
        self.problem = problem
        self.message_code = message_code or PARSE_MESSAGE_CODES.get((self.kind, problem))
        self.params = {"param": param, **(params or {})}


class BBoxError(ParameterError):
    """A bounding box that cannot be used."""

    kind = "bbox"


class DatetimeError(ParameterError):
    """A datetime instant or interval that cannot be used."""

    kind = "datetime"


class CrsError(ParameterError):
    """A coordinate reference system this server does not take."""

    kind = "crs"


def _fail(error: type[ParameterError], problem: str, defaults: Mapping[str, str],
          messages: Mapping[str, str], param: str, **fields: Any) -> ParameterError:
    template = messages.get(problem, defaults[problem])
    value = fields.get("value")
    params = {"value": value if isinstance(value, str) else str(value)}
    params["value"] = params["value"][:80]
    return error(param, template.format(param=param, **fields), problem, params=params)


# --- bbox -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BBox:
    """A box: minx, miny, maxx, maxy (and heights when given). minx > maxx crosses the
    antimeridian (when the rules allow it)."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    minz: float | None = None
    maxz: float | None = None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return self.minx, self.miny, self.maxx, self.maxy

    @property
    def crosses_antimeridian(self) -> bool:
        return self.minx > self.maxx

    def as_list(self) -> list[float]:
        """The numbers in the order OGC API and STAC write them."""
        if self.minz is None:
            return [self.minx, self.miny, self.maxx, self.maxy]
        return [self.minx, self.miny, self.minz, self.maxx, self.maxy, self.maxz]


BBOX_MESSAGES = {
    "type": "{param}: expected numbers minx,miny,maxx,maxy as text or as an array",
    "count": "{param}: expected 4 numbers minx,miny,maxx,maxy (or 6 with heights)",
    "number": "{param}: {item!r:.40} is not a number",
    "finite": "{param}: {item!r:.40} is not a finite number",
    "longitude": "{param}: longitude {item!r} is outside -180..180",
    "latitude": "{param}: latitude {item!r} is outside -90..90",
    "y_order": "{param}: miny is greater than maxy",
    "x_order": "{param}: minx is greater than maxx",
    "empty": "{param}: the box has no width or no height",
    "z_order": "{param}: minz is greater than maxz",
}


@dataclass(frozen=True)
class BBoxRules:
    """What a service takes as a bbox. Problems are looked for in this order: type, count
    (first when `count_first`), number (every item), count, finite (every item), longitude
    and latitude, y_order, x_order, empty, z_order; the first one found is reported."""

    sizes: tuple[int, ...] = (4, 6)
    text: bool = True  # 'minx,miny,maxx,maxy' text is read (else arrays only)
    number_text: bool = True  # array items may be numbers written as text
    count_first: bool = False
    lon_lat: bool = False  # longitudes within -180..180 and latitudes within -90..90
    antimeridian: bool = False  # minx > maxx is a box crossing the antimeridian
    empty: bool = True  # a box of no width or height (a line, a point) is taken
    z_ordered: bool = True  # minz > maxz is refused
    messages: Mapping[str, str] = field(default_factory=dict)  # problem -> str.format template


def parse_bbox(value: Any, param: str = "bbox", rules: BBoxRules = BBoxRules()) -> BBox:
    """A BBox from 'minx,miny,maxx,maxy' text or an array of numbers (4 or 6 with heights).

    Message templates may use {param}, {value} (as given) and {item} (the offending item).
    """
    def fail(problem: str, item: Any = None) -> BBoxError:
        return _fail(BBoxError, problem, BBOX_MESSAGES, rules.messages, param,  # type: ignore[return-value]
                     value=value, item=item)

    if isinstance(value, str) and rules.text:
        items = value.split(",")
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise fail("type")
    if rules.count_first and len(items) not in rules.sizes:
        raise fail("count")
    numbers = [_bbox_number(item, rules.number_text) for item in items]
    for item, number in zip(items, numbers, strict=True):
        if number is None:
            raise fail("number", item)
    if len(items) not in rules.sizes:
        raise fail("count")
    for item, number in zip(items, numbers, strict=True):
        if not math.isfinite(number):
            raise fail("finite", item)
    if len(numbers) == 6:
        minx, miny, minz, maxx, maxy, maxz = numbers
        x_items = (items[0], items[3])
        y_items = (items[1], items[4])
    else:
        minx, miny, maxx, maxy = numbers
        minz = maxz = None
        x_items = (items[0], items[2])
        y_items = (items[1], items[3])
    if rules.lon_lat:
        for item, number in zip(x_items, (minx, maxx), strict=True):
            if not -180 <= number <= 180:
                raise fail("longitude", item)
        for item, number in zip(y_items, (miny, maxy), strict=True):
            if not -90 <= number <= 90:
                raise fail("latitude", item)
    if miny > maxy:
        raise fail("y_order")
    if minx > maxx and not rules.antimeridian:
        raise fail("x_order")
    if not rules.empty and (minx == maxx or miny == maxy):
        raise fail("empty")
    if rules.z_ordered and minz is not None and minz > maxz:
        raise fail("z_order")
    return BBox(minx, miny, maxx, maxy, minz, maxz)


def _bbox_number(item: Any, number_text: bool) -> float | None:
    """The item as a float (infinite or NaN included); None when it is not a number."""
    if isinstance(item, bool):
        return None
    try:
        if isinstance(item, int | float):
            return float(item)
        if number_text and isinstance(item, str):
            return float(item)
    except ValueError:
        return None
    except OverflowError:  # an integer beyond floats: infinite for our purposes
        return math.inf
    return None


# --- datetime -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSpan:
    """A closed UTC interval; None is an open end. A date stands for its whole day (to its
    last millisecond, as SQLite's julianday() resolves)."""

    start: datetime | None
    end: datetime | None

    @property
    def unbounded(self) -> bool:
        return self.start is None and self.end is None

    def intersects(self, other: TimeSpan) -> bool:
        return (self.end is None or other.start is None or self.end >= other.start) and (
            self.start is None or other.end is None or self.start <= other.end
        )

    @classmethod
    def instant(cls, moment: datetime) -> TimeSpan:
        """The span of one moment (a naive date-time is UTC)."""
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        return cls(moment, moment)

    @classmethod
    def day(cls, day: date) -> TimeSpan:
        """The span of one whole day, UTC."""
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return cls(start, start.replace(hour=23, minute=59, second=59, microsecond=999000))


DATETIME_MESSAGES = {
    "type": "{param}: expected an RFC 3339 date-time or an interval start/end",
    "form": "{param}: {value!r} must be an RFC 3339 instant or an interval start/end",
    "empty": "{param}: empty value",
    "lone_open": "{param}: empty value",
    "slashes": "{param}: '{value}' has more than one '/'",
    "instant": "{param}: '{item}' is not an RFC 3339 date or date-time",
    "instant_value": "{param}: '{item}' is not a valid date-time ({detail})",
    "open": "{param}: an interval needs at least one end",
    "order": "{param}: interval start is after its end",
}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class DatetimeRules:
    """What a service takes as a datetime: an instant, or 'start/end' with '..' or '' for an
    open end. Problems are looked for in this order: type, form, empty or lone_open, slashes,
    instant (start, then end), open, order."""

    rfc3339: bool = False  # only RFC 3339 date-times with a time zone; else ISO 8601 as
    #                        Python reads it, dates (whole days) and naive times (UTC) included
    z_offset: bool = False  # ISO: read 'Z' as '+00:00' first
    strip: bool = True  # spaces around the value are ignored
    lone_open: bool = False  # a lone '' or '..' constrains nothing (else an error)
    forms_refused: tuple[str, ...] = ()  # whole values refused as they are (problem 'form')
    open_interval: bool = True  # '../..' (open at both ends) constrains nothing
    ordered: bool = True  # an interval starting after its end is refused
    messages: Mapping[str, str] = field(default_factory=dict)


def parse_datetime(value: Any, param: str = "datetime",
                   rules: DatetimeRules = DatetimeRules()) -> TimeSpan:
    """The interval a datetime parameter names (an instant is a span of one moment, a date
    one of a whole day). Templates may use {param}, {value}, {item} (one end) and {detail}."""
    def fail(problem: str, item: Any = None, detail: str = "") -> DatetimeError:
        return _fail(DatetimeError, problem, DATETIME_MESSAGES, rules.messages, param,  # type: ignore[return-value]
                     value=value, item=item, detail=detail)

    if not isinstance(value, str):
        raise fail("type")
    if value in rules.forms_refused:
        raise fail("form")
    text = value.strip() if rules.strip else value
    if text in ("", ".."):
        if rules.lone_open:
            return TimeSpan(None, None)
        raise fail("empty" if text == "" else "lone_open", text)
    parts = text.split("/")
    if len(parts) > 2:
        raise fail("slashes")
    if len(parts) == 1:
        return _instant_span(parts[0], rules, fail)
    start = None if parts[0] in ("", "..") else _instant_span(parts[0], rules, fail).start
    end = None if parts[1] in ("", "..") else _instant_span(parts[1], rules, fail).end
    if start is None and end is None and not rules.open_interval:
        raise fail("open")
    if rules.ordered and start is not None and end is not None and start > end:
        raise fail("order")
    return TimeSpan(start, end)


def _instant_span(text: str, rules: DatetimeRules, fail) -> TimeSpan:
    if rules.rfc3339:
        return TimeSpan.instant(_rfc3339(text, fail))
    try:
        if _DATE.fullmatch(text):
            return TimeSpan.day(date.fromisoformat(text))
        return TimeSpan.instant(
            datetime.fromisoformat(text.replace("Z", "+00:00") if rules.z_offset else text))
    except (ValueError, OverflowError):  # Overflow: an offset moves it beyond year 1..9999
        raise fail("instant", text) from None


def _rfc3339(text: str, fail) -> datetime:
    """A strict RFC 3339 date-time (with a time zone), as UTC."""
    match = _RFC3339.match(text.strip())
    if not match:
        raise fail("instant", text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if zone not in "Zz" and (int(zone[1:3]) > 23 or int(zone[4:]) > 59):
            raise ValueError(f"UTC offset {zone} is not -23:59..+23:59")
        offset = timedelta(0) if zone in "Zz" else \
            (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:]))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          int((fraction or "0")[:6].ljust(6, "0")), tzinfo=timezone(offset))
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as err:
        raise fail("instant_value", text, str(err)) from None


def parse_instant(text: str, param: str, rules: DatetimeRules = DatetimeRules()) -> TimeSpan:
    """One instant or date (no interval): the span it stands for."""
    def fail(problem: str, item: Any = None, detail: str = "") -> DatetimeError:
        return _fail(DatetimeError, problem, DATETIME_MESSAGES, rules.messages, param,  # type: ignore[return-value]
                     value=text, item=item, detail=detail)

    return _instant_span(text, rules, fail)


# --- CRS ------------------------------------------------------------------------------------


CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
_CRS_URI = re.compile(r"(?P<scheme>https?)://www\.opengis\.net/def/crs/"
                      r"(?:OGC/1\.3/CRS84|EPSG/0/(?P<epsg>[1-9][0-9]{0,8}))")
_CRS_SHORT = re.compile(r"CRS84|EPSG:(?P<epsg>[1-9][0-9]{0,8})")

CRS_MESSAGES = {
    "type": "{param}: expected a CRS URI such as " + CRS84_URI,
    "syntax": "{param}: expected " + CRS84_URI + " or " + EPSG_URI + "{{code}}",
    "not_allowed": "{param}: {value!r} is not supported here",
    "unknown": "{param}: EPSG:{epsg} is not a coordinate reference system PROJ knows",
}


@dataclass(frozen=True)
class Crs:
    """A CRS named by a request: CRS84 (longitude, latitude) or an EPSG code."""

    epsg: int | None  # None for CRS84

    @property
    def is_crs84(self) -> bool:
        return self.epsg is None

    @property
    def uri(self) -> str:
        return CRS84_URI if self.epsg is None else f"{EPSG_URI}{self.epsg}"

    def to_pyproj(self, param: str = "crs", messages: Mapping[str, str] | None = None):
        """The pyproj CRS; CrsError when PROJ does not know the EPSG code."""
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        if self.epsg is None:
            return CRS.from_string("OGC:CRS84")
        try:
            return CRS.from_epsg(self.epsg)
        except CRSError:
            raise _fail(CrsError, "unknown", CRS_MESSAGES, messages or {}, param,
                        value=self.uri, epsg=self.epsg) from None


@dataclass(frozen=True)
class CrsRules:
    """What a service takes as a CRS: OGC CRS URIs (http://www.opengis.net/def/crs/OGC/1.3/
    CRS84 or .../EPSG/0/{code}), and, where the rules say so, other spellings."""

    https: bool = True  # https:// URIs as well
    short_forms: bool = False  # 'CRS84' and 'EPSG:{code}'
    integers: bool = False  # an EPSG code as an integer
    allowed: frozenset[int | None] | None = None  # EPSG codes taken (None in it: CRS84); all
    messages: Mapping[str, str] = field(default_factory=dict)


def parse_crs(value: Any, param: str = "crs", rules: CrsRules = CrsRules()) -> Crs:
    """The CRS a parameter names. Never free text handed to PROJ: only the forms above.
    Templates may use {param} and {value}."""
    def fail(problem: str) -> CrsError:
        return _fail(CrsError, problem, CRS_MESSAGES, rules.messages, param,  # type: ignore[return-value]
                     value=value)

    if isinstance(value, int) and not isinstance(value, bool) and rules.integers:
        if not 0 < value < 10**9:
            raise fail("syntax")
        crs = Crs(value)
    elif isinstance(value, str):
        match = _CRS_URI.fullmatch(value)
        if match is not None and (rules.https or match["scheme"] == "http"):
            crs = Crs(int(match["epsg"]) if match["epsg"] else None)
        elif rules.short_forms and (short := _CRS_SHORT.fullmatch(value)):
            crs = Crs(int(short["epsg"]) if short["epsg"] else None)
        else:
            raise fail("syntax")
    else:
        raise fail("type")
    if rules.allowed is not None and crs.epsg not in rules.allowed:
        raise fail("not_allowed")
    return crs


def whole_number(text: str, lowest: int, highest: int) -> int | None:
    """`text` as a whole number from `lowest` to `highest` (0 <= lowest), in ASCII digits only
    (str.isdigit alone takes '²' and '٣'); None when it is not one. Thousands of digits are
    refused before int() sees them: past 4,300 it raises instead of answering."""
    significant = (text.lstrip("0") or "0") if text.isascii() and text.isdigit() else ""
    if not significant or len(significant) > len(str(highest)):
        return None
    value = int(significant)
    return value if lowest <= value <= highest else None
