"""An items request (OGC API - Features Parts 1, 2 and 3) turned into an ItemsQuery, with
every parameter checked in the order /ogc has always checked them.

First the checks that name the parameter (`check_parameters`): unknown parameters, a bbox, a
datetime or a CQL2 filter that does not parse. Then the API's own (`items_request`): paging,
the temporal extent, the output format, CRSs, sort keys, property names, filter CRS and
language. What the store cannot apply it refuses itself (ParameterError). Nothing is ignored:
a parameter the route does not know is a 400 naming it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.core.cql2 import Cql2Error, parse_filter
from catalog.core.errors import first_line
from catalog.core.parse import (
    BBox,
    BBoxError,
    BBoxRules,
    CrsError,
    DatetimeError,
    DatetimeRules,
    TimeSpan,
    parse_bbox,
    parse_datetime,
)
from catalog.core.record import Record
from catalog.features import crs
from catalog.features.documents import SUPPORTED_CRS, Service
from catalog.features.negotiate import CSV, HTML, JSON, JSONLD, Negotiated
from catalog.features.problems import bad_parameter, coded, refused
from catalog.features.store import CRS84, ItemsQuery, LayerDescription
from catalog.safe_parse import UnsafeInput, nul_text_at, parse_json

# Parameters of the items route; any other must name a property (an equality filter).
ITEMS_PARAMETERS = frozenset({
    "f", "lang", "bbox", "bbox-crs", "crs", "limit", "offset", "resulttype", "datetime",
    "sortby", "properties", "skipGeometry", "q", "filter", "filter-lang", "filter-crs"})
ITEM_PARAMETERS = frozenset({"f", "lang", "crs"})
FORMATS = (JSON, HTML, JSONLD, CSV)
FILTER_LANGUAGES = (None, "cql-json", "cql-text", "cql2-text", "cql2-json")
JSON_FILTER_LANGUAGES = ("cql2-json", "cql-json")
CQL2_JSON_MEDIA = ("application/json", "application/query-cql-json", "application/cql2+json")

# The first checks' bbox: text, 4 or 6 numbers, every minimum <= its maximum (no antimeridian
# boxes); the store checks again what it can apply (4 numbers).
_BBOX_SHAPE = "{param}: {value!r} must be 4 or 6 comma-separated finite numbers"
_BBOX_ORDER = ("{param}: {value!r}: each minimum must not exceed its maximum "
               "(minx,miny,maxx,maxy)")
BBOX_RULES = BBoxRules(messages={
    "number": "{param}: {value!r} must be 4 or 6 comma-separated numbers",
    "count": _BBOX_SHAPE, "finite": _BBOX_SHAPE,
    "y_order": _BBOX_ORDER, "x_order": _BBOX_ORDER, "z_order": _BBOX_ORDER,
})
# The first checks' datetime: ISO 8601 as Python reads it, 'Z' read as '+00:00'; '/' and
# '../..' refused; a lone '' or '..' passes here and is refused with the extent check; the
# order of the ends is the store's to check.
_DATETIME_FORM = "{param}: {value!r} must be an RFC 3339 instant or an interval start/end"
DATETIME_RULES = DatetimeRules(
    z_offset=True, strip=False, lone_open=True, forms_refused=("/", "../.."), ordered=False,
    messages={"form": _DATETIME_FORM, "slashes": _DATETIME_FORM,
              "instant": "{param}: {item!r} is not an RFC 3339 date or date-time"},
)


@dataclass(frozen=True)
class CheckedParameters:
    """The request's parameters after the first checks: as the links carry them, and what
    was parsed on the way (so nothing is parsed twice)."""

    args: list[tuple[str, str]]  # the query parameters, in order
    filter_tree: Any  # the CQL2 tree of `filter` or of the body, or None
    filter_from_body: bool
    bbox: BBox | None
    datetime: TimeSpan | None


def check_parameters(args: Sequence[tuple[str, str]], method: str, mimetype: str, body: bytes,
                     fields: Mapping[str, Any] | None, path: str) -> CheckedParameters:
    """The first checks of an items request (`fields`: the collection's properties, None for
    a collection that does not exist: the API answers 404 for it)."""
    args = [(name, _plus_sign(name, value)) for name, value in args]
    params = first_values(args)
    language = params.get("filter-lang")
    document, from_body = None, False
    if language in JSON_FILTER_LANGUAGES and "filter" in params:
        try:
            document = parse_json(params["filter"], "filter")
        except UnsafeInput as err:
            raise refused(f"{err} (filter-lang=cql2-json)", message_code="filter_syntax",
                          params={"param": "filter"}) from None
    elif method == "POST":
        document, from_body = _body_document(mimetype, body), True
    if fields is None:
        return CheckedParameters(args, None, from_body, None, None)
    allowed = ITEMS_PARAMETERS | set(fields)
    for name, _ in args:
        if name not in allowed:
            raise refused(f"unknown query parameter {name!r} for {path}; "
                          f"allowed: {', '.join(sorted(allowed))}",
                          message_code="unknown_parameter", params={"name": name})
    nul = next(filter(None, (nul_text_at(value, name) for name, value in args)), None) or \
        nul_text_at(document, "filter")
    if nul is not None:  # matches nothing stored, and PostgreSQL cannot bind it: both profiles
        raise refused(f"{nul}: text cannot contain the NUL character (U+0000)",
                      message_code="text_nul", params={"name": nul})
    bbox = span = None
    try:
        if "bbox" in params:
            bbox = parse_bbox(params["bbox"], "bbox", BBOX_RULES)
        if "bbox-crs" in params and "bbox" not in params:
            raise refused("bbox-crs: given without bbox", message_code="bbox_crs_alone")
        if "datetime" in params:
            span = parse_datetime(params["datetime"], "datetime", DATETIME_RULES)
    except (BBoxError, DatetimeError) as err:
        raise refused(str(err), **coded(err)) from None
    tree = None
    if document is not None:
        try:
            tree = parse_filter(document, "cql2-json")
        except Cql2Error as err:
            raise refused(f"filter: not valid CQL2 JSON: {_parser_message(err)}",
                          **coded(err)) from None
    elif "filter" in params:
        try:
            tree = parse_filter(params["filter"], "cql2-text")
        except Cql2Error as err:
            raise refused(f"filter: not valid CQL2 ({language or 'cql2-text'}): "
                          f"{_parser_message(err)}", **coded(err)) from None
    return CheckedParameters(args, tree, from_body, bbox, span)


def first_values(args: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Each parameter's first value (a repeated parameter counts once, as its first)."""
    params: dict[str, str] = {}
    for name, value in args:
        params.setdefault(name, value)
    return params


def _plus_sign(name: str, value: str) -> str:
    """'+name' in sortby arrives as ' name' when the client did not percent-encode '+'."""
    if name != "sortby" or " " not in value:
        return value
    return ",".join("+" + key.strip() if key.startswith(" ") else key for key in value.split(","))


def _body_document(mimetype: str, body: bytes) -> dict:
    """POST .../items: a search with a CQL2 JSON filter as the body."""
    if mimetype not in CQL2_JSON_MEDIA:
        raise refused(f"POST a CQL2 JSON filter with Content-Type: {' or '.join(CQL2_JSON_MEDIA)}",
                      415, "UnsupportedMediaType", message_code="body_media_type",
                      params={"types": " or ".join(CQL2_JSON_MEDIA)})
    try:
        document = parse_json(body, "request body")
    except UnsafeInput as err:
        raise refused(f"{err} (expected a CQL2 JSON filter)",
                      message_code="json_body_unreadable") from None
    if not isinstance(document, dict):
        raise refused("request body: a CQL2 JSON filter is a JSON object such as "
                      '{"op": "=", "args": [{"property": "name"}, "Osh"]}',
                      message_code="json_body_not_object")
    return document


def _parser_message(err: Cql2Error) -> str:
    """The parser's own first line, as /ogc has always shown it."""
    cause = err.cause if err.cause is not None else err
    return first_line(cause, 200)


# -- the API's checks ----------------------------------------------------------------------

@dataclass(frozen=True)
class ItemsRequest:
    """A checked items request: the store query and how to answer."""

    query: ItemsQuery
    hits: bool
    format: str | None  # None: GeoJSON
    crs: str | None  # the output CRS asked for (None: CRS84)
    content_crs: str
    link_query: str  # the parameters every link carries ('&name=value...'), f and offset apart


def items_request(service: Service, record: Record, layer: LayerDescription | None,
                  checked: CheckedParameters, asked: Negotiated) -> ItemsRequest:
    """The API's checks, in order; ApiProblem naming what to change. `layer` is None for a
    coverage: it has no items."""
    params = first_values(checked.args)
    offset = _offset(params.get("offset"))
    limit = _limit(params.get("limit"), service.limits)
    if "datetime" in params:
        _within_extent(params["datetime"], checked.datetime, record)
    if layer is None:
        raise bad_parameter("Invalid provider type", "NoApplicableCode")
    if asked.format is not None and asked.format not in FORMATS:
        raise bad_parameter("Invalid format requested")
    output_crs = params.get("crs")
    if output_crs is not None and output_crs not in SUPPORTED_CRS:
        raise bad_parameter(crs.not_supported(output_crs, SUPPORTED_CRS),
                            message_code="crs_unsupported",
                            params={"param": "crs", "value": output_crs[:80]})
    headers = {"Content-Crs": f"<{output_crs or CRS84}>"}
    bbox = _storage_bbox(params, checked.bbox, headers)
    fields = layer.fields
    equals = [(name, value) for name, value in params.items()
              if name not in ITEMS_PARAMETERS and name in fields]
    sortby = _sort_keys(params.get("sortby"), fields, headers)
    selected = params["properties"].split(",") if "properties" in params else []
    if set(selected) - set(fields):
        raise bad_parameter("unknown properties specified", headers=headers,
                            message_code="unknown_properties",
                            params={"names": ", ".join(sorted(set(selected) - set(fields)))})
    tree = checked.filter_tree
    if tree is not None:
        try:
            tree = crs.filter_in_storage_crs(tree, params.get("filter-crs", CRS84))
        except CrsError:
            problem = "Bad CQL JSON" if checked.filter_from_body else "Bad CQL text"
            raise bad_parameter(problem, headers=headers, message_code="crs_unsupported",
                                params={"param": "filter-crs",
                                        "value": params.get("filter-crs", "")[:80]}) from None
    if params.get("filter-lang") not in FILTER_LANGUAGES:
        raise bad_parameter("Invalid filter language", headers=headers,
                            message_code="filter_lang_unknown",
                            params={"value": str(params.get("filter-lang"))[:80]})
    resulttype = params.get("resulttype") or "results"
    if resulttype not in ("results", "hits"):
        raise bad_parameter(f"resulttype: expected 'results' or 'hits', got '{resulttype}'",
                            "InvalidQuery", headers, message_code="resulttype_unknown",
                            params={"value": resulttype[:80]})
    query = ItemsQuery(
        offset=offset, limit=limit, bbox=bbox, datetime=params.get("datetime"), equals=equals,
        sortby=sortby, properties=selected, skip_geometry=_true(params.get("skipGeometry")),
        q=params.get("q") or None, filter=tree)
    return ItemsRequest(query, resulttype == "hits", asked.format, output_crs,
                        headers["Content-Crs"], link_query(checked.args))


def _offset(value: str | None) -> int:
    if value is None:
        return 0
    try:
        offset = int(value)
    except ValueError:
        raise bad_parameter("offset value should be an integer", message_code="offset_invalid",
                            params={"value": value[:80]}) from None
    if offset < 0:
        raise bad_parameter("offset value should be positive or zero",
                            message_code="offset_invalid", params={"value": value[:80]})
    return offset


def _limit(value: str | None, limits: Mapping[str, Any]) -> int:
    default, largest = limits.get("default_items", 10), limits.get("max_items", 10)
    if value is None:
        return default
    try:  # digits only: '1.0' and '010' are not integers here
        if "." in value or (len(value) > 1 and value.startswith("0")):
            raise ValueError(value)
        limit = int(value)
    except ValueError:
        raise bad_parameter("limit value should be an integer", message_code="limit_invalid",
                            params={"value": value[:80]}) from None
    if limit <= 0:
        raise bad_parameter("limit value should be strictly positive",
                            message_code="limit_invalid", params={"value": value[:80]})
    if limit > largest and limits.get("on_exceed", "throttle") == "error":
        raise bad_parameter(f"Limit of {largest} exceeded", message_code="limit_exceeded",
                            params={"most": largest})
    return min(limit, largest)


def _within_extent(value: str, span: TimeSpan | None, record: Record) -> None:
    """A datetime wholly outside the dataset's temporal extent is refused (a lone '' or '..'
    names no time at all)."""
    if value in ("", ".."):
        raise bad_parameter(f"String does not contain a date: {value}",
                            message_code="datetime_invalid",
                            params={"param": "datetime", "value": value})
    if span is None:
        return
    extent = record.manifest.temporal_extent
    begin = TimeSpan.day(extent.start).start
    end = TimeSpan.day(extent.end).start if extent.end else None
    if "/" in value:  # an interval: outside when it ends before or starts after the extent
        outside = (end is not None and span.start is not None and span.start > end) or \
            (span.end is not None and span.end < begin)
    else:  # an instant: its first moment (a date means its midnight)
        moment = span.start
        outside = moment < begin or (end is not None and moment > end)
    if outside:
        raise bad_parameter("datetime parameter out of range",
                            message_code="datetime_outside_extent",
                            params={"value": value[:80]})


def _storage_bbox(params: Mapping[str, str], bbox: BBox | None,
                  headers: dict[str, str]) -> list[float] | None:
    if bbox is None:
        return None
    source = params.get("bbox-crs")
    if source is None:
        return bbox.as_list()
    if not source:
        raise bad_parameter("bbox-crs specified but is empty", "NoApplicableCode", headers)
    if source not in SUPPORTED_CRS:
        raise bad_parameter(f"bbox-crs {source} not supported for this collection",
                            "NoApplicableCode", headers, message_code="crs_unsupported",
                            params={"param": "bbox-crs", "value": source[:80]})
    return crs.transform_bbox(bbox.as_list(), source)


def _sort_keys(value: str | None, fields: Mapping[str, Any],
               headers: dict[str, str]) -> list[tuple[str, bool]]:
    keys = []
    for key in value.split(",") if value is not None else ():
        order, name = (key[0], key[1:]) if key[:1] in ("+", "-") else ("+", key)
        if name not in fields:
            raise bad_parameter("bad sortby property", headers=headers,
                                message_code="sortby_unknown", params={"name": name[:80]})
        keys.append((name, order == "-"))
    return keys


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("yes", "true", "t", "1", "on")


def link_query(args: Sequence[tuple[str, str]]) -> str:
    """The parameters a page's links carry ('&name=value' each), all but f and offset."""
    return "".join(f"&{urllib.parse.quote(name, safe='')}={urllib.parse.quote(value, safe=',')}"
                   for name, value in first_values(args).items() if name not in ("f", "offset"))
