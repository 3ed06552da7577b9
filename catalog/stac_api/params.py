"""Request parameters of the STAC API -> checked, typed values (or InvalidQuery naming them).

GET query strings and POST bodies of /search share one set of checks. Nothing is dropped:
a parameter this API does not know answers 400, and so does a value it cannot apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape

from catalog.core.parse import (
    BBoxError,
    BBoxRules,
    CrsError,
    CrsRules,
    DatetimeError,
    DatetimeRules,
    parse_bbox,
    parse_crs,
    parse_datetime,
)
from catalog.safe_parse import UnsafeInput, nul_text_at, parse_json
from catalog.stac_index import cql
from catalog.stac_index.backend import (
    CollectionSearch,
    InvalidQuery,
    ItemSearch,
    SortKey,
    TimeRange,
)
from catalog.stac_index.sqlite_backend import julian_day

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000  # larger limits are lowered to this, as OGC API Features prescribes
MAX_LIST = 100  # ids, collections, sort keys, fields, q terms
MAX_TEXT = 4000  # characters in a q term, an id, a CQL2 text filter
GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                  "MultiPolygon", "GeometryCollection"}

# The STAC API's bbox, datetime and filter-crs (catalog/core/parse.py): WGS84 boxes that do
# not cross the antimeridian (heights allowed, unchecked); RFC 3339 date-times with a time
# zone, never bare dates; CRS84 only.
_BBOX_RANGE = ("{param}: expected WGS84 longitudes -180..180 and latitudes -90..90 "
               "with south <= north")
_BBOX_MESSAGES = {
    "count": "{param}: expected 4 numbers west,south,east,north (or 6 with heights)",
    "number": "{param}: {item!r:.40} is not a number",
    "finite": "{param}: {item!r:.40} is not a number",
    "longitude": _BBOX_RANGE, "latitude": _BBOX_RANGE, "y_order": _BBOX_RANGE,
    "x_order": "{param}: boxes crossing the antimeridian (west > east) are not supported; "
               "send two searches",
}
BBOX_RULES = BBoxRules(count_first=True, lon_lat=True, z_ordered=False, messages={
    **_BBOX_MESSAGES, "type": _BBOX_MESSAGES["count"]})
BBOX_JSON_RULES = BBoxRules(text=False, count_first=True, lon_lat=True, z_ordered=False,
                            messages={**_BBOX_MESSAGES, "type": "{param}: expected a JSON array "
                                                                "of 4 (or 6) numbers"})
_NOT_RFC3339 = "{param}: '{item:.60}' is not an RFC 3339 date-time (like 2024-05-01T00:00:00Z)"
DATETIME_RULES = DatetimeRules(rfc3339=True, open_interval=False, messages={
    "type": "{param}: expected an RFC 3339 date-time or interval",
    "empty": "{param}: expected an RFC 3339 date-time or interval",
    "lone_open": _NOT_RFC3339,
    "slashes": "{param}: an interval has one '/'",
    "instant": _NOT_RFC3339,
    "instant_value": "{param}: '{item:.60}' is not a valid date-time ({detail})",
    "open": "{param}: an interval needs at least one end",
    "order": "{param}: the interval starts after it ends",
})
_CRS84_ONLY = "{param}: only CRS84 (WGS84 longitude, latitude) is supported"
FILTER_CRS_RULES = CrsRules(allowed=frozenset({None}), messages={
    "type": _CRS84_ONLY, "syntax": _CRS84_ONLY, "not_allowed": _CRS84_ONLY})

SEARCH_PARAMS = frozenset({"bbox", "intersects", "datetime", "ids", "collections", "limit",
                           "filter", "filter-lang", "filter-crs", "sortby", "fields", "q",
                           "token"})
ITEMS_PARAMS = SEARCH_PARAMS - {"collections", "intersects", "ids"}
COLLECTIONS_PARAMS = frozenset({"bbox", "datetime", "q", "theme", "limit", "token"})


@dataclass(frozen=True)
class Fields:
    """fields extension: include None = every field, () = the default set."""

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


# -- entry points ----------------------------------------------------------------------------


def item_search_from_query(args: Mapping[str, str], allowed: frozenset[str] = SEARCH_PARAMS,
                           collection: str | None = None) -> tuple[ItemSearch, Fields]:
    """An ItemSearch from GET query parameters (each given once, as text)."""
    _known(args, allowed)
    lang = args.get("filter-lang", "cql2-text")
    return _item_search(args, lang, collection, text=True)


def item_search_from_body(body: Any) -> tuple[ItemSearch, Fields]:
    """An ItemSearch from a POST body (JSON object)."""
    if not isinstance(body, dict):
        raise InvalidQuery("body: expected a JSON object", message_code="json_body_not_object")
    _known(body, SEARCH_PARAMS)
    lang = body.get("filter-lang", "cql2-json")
    return _item_search(body, lang, None, text=False)


def collection_search_from_query(args: Mapping[str, str]) -> CollectionSearch:
    _known(args, COLLECTIONS_PARAMS)
    themes = _list(args.get("theme"), "theme") if "theme" in args else ()
    return CollectionSearch(
        limit=_limit(args.get("limit")),
        bbox=_bbox(args["bbox"]) if "bbox" in args else None,
        datetime=parse_datetime_range(args["datetime"]) if "datetime" in args else None,
        q=_q(args["q"]) if "q" in args else (),
        themes=themes,
        offset=_offset(args.get("token")),
    )


# -- item search ---------------------------------------------------------------------------


def _item_search(source: Mapping[str, Any], lang: Any, collection: str | None,
                 text: bool) -> tuple[ItemSearch, Fields]:
    def get(name: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        return parse(source[name]) if name in source else default

    if "bbox" in source and "intersects" in source:
        raise InvalidQuery("bbox, intersects: give one of them, not both",
                           message_code="bbox_and_intersects")
    collections = get("collections", lambda v: _list(v, "collections"), ())
    if collection is not None:
        collections = (collection,)
    search = ItemSearch(
        limit=_limit(source.get("limit")),
        collections=collections,
        ids=get("ids", lambda v: _list(v, "ids"), ()),
        bbox=get("bbox", _bbox if text else _bbox_json),
        intersects=get("intersects", _geometry),
        datetime=get("datetime", _datetime_value),
        filter=_filter(source, lang),
        sortby=get("sortby", _sortby if text else _sortby_json, ()),
        q=get("q", _q, ()),
        token=get("token", _token),
    )
    return search, get("fields", _fields_text if text else _fields_json, Fields())


def _known(args: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise InvalidQuery(f"{unknown[0]}: unknown parameter; this endpoint takes "
                           f"{', '.join(sorted(allowed))}", message_code="unknown_parameter",
                           params={"name": unknown[0][:80]})


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,12}", value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidQuery(f"limit: expected a positive integer, got {value!r:.40}",
                           message_code="limit_invalid", params={"value": f"{value!s:.40}"})
    return min(value, MAX_LIMIT)


def _offset(value: str | None) -> int:
    if value is None:
        return 0
    if not re.fullmatch(r"[0-9]{1,9}", value):  # not isdigit(): '²' is a digit to it
        raise InvalidQuery("token: not a token this server issued",
                           message_code="page_token_invalid")
    return int(value)


def _list(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidQuery(f"{name}: expected a list of non-empty strings")
    if not value or len(value) > MAX_LIST or any(len(v) > MAX_TEXT for v in value):
        raise InvalidQuery(f"{name}: expected 1 to {MAX_LIST} values")
    return tuple(value)


def _token(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 2000:
        raise InvalidQuery("token: not a token this server issued",
                           message_code="page_token_invalid")
    return value


def _bbox(value: Any) -> tuple[float, float, float, float]:
    try:
        box = parse_bbox(value, "bbox", BBOX_RULES)
    except BBoxError as err:
        raise InvalidQuery.of(err) from None
    return box.bounds


def _bbox_json(value: Any) -> tuple[float, float, float, float]:
    try:
        box = parse_bbox(value, "bbox", BBOX_JSON_RULES)
    except BBoxError as err:
        raise InvalidQuery.of(err) from None
    return box.bounds


def _geometry(value: Any) -> shapely.Geometry:
    if isinstance(value, str):
        try:
            value = parse_json(value, "intersects")
        except UnsafeInput as err:
            raise InvalidQuery(f"{err} (expected a GeoJSON geometry)",
                               message_code="intersects_invalid") from None
    if not isinstance(value, dict) or value.get("type") not in GEOMETRY_TYPES:
        raise InvalidQuery("intersects: expected a GeoJSON geometry object",
                           message_code="intersects_invalid")
    try:
        geometry = shape(value)
        shapely.prepare(geometry)
    except Exception as err:  # shapely raises several kinds for malformed coordinates
        raise InvalidQuery(f"intersects: invalid GeoJSON geometry ({err})",
                           message_code="intersects_invalid") from None
    if geometry.is_empty or not shapely.is_valid(geometry):
        raise InvalidQuery(f"intersects: invalid geometry ({shapely.is_valid_reason(geometry)})",
                           message_code="intersects_invalid")
    return geometry


def parse_datetime_range(text: Any, name: str = "datetime") -> TimeRange:
    """An instant, or an interval 'start/end' with '..' or '' for an open end, in Julian days
    (catalog.core.parse.parse_datetime with the STAC API's rules)."""
    try:
        span = parse_datetime(text, name, DATETIME_RULES)
    except DatetimeError as err:
        raise InvalidQuery.of(err) from None
    return TimeRange(julian_day(span.start) if span.start else None,
                     julian_day(span.end) if span.end else None)


def _datetime_value(value: Any) -> TimeRange:
    return parse_datetime_range(value)


def _q(value: Any) -> tuple[str, ...]:
    terms = value.split(",") if isinstance(value, str) else value
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise InvalidQuery("q: expected free text, terms separated by commas")
    terms = [t.strip() for t in terms if t.strip()]
    if not terms or len(terms) > MAX_LIST or any(len(t) > MAX_TEXT for t in terms):
        raise InvalidQuery(f"q: expected 1 to {MAX_LIST} non-empty terms",
                           message_code="q_terms", params={"most": MAX_LIST, "length": MAX_TEXT})
    return tuple(terms)


def _filter(source: Mapping[str, Any], lang: Any) -> Any:
    if lang not in ("cql2-text", "cql2-json"):
        raise InvalidQuery(f"filter-lang: expected cql2-text or cql2-json, got {lang!r:.40}",
                           message_code="filter_lang_unknown", params={"value": f"{lang!s:.40}"})
    crs = source.get("filter-crs")
    if crs is not None:
        try:
            parse_crs(crs, "filter-crs", FILTER_CRS_RULES)
        except CrsError as err:
            raise InvalidQuery.of(err) from None
    if "filter" not in source:
        if "filter-lang" in source or "filter-crs" in source:
            raise InvalidQuery("filter-lang, filter-crs: given without a filter")
        return None
    value = source["filter"]
    if isinstance(value, str) and len(value) > MAX_TEXT * 4:
        raise InvalidQuery("filter: too long")
    if lang == "cql2-json" and isinstance(value, str):
        try:
            value = parse_json(value, "filter")
        except UnsafeInput as err:
            raise InvalidQuery(f"{err} (filter-lang is cql2-json)") from None
    if lang == "cql2-json" and not isinstance(value, dict):
        raise InvalidQuery("filter: a cql2-json filter is a JSON object")
    refuse_nul(nul_text_at(value, "filter"))  # "\u0000" in a cql2-json text: NUL once parsed
    return cql.parse(value, lang)


def refuse_nul(where: str | None) -> None:
    """A text holding U+0000 (`where` it is, from safe_parse.nul_text_at) matches nothing
    stored and PostgreSQL cannot bind it (pgstac answered 500): refused on both profiles."""
    if where is not None:
        raise InvalidQuery(f"{where}: text cannot contain the NUL character (U+0000)",
                           message_code="text_nul", params={"name": where})


def _sort_key(field: str, descending: bool) -> SortKey:
    name = cql.property_name(field, "sortby")
    if name == "geometry":
        raise InvalidQuery("sortby: cannot sort by geometry", message_code="sortby_unknown",
                           params={"name": "geometry"})
    return SortKey(name, descending)


def _sortby(value: Any) -> tuple[SortKey, ...]:
    keys = []
    for part in _list(value, "sortby"):
        descending = part.startswith("-")
        keys.append(_sort_key(part.lstrip("+-").strip(), descending))
    return tuple(keys)


def _sortby_json(value: Any) -> tuple[SortKey, ...]:
    if isinstance(value, str):
        return _sortby(value)
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise InvalidQuery("sortby: expected a list of {field, direction} objects")
    keys = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) - {"field", "direction"} \
                or not isinstance(entry.get("field"), str):
            raise InvalidQuery("sortby: expected a list of {field, direction} objects")
        direction = entry.get("direction", "asc")
        if direction not in ("asc", "desc"):
            raise InvalidQuery(f"sortby: direction is asc or desc, got {direction!r:.20}")
        keys.append(_sort_key(entry["field"], direction == "desc"))
    return tuple(keys)


def _field_names(values: Any, name: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, list) or len(values) > MAX_LIST or not all(
        isinstance(v, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_:.\-]{0,127}", v)
        for v in values
    ):
        raise InvalidQuery(f"{name}: expected a list of field names like properties.title",
                           message_code="fields_invalid", params={"name": name})
    return tuple(values)


def _fields_text(value: Any) -> Fields:
    """GET fields=a,+b,-c: '-' excludes, '+' or nothing includes; empty = the default set."""
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    if not parts:
        return Fields(include=())
    include = [p.lstrip("+") for p in parts if not p.startswith("-")]
    exclude = [p[1:] for p in parts if p.startswith("-")]
    return Fields(_field_names(include, "fields") if include else None,
                  _field_names(exclude, "fields"))


def _fields_json(value: Any) -> Fields:
    """POST {"include": [...], "exclude": [...]}: an include key (even null) narrows to the
    default set plus its fields; without it, every field but the excluded ones; {} (nothing
    to include or exclude) is the default set."""
    if not isinstance(value, dict) or set(value) - {"include", "exclude"}:
        raise InvalidQuery("fields: expected an object with include and/or exclude lists",
                           message_code="fields_invalid", params={"name": "fields"})
    include = _field_names(value["include"], "fields.include") if "include" in value else None
    exclude = _field_names(value.get("exclude"), "fields.exclude")
    if include is None and not exclude:
        include = ()  # {} and {"exclude": null or []} ask for the default set, as "" in GET
    return Fields(include, exclude)
