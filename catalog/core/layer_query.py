"""The query rules of a feature layer, shared by every store (the GeoPackage library's `Layer`
and the PostGIS FeatureStore): how bbox, datetime, property equality, paging and property
selection are checked and what they mean. Each store supplies its SQL (a `SqlDialect`, its
column and spatial SQL); the answers are the same.

Problems raise `LayerQueryError` (a ParameterError, HTTP 400) whose message starts with the
parameter's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shapely.geometry.base import BaseGeometry

from catalog.core.cql2 import TEMPORAL_KINDS, SqlDialect, box_geometry, coerce_value, temporal_sql
from catalog.core.parse import (
    BBox,
    BBoxRules,
    DatetimeRules,
    ParameterError,
    TimeSpan,
    parse_bbox,
    parse_datetime,
)

# A layer's bbox: four numbers (no heights), as an array; minx > maxx crosses the antimeridian
# on geographic layers (`bbox_condition` sets `antimeridian`).
BBOX_RULES = BBoxRules(sizes=(4,), text=False, count_first=True, messages={
    "type": "{param}: expected 4 numbers minx,miny,maxx,maxy (3D boxes not supported)",
    "count": "{param}: expected 4 numbers minx,miny,maxx,maxy (3D boxes not supported)",
    "number": "{param}: not numbers: {value!r}",
    "finite": "{param}: invalid box {value!r}",
    "y_order": "{param}: invalid box {value!r}",
})
# A layer's datetime: ISO 8601 as Python reads it (dates are whole days, naive times UTC).
DATETIME_RULES = DatetimeRules()
Condition = tuple[str, list]  # SQL and its parameters


class LayerQueryError(ParameterError):
    """A query a layer cannot answer as asked (HTTP 400); the message names the parameter."""

    def __init__(self, message: str, param: str = "", message_code: str | None = None,
                 params: dict | None = None):
        # Messages start with the parameter's name ("sortby: ..."): it is the default param.
        super().__init__(param or message.split(":", 1)[0], message, message_code=message_code,
                         params=params)


def check_page(offset: Any, limit: Any) -> tuple[int, int]:
    """offset and limit of a page, checked."""
    values = []
    for name, value in (("offset", offset), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise LayerQueryError(f"{name}: expected a non-negative integer, got {value!r}", name)
        values.append(value)
    return values[0], values[1]


def temporal_extent_span(extent: Sequence | None) -> TimeSpan | None:
    """A configured [start, end] (None or '..' for open ends) as a TimeSpan; ValueError."""
    if extent is None:
        return None
    try:
        start, end = (None if v in (None, "..") else str(v) for v in extent)
        return parse_datetime(f"{start or '..'}/{end or '..'}", "temporal_extent",
                              DATETIME_RULES)
    except (ValueError, TypeError) as err:
        raise ValueError(f"bad temporal_extent {extent!r}") from err


def bbox_condition(bbox: BBox | Sequence[float] | None, geographic: bool,
                   intersects: Callable[[BaseGeometry], Condition]) -> Condition:
    """The features meeting the box; one crossing the antimeridian (minx > maxx, geographic
    layers only) is two boxes, each tested by `intersects` on its own."""
    if bbox is None or (not isinstance(bbox, BBox) and not bbox):
        return "", []
    if not isinstance(bbox, BBox):
        rules = replace(BBOX_RULES, antimeridian=geographic)
        try:
            bbox = parse_bbox(list(bbox), "bbox", rules)
        except TypeError:
            raise LayerQueryError(f"bbox: not numbers: {bbox!r}") from None
    elif bbox.minz is not None:
        raise LayerQueryError(BBOX_RULES.messages["count"].format(param="bbox"))
    minx, miny, maxx, maxy = bbox.bounds
    if minx <= maxx:
        return intersects(box_geometry(minx, miny, maxx, maxy))
    if not geographic:
        raise LayerQueryError("bbox: minx is greater than maxx")
    east = intersects(box_geometry(minx, miny, 180.0, maxy))
    west = intersects(box_geometry(-180.0, miny, maxx, maxy))
    return f"({east[0]}) OR ({west[0]})", east[1] + west[1]


def plain_bbox(bbox: BBox | Sequence[float] | None,
               geographic: bool) -> tuple[float, float, float, float] | None:
    """The bounds of a bbox that is one box, for stores answering it without SQL; None for no
    bbox or one crossing the antimeridian (two boxes). A bad one raises what bbox_condition
    raises."""
    boxes: list[tuple[float, float, float, float]] = []

    def collect(box: BaseGeometry) -> Condition:
        boxes.append(box.bounds)
        return "", []

    bbox_condition(bbox, geographic, collect)
    return boxes[0] if len(boxes) == 1 else None


@dataclass(frozen=True)
class ArrayQuery:
    """What the column arrays (catalog/core/columns.py) answer of a query: its filter and the
    one box of its bbox (None: no bbox)."""

    filter: Any
    box: tuple[float, float, float, float] | None

    @property
    def box_geometry(self) -> BaseGeometry | None:
        return box_geometry(*self.box) if self.box else None


def array_query(query: Any, total: int, min_rows: int, geographic: bool) -> ArrayQuery | None:
    """The query (a store's: filter, bbox, datetime, equals, q) as the column arrays answer
    it, or None when SQL must: a layer of fewer than `min_rows` rows, a filter still as text,
    a datetime, property equality or free text, a bbox of two boxes, or nothing to select."""
    if (query.filter is None and not query.bbox) or isinstance(query.filter, str) or \
            total < min_rows or query.datetime is not None or query.equals or \
            query.q is not None:
        return None
    box = plain_bbox(query.bbox, geographic)
    if query.bbox and box is None:
        return None
    return ArrayQuery(query.filter, box)


def datetime_condition(value: TimeSpan | str | None, time_span_sql: tuple[str, str] | None,
                       temporal_extent: TimeSpan | None, dialect: SqlDialect) -> Condition:
    """Features whose time (`time_span_sql`, the time field's span) meets the instant or
    interval; without a time field, all or none by the layer's temporal extent."""
    if value is None:
        return "", []
    if isinstance(value, str):
        value = parse_datetime(value, "datetime", DATETIME_RULES)
    elif not isinstance(value, TimeSpan):
        raise LayerQueryError(f"datetime: expected text, got {value!r}")
    if value.unbounded:
        return "", []  # '../..' constrains nothing
    if time_span_sql is not None:
        return temporal_sql(time_span_sql, "intersects", value, dialect=dialect)
    if temporal_extent is not None:
        return dialect.constant(temporal_extent.intersects(value)), []
    raise LayerQueryError("datetime: this collection has no temporal information to filter on")


def equals_condition(equals: Sequence[tuple[str, Any]], kind_of: Callable[[str], str],
                     column_sql: Callable[[str], str], dialect: SqlDialect) -> Condition:
    """property = value for each pair (values as text, coerced to the property's kind);
    `kind_of` refuses unknown properties."""
    clauses, params = [], []
    for item in equals or ():
        try:
            name, value = item
        except (TypeError, ValueError):
            raise LayerQueryError(f"properties: expected (name, value) pairs, got {item!r}",
                                  "properties") from None
        kind = kind_of(name)
        params.append(coerce_value(kind, value, name=name, param=name))
        column = column_sql(name)
        if kind in TEMPORAL_KINDS:
            instant = dialect.instant
            clauses.append(f"{instant.format(column)} = {instant.format(dialect.placeholder)}")
        else:
            clauses.append(f"{column} = {dialect.placeholder}")
    return " AND ".join(clauses), params


def output_columns(columns: Sequence[str], id_field: str, geometry: str,
                   selected: Sequence[str] | None, skip_geometry: bool) -> list[str]:
    """The id, then the selected properties in layer order (all when none are), then the
    geometry unless skipped."""
    selected = list(selected or ())
    unknown = [name for name in selected if name not in columns]
    if unknown:
        raise LayerQueryError(f"properties: unknown properties {unknown}")
    names = [c for c in columns if c in selected] if selected else list(columns)
    # The id comes first, then the properties (which may list the id column again).
    return [id_field, *names, *([] if skip_geometry else [geometry])]


def free_text_terms(q: str, text_columns: Sequence[str]) -> list[str]:
    """The comma-separated terms of `q` (any may match a text property)."""
    terms = [term.strip() for term in str(q).split(",") if term.strip()]
    if not terms:
        raise LayerQueryError("q: no search terms")
    if not text_columns:
        raise LayerQueryError("q: this collection has no text properties to search")
    return terms


def order_by(sortby: Sequence[tuple[str, bool]], check: Callable[[str], object],
             column_sql: Callable[[str], str], pk_sql: str,
             directions: tuple[str, str] = ("ASC", "DESC")) -> str:
    """ORDER BY of (property, descending) keys (each passed to `check`, which refuses unknown
    ones), ties broken by the primary key for stable paging. `directions`: the SQL of
    ascending and descending, where a database needs NULLs placed as SQLite places them."""
    keys = []
    for name, descending in sortby or ():
        check(name)
        keys.append(f"{column_sql(name)} {directions[1] if descending else directions[0]}")
    keys.append(f"{pk_sql} ASC")
    return ", ".join(keys)
