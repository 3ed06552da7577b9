"""CQL2 filters on STAC items: where item properties live in the index.

Parsing and translation are catalog.core.cql2's; this module is the STAC index's
`FilterTarget` (`ItemsTarget`): `id`, `collection` and `datetime` are columns, every other
property is `json_extract(props, ?)` with the JSON path bound as a parameter, and geometries
are GeoPackage blobs with an R-tree (catalog.gpkg.spatial_sql). Properties that no item
declares may be named too (the queryables say `additionalProperties: true`, as pgstac does);
their type is taken from the literal they are compared with, and on items that lack them they
are NULL, so comparisons are false.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pygeofilter import ast, values
from shapely.geometry.base import BaseGeometry

from catalog.core.cql2 import Cql2Error, Property, box_geometry, geometry_literal, parse_filter
from catalog.core.cql2 import to_sql as translate
from catalog.gpkg import TableSchema, spatial_sql
from catalog.gpkg import is_rectangle as gpkg_is_rectangle
from catalog.stac_index.backend import InvalidQuery

COLUMNS = {"id": "id", "collection": "collection", "datetime": "dt"}
COLUMN_KINDS = {"id": "string", "collection": "string", "datetime": "date-time"}
# Temporal predicates (T_*) apply to these; their SQL is fixed text, never request text.
TIME_SPANS = {
    "datetime": ("dt", "dt_end"),
    **{name: (f"julianday(json_extract(props, '$.\"{name}\"'))",) * 2
       for name in ("start_datetime", "end_datetime", "created", "updated")},
}
PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.\-]{0,63}$")
MAX_FILTER_DEPTH = 60

# The items table as the GeoPackage library's spatial SQL sees it: pk, geometry blob, R-tree.
ITEMS_SCHEMA = TableSchema(table="items", pk="pk", geom="geometry", rtree="items_rtree",
                           kinds=COLUMN_KINDS, time_field="datetime")


# The exact test of an item that is its own rectangle (items.rminx..rmaxy, see
# sqlite_backend) against a query rectangle: closed overlap of the bounds.
_RECTANGLE_OVERLAP = "rminx <= ? AND rmaxx >= ? AND rminy <= ? AND rmaxy >= ?"
_RTREE_OVERLAP = ("pk IN (SELECT id FROM items_rtree "
                  "WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?)")


def items_spatial_sql(op: str, geometry: BaseGeometry, null_safe: bool = False,
                      walk: bool = False) -> tuple[str, list]:
    """op(item geometry, geometry) over the items table: catalog.gpkg.spatial_sql, except for
    a rectangle intersecting items that are their own rectangles, which SQL tests from their
    bounds (no Python call per candidate). The R-tree's overlap is a top-level term for a
    plan that reads its candidates first. With `walk` (a plan that walks an order and stops
    after a page of hits) it is left out: SQLite would gather every candidate before the
    first row (an R-tree box meeting 10,000 of 1,000,000 items: about 77 ms against 12 ms
    for testing the walked items' own bounds), so rectangles are tested from their columns
    and only the other items (rminx NULL) reach the R-tree and the exact test."""
    general, general_params = spatial_sql(ITEMS_SCHEMA, op, geometry, null_safe)
    if op != "intersects" or not is_rectangle(geometry):
        return general, general_params
    minx, miny, maxx, maxy = (float(v) for v in geometry.bounds)
    exact = f"CASE WHEN rminx IS NULL THEN ({general}) ELSE ({_RECTANGLE_OVERLAP}) END"
    params = [*general_params, maxx, minx, maxy, miny]
    if null_safe:
        return f'CASE WHEN "geometry" IS NULL THEN NULL ELSE ({exact}) END', params
    if walk:
        return exact, params
    return f"{_RTREE_OVERLAP} AND {exact}", [minx, maxx, miny, maxy, *params]


def walk_prefilter(bounds: tuple[float, float, float, float]) -> tuple[str, list]:
    """A term a walk tests first, from the time index alone, for a filter's top-level box
    `bounds`: an item that is its own rectangle can meet a geometry only where its rectangle
    meets the geometry's bounds; other items (rminx NULL) pass to the filter's exact test.
    Without it a filter such as `cloud BETWEEN .. AND S_INTERSECTS(..)` read every walked
    item's row for its cloud first (1,000,000 items: 36 ms a search in process)."""
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    return f"(rminx IS NULL OR ({_RECTANGLE_OVERLAP}))", [maxx, minx, maxy, miny]


def is_rectangle(geometry: BaseGeometry) -> bool:
    """A polygon of positive area that is exactly its bounding box (catalog.gpkg's test)."""
    return gpkg_is_rectangle(geometry)


def has_spatial_term(node: Any) -> bool:
    """Whether a filter is (an AND of terms one of which is) S_INTERSECTS or BBOX: a term an
    R-tree can serve."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.And):
            stack += [item.lhs, item.rhs]
        elif isinstance(item, ast.GeometryIntersects | ast.BBox):
            return True
    return False


def spatial_bounds(node: Any) -> list[tuple[float, float, float, float]]:
    """Bounds of the geometry literals of the filter's top-level (ANDed) S_INTERSECTS and
    BBOX terms; a literal that cannot be read is left out (the translation reports it)."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.And):
            stack += [item.lhs, item.rhs]
            continue
        try:
            if isinstance(item, ast.BBox):
                geometry = box_geometry(item.minx, item.miny, item.maxx, item.maxy)
            elif isinstance(item, ast.GeometryIntersects):
                side = item.rhs if isinstance(item.lhs, ast.Attribute) else item.lhs
                geometry = geometry_literal(side, "filter")
            else:
                continue
        except (Cql2Error, TypeError, ValueError):
            continue
        if not geometry.is_empty:
            found.append(tuple(float(v) for v in geometry.bounds))
    return found


_COMPARISONS = {ast.LessThan: "<", ast.LessEqual: "<", ast.GreaterThan: ">",
                ast.GreaterEqual: ">"}
_FLIPPED = {"<": ">", ">": "<"}


def number_ranges(node: Any) -> dict[str, tuple[float, float]]:
    """The ranges the filter's top-level (ANDed) terms put on properties: name -> (low, high),
    infinite where open; from BETWEEN and from comparisons of a property with a number, either
    way round. Whether a bound is strict does not matter here: the ranges size plans, they
    never decide which items match (the translated filter does)."""
    ranges: dict[str, tuple[float, float]] = {}
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.And):
            stack += [item.lhs, item.rhs]
            continue
        term = _range_term(item)
        if term is not None:
            name, low, high = term
            old_low, old_high = ranges.get(name, (float("-inf"), float("inf")))
            ranges[name] = (max(old_low, low), min(old_high, high))
    return ranges


def _range_term(item: Any) -> tuple[str, float, float] | None:
    if isinstance(item, ast.Between) and not item.not_ and \
            isinstance(item.lhs, ast.Attribute) and _is_number(item.low) and \
            _is_number(item.high):
        return _plain_name(item.lhs.name), float(item.low), float(item.high)
    direction = _COMPARISONS.get(type(item))
    if direction is None:
        return None
    if isinstance(item.lhs, ast.Attribute) and _is_number(item.rhs):
        name, value = item.lhs.name, float(item.rhs)
    elif isinstance(item.rhs, ast.Attribute) and _is_number(item.lhs):
        name, value, direction = item.rhs.name, float(item.lhs), _FLIPPED[direction]
    else:
        return None
    if direction == "<":
        return _plain_name(name), float("-inf"), value
    return _plain_name(name), value, float("inf")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plain_name(name: str) -> str:
    return name.removeprefix("properties.")


def only_spatial_terms(node: Any) -> bool:
    """Whether a filter is nothing but S_INTERSECTS/BBOX terms ANDed."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.And):
            stack += [item.lhs, item.rhs]
        elif not isinstance(item, ast.GeometryIntersects | ast.BBox):
            return False
    return True


def property_name(name: str, param: str) -> str:
    """A property as named in a request ('properties.x' or 'x'), checked; returns 'x'."""
    if name.startswith("properties."):
        name = name[len("properties."):]
    if not PROPERTY_NAME.match(name):
        raise InvalidQuery(f"{param}: '{name[:80]}' is not a property name",
                           message_code="unknown_property",
                           params={"param": param, "name": name[:80]})
    return name


def json_path(name: str, param: str) -> str:
    """The JSON path of an item property, bound as a parameter (never spliced into SQL)."""
    return f'$."{property_name(name, param)}"'


def indexed_property_sql(name: str) -> str:
    """json_extract of a property that has an expression index (SqliteBackend), its JSON path
    written into the SQL: SQLite matches an index on an expression only to the same text,
    never to one with a bound parameter. Only for names read from the index's own list (a
    request merely picks one of them); PROPERTY_NAME admits no quote, and the path is quoted
    as an SQL string literal besides."""
    if not PROPERTY_NAME.match(name):
        raise ValueError(f"not a property name: {name!r}")
    path = json_path(name, "sortby").replace("'", "''")
    return f"json_extract(props, '{path}')"


def parse(text_or_json: str | dict, lang: str) -> Any:
    """A pygeofilter tree from CQL2 text or CQL2 JSON; InvalidQuery naming `filter` if bad."""
    try:
        return parse_filter(text_or_json, lang, "filter")
    except Cql2Error as err:
        raise InvalidQuery.of(err) from None


def to_sql(node: Any, declared: dict[str, str] | None = None,
           indexed: frozenset[str] = frozenset(), walk: bool = False) -> tuple[str, list]:
    """Parameterised SQL for a parsed filter over the `items` table; `indexed`: properties
    with an expression index (written as `indexed_property_sql` so the index serves them);
    `walk`: the plan walks an order (items_spatial_sql)."""
    try:
        kinds = {**literal_kinds(node), **(declared or {}), **COLUMN_KINDS}
        return translate(node, ItemsTarget(kinds, indexed, walk), "filter")
    except Cql2Error as err:
        raise InvalidQuery.of(err) from None
    except RecursionError:
        raise InvalidQuery("filter: expression is nested too deeply",
                           message_code="filter_syntax", params={"param": "filter"}) from None


class ItemsTarget:
    """The STAC index's items as a catalog.core.cql2.FilterTarget."""

    time_field = "datetime"

    def __init__(self, kinds: dict[str, str], indexed: frozenset[str] = frozenset(),
                 walk: bool = False):
        self.kinds = kinds
        self.indexed = indexed
        self.walk = walk

    def resolve(self, name: str, param: str, spatial: bool = False) -> Property:
        if name == "geometry":
            return Property('"geometry"', "geometry", name="geometry")
        if spatial:  # only the columns may be named there (and are not geometries)
            if name not in COLUMN_KINDS:
                raise Cql2Error(f"{param}: unknown property '{name}'", param)
            return Property(COLUMNS[name], COLUMN_KINDS[name], name=name)
        try:
            name = property_name(name, param)
        except InvalidQuery as err:
            raise Cql2Error(str(err), param) from None
        if name in COLUMNS:
            # dt holds Julian days, what julianday() makes of a literal: compared bare, the
            # time indexes serve `datetime >= TIMESTAMP(...)` (julianday(dt) would hide them).
            return Property(COLUMNS[name], COLUMN_KINDS[name], name=name,
                            instant=name == "datetime")
        if name in self.indexed:
            return Property(indexed_property_sql(name), self.kinds.get(name, "string"),
                            name=name)
        return Property("json_extract(props, ?)", self.kinds.get(name, "string"),
                        (f'$."{name}"',), name=name)

    def spatial_sql(self, op: str, geometry: BaseGeometry,
                    null_safe: bool = False) -> tuple[str, list]:
        return items_spatial_sql(op, geometry, null_safe, self.walk)

    def time_span_sql(self, name: str) -> tuple[str, str]:
        if name not in TIME_SPANS:
            raise Cql2Error(f"filter: temporal predicates apply to {', '.join(TIME_SPANS)}")
        return TIME_SPANS[name]


def literal_kinds(node: Any, depth: int = 0) -> dict[str, str]:
    """Kinds of properties nobody declared, from the literals they are compared with."""
    if depth > MAX_FILTER_DEPTH:
        raise InvalidQuery("filter: expression is nested too deeply",
                           message_code="filter_syntax", params={"param": "filter"})
    if not isinstance(node, ast.Node):
        return {}
    children = node.get_sub_nodes()
    found: dict[str, str] = {}
    names = [c.name.removeprefix("properties.") for c in children if isinstance(c, ast.Attribute)]
    compared_kinds = {k for k in map(_kind_of_literal, children) if k}
    if isinstance(node, ast.Like):
        compared_kinds = {"string"}
    if isinstance(node, ast.TemporalPredicate):
        compared_kinds = {"date-time"}
    if len(compared_kinds) > 1:
        raise InvalidQuery(f"filter: values of different types compared with {names}",
                           message_code="filter_invalid", params={"param": "filter"})
    for name in names:
        if compared_kinds:
            found[name] = next(iter(compared_kinds))
    for child in children:
        for name, kind in literal_kinds(child, depth + 1).items():
            if found.setdefault(name, kind) != kind:
                raise InvalidQuery(f"filter: '{name}' is compared with values of several types",
                                   message_code="filter_invalid", params={"param": "filter"})
    return found


def _kind_of_literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, date | values.Interval):
        return "date-time"
    if isinstance(value, list):
        kinds = {_kind_of_literal(v) for v in value} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    return None
