"""Translate query parameters and pygeofilter CQL2 trees into parameterised SQLite WHERE clauses.

Everything here produces ``(sql, params)`` pairs. Values always travel as ``?`` parameters;
identifiers come only from the table's own column list (quoted), never from user text. Anything
that cannot be applied faithfully raises `ProviderInvalidQueryError` with a `user_msg` naming the
query parameter, so pygeoapi answers HTTP 400 with that text instead of ignoring the request.

SQL functions used here and registered on every connection by the GeoPackage provider:

- ``gpkg_<op>(blob, wkb)`` for op in `SPATIAL_OPS`: exact shapely predicate between a GeoPackage
  geometry blob and a WKB literal;
- ``gpkg_lower(text)``: Unicode lower case (SQLite's ``lower()`` folds ASCII only, and the
  catalog's text is largely Cyrillic);
- ``gpkg_unaccent(text)``: strips combining marks (CQL2 ``ACCENTI``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import shapely
from pygeoapi.provider.base import ProviderInvalidQueryError
from pygeofilter import ast, values
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

NUMERIC_KINDS = frozenset({"integer", "number"})
TEMPORAL_KINDS = frozenset({"date", "date-time"})

# CQL2 spatial predicate node -> shapely predicate name (and SQL function suffix).
SPATIAL_OPS: dict[type, str] = {
    ast.GeometryIntersects: "intersects",
    ast.GeometryDisjoint: "disjoint",
    ast.GeometryContains: "contains",
    ast.GeometryWithin: "within",
    ast.GeometryTouches: "touches",
    ast.GeometryCrosses: "crosses",
    ast.GeometryOverlaps: "overlaps",
    ast.GeometryEquals: "equals",
}
# op(a, b) == CONVERSE[op](b, a); used when the literal is written first.
CONVERSE = {"within": "contains", "contains": "within"}

# Temporal relations between a feature's time span A and a literal span B. pygeofilter 0.4 maps
# CQL2 T_INTERSECTS to TimeOverlaps (its cql2 table), so TimeOverlaps is read as "intersects";
# the strict Allen "overlaps" can never hold for an instant-valued property anyway.
TEMPORAL_OPS: dict[type, str] = {
    ast.TimeOverlaps: "intersects",
    ast.TimeDisjoint: "disjoint",
    ast.TimeBefore: "before",
    ast.TimeAfter: "after",
    ast.TimeDuring: "during",
    ast.TimeEquals: "equals",
}

COMPARISON_OPS: dict[type, str] = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}

_ARITHMETIC_OPS: dict[type, str] = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MS = timedelta(milliseconds=1)


SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1


def invalid(message: str) -> ProviderInvalidQueryError:
    """A 400 error whose text reaches the HTTP body (pygeoapi shows `user_msg`, not `msg`)."""
    return ProviderInvalidQueryError(user_msg=message)


def quote_ident(name: str) -> str:
    """Quote an SQL identifier taken from the table's own metadata."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableSchema:
    """What the translator may reference: queryable columns and their kinds, geometry, index."""

    table: str
    pk: str
    geom: str
    rtree: str | None
    kinds: Mapping[str, str]  # column -> string|integer|number|boolean|date|date-time
    time_field: str | None = None

    def kind(self, name: str, param: str) -> str:
        try:
            return self.kinds[name]
        except KeyError:
            raise invalid(f"{param}: unknown property '{name}'") from None

    def is_geometry(self, name: str) -> bool:
        # pygeoapi renames 'geometry' only when the config sets geom_field; accept both names.
        return name in ("geometry", self.geom)

    def time_span_sql(self, column: str) -> tuple[str, str]:
        """SQL for the start and end (julian days) of a temporal column's value.

        A DATE covers its whole day; date-times and ISO text are instants.
        """
        col = quote_ident(column)
        if self.kinds.get(column) == "date":
            return f"julianday({col})", f"julianday({col}, '+86399.999 seconds')"
        return f"julianday({col})", f"julianday({col})"


# --- values -------------------------------------------------------------------------------------


def parse_time(text: str, param: str) -> date | datetime:
    """Parse an RFC 3339 date or date-time; naive date-times are taken as UTC."""
    try:
        if _DATE_RE.match(text):
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"{param}: '{text}' is not an RFC 3339 date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def time_to_sql(value: date | datetime) -> str:
    """ISO text that SQLite's julianday() reads, in UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep="T", timespec="milliseconds")
    return value.isoformat()


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # SQLite integers are 64-bit: binding a larger one raises
        return value if SQLITE_INT_MIN <= value <= SQLITE_INT_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return _number(int(value))
        except ValueError:
            pass
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _boolean(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return int(value.strip().lower() in ("true", "1"))
    return None


def coerce_value(kind: str, value: Any, *, name: str, param: str) -> Any:
    """Convert a query value to what the column stores; raise naming the property if it can't."""
    result: Any = None
    if kind == "string":
        result = value if isinstance(value, str) else None
    elif kind in NUMERIC_KINDS:
        result = _number(value)
    elif kind == "boolean":
        result = _boolean(value)
    elif kind in TEMPORAL_KINDS:
        if isinstance(value, str):
            value = parse_time(value, f"{param} ({name})")
        if isinstance(value, date):  # datetime is a date subclass
            result = time_to_sql(value)
    if result is None:
        raise invalid(f"{param}: value {value!r} does not fit property '{name}' of type {kind}")
    return result


# --- time spans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSpan:
    """A closed UTC interval; None means open. A date stands for its whole day."""

    start: datetime | None
    end: datetime | None

    @classmethod
    def of(cls, value: Any, param: str) -> TimeSpan:
        if isinstance(value, values.Interval):
            start = cls.of(value.start, param).start if value.start is not None else None
            end = cls.of(value.end, param).end if value.end is not None else None
            return cls.checked(start, end, param)
        if isinstance(value, datetime):
            instant = value if value.tzinfo else value.replace(tzinfo=UTC)
            instant = instant.astimezone(UTC)
            return cls(instant, instant)
        if isinstance(value, date):
            start = datetime(value.year, value.month, value.day, tzinfo=UTC)
            return cls(start, start + timedelta(days=1) - _MS)
        if isinstance(value, str):
            return cls.of(parse_time(value, param), param)
        raise invalid(f"{param}: unsupported temporal value {value!r}")

    @classmethod
    def checked(cls, start: datetime | None, end: datetime | None, param: str) -> TimeSpan:
        if start is not None and end is not None and start > end:
            raise invalid(f"{param}: interval start is after its end")
        return cls(start, end)

    @classmethod
    def parse(cls, text: str, param: str = "datetime") -> TimeSpan:
        """An OGC API datetime: instant, 'start/end', with '..' or '' for an open end."""
        parts = text.strip().split("/")
        if len(parts) == 1:
            if parts[0] in ("", ".."):
                raise invalid(f"{param}: empty value")
            return cls.of(parts[0], param)
        if len(parts) != 2:
            raise invalid(f"{param}: '{text}' has more than one '/'")
        start = None if parts[0] in ("", "..") else cls.of(parts[0], param).start
        end = None if parts[1] in ("", "..") else cls.of(parts[1], param).end
        return cls.checked(start, end, param)

    def intersects(self, other: TimeSpan) -> bool:
        return (self.end is None or other.start is None or self.end >= other.start) and (
            self.start is None or other.end is None or self.start <= other.end
        )

    def bounds_sql(self) -> tuple[str | None, str | None]:
        start = time_to_sql(self.start) if self.start else None
        end = time_to_sql(self.end) if self.end else None
        return start, end


def temporal_sql(
    schema: TableSchema, column: str, relation: str, span: TimeSpan, null_safe: bool = False
) -> tuple[str, list]:
    """Relation between the column's span A=[a0, a1] and the literal span B=[b0, b1].

    A NULL time gives FALSE, which filters like NULL; under NOT the two differ, so negated
    callers pass `null_safe` to get SQL's NULL instead.
    """
    a0, a1 = schema.time_span_sql(column)
    b0, b1 = span.bounds_sql()
    terms: list[tuple[str, str | None]]  # (SQL with one '?', parameter), None when open
    if relation in ("intersects", "disjoint"):
        terms = [(f"{a0} <= julianday(?)", b1), (f"{a1} >= julianday(?)", b0)]
    elif relation == "before":
        terms = [(f"{a1} < julianday(?)", b0) if b0 else ("0", None)]
    elif relation == "after":
        terms = [(f"{a0} > julianday(?)", b1) if b1 else ("0", None)]
    elif relation == "during":
        terms = [(f"{a0} > julianday(?)", b0), (f"{a1} < julianday(?)", b1)]
    elif relation == "equals":
        terms = [(f"{a0} = julianday(?)", b0), (f"{a1} = julianday(?)", b1)]
        if b0 is None or b1 is None:
            terms = [("0", None)]  # no time equals an open end
    else:  # pragma: no cover - TEMPORAL_OPS lists every relation handled above
        raise invalid(f"unsupported temporal relation {relation}")
    terms = [t for t in terms if t[1] is not None or t[0] == "0"]
    condition = " AND ".join(t[0] for t in terms) or "1"
    params = [t[1] for t in terms if t[1] is not None]
    if relation == "disjoint":
        condition = f"NOT ({condition})"
    if null_safe:
        return f"CASE WHEN {a0} IS NULL THEN NULL ELSE ({condition}) END", params
    return f"{a0} IS NOT NULL AND ({condition})", params


# --- space --------------------------------------------------------------------------------------


def spatial_sql(
    schema: TableSchema, op: str, geometry: BaseGeometry, null_safe: bool = False
) -> tuple[str, list]:
    """Exact predicate op(feature, geometry), behind an R-tree prefilter where the op allows it.

    The prefilter stays a top-level AND term so SQLite drives the scan from the R-tree. A NULL
    geometry gives FALSE; with `null_safe` (under NOT) it gives NULL, as SQL comparisons do.
    """
    geom = quote_ident(schema.geom)
    if op == "disjoint":
        # disjoint == not intersects; rows outside the R-tree candidates need no exact test.
        inner, params = spatial_sql(schema, "intersects", geometry)
        if null_safe:
            return f"CASE WHEN {geom} IS NULL THEN NULL ELSE NOT ({inner}) END", params
        return f"{geom} IS NOT NULL AND NOT ({inner})", params
    wkb = shapely.to_wkb(geometry, flavor="iso")
    sql, params = f"gpkg_{op}({geom}, ?)", [wkb]
    if schema.rtree is not None and not geometry.is_empty:
        bounds = list(geometry.bounds)  # minx, miny, maxx, maxy
        rtree = f"{quote_ident(schema.pk)} IN (SELECT id FROM {quote_ident(schema.rtree)} WHERE "  # noqa: S608 - identifiers from metadata
        if op == "intersects" and _is_rectangle(geometry):
            # A feature whose (outward-rounded) R-tree box lies inside the rectangle intersects
            # it: only candidates straddling the edge need the exact test.
            inside = rtree + "minx >= ? AND miny >= ? AND maxx <= ? AND maxy <= ?)"
            sql, params = f"({inside} OR {sql})", bounds + params
        overlap = rtree + "maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?)"
        minx, miny, maxx, maxy = bounds
        sql, params = f"{overlap} AND {sql}", [minx, maxx, miny, maxy, *params]
    if null_safe:
        return f"CASE WHEN {geom} IS NULL THEN NULL ELSE ({sql}) END", params
    return sql, params


def _is_rectangle(geometry: BaseGeometry) -> bool:
    if geometry.geom_type != "Polygon" or geometry.area == 0:
        return False
    return bool(shapely.equals(geometry, shapely.box(*geometry.bounds)))


# --- CQL2 ---------------------------------------------------------------------------------------


@dataclass
class _Operand:
    """A translated scalar expression: SQL text plus its parameters, and what it holds."""

    sql: str
    params: list
    kind: str | None  # None for a literal whose type follows the other side
    value: Any = None  # the Python value when literal
    column: str | None = None  # set for a bare column reference

    @property
    def is_literal(self) -> bool:
        return self.kind is None


class CqlTranslator:
    """Translate a pygeofilter AST into a parameterised SQLite condition.

    Supported: AND/OR/NOT, comparisons, LIKE (CQL2 wildcards, case-sensitive via GLOB), IN,
    BETWEEN, IS NULL, INCLUDE/EXCLUDE, CASEI/ACCENTI, + - * / (real division), date/timestamp
    literals (compared as instants), the eight S_* predicates and BBOX against geometry literals,
    and T_BEFORE/T_AFTER/T_DURING/T_EQUALS/T_INTERSECTS/T_DISJOINT when a time field is set.
    Anything else raises `ProviderInvalidQueryError` naming the construct.
    """

    def __init__(self, schema: TableSchema, param: str = "filter"):
        self.schema = schema
        self.param = param
        self._negated = False  # inside an odd number of NOTs: FALSE and NULL then differ

    def translate(self, node: Any) -> tuple[str, list]:
        handler = self._handlers().get(type(node))
        if handler is None:
            for base, candidate in self._base_handlers():
                if isinstance(node, base):
                    handler = candidate
                    break
        if handler is None:
            raise self._unsupported(node)
        return handler(node)

    def _handlers(self) -> dict[type, Any]:
        return {
            ast.And: self._combination,
            ast.Or: self._combination,
            ast.Not: self._not,
            ast.Include: lambda node: ("0" if node.not_ else "1", []),
            ast.Like: self._like,
            ast.In: self._in,
            ast.Between: self._between,
            ast.IsNull: self._is_null,
            ast.BBox: self._bbox_predicate,
        }

    def _base_handlers(self) -> list[tuple[type, Any]]:
        return [
            (ast.Comparison, self._comparison),
            (ast.SpatialComparisonPredicate, self._spatial),
            (ast.TemporalPredicate, self._temporal),
        ]

    def _unsupported(self, node: Any) -> ProviderInvalidQueryError:
        name = type(node).__name__
        if isinstance(node, ast.Node):
            try:
                name = f"{name} ({ast.get_repr(node)})"
            except Exception:  # the repr only decorates the message
                pass
        return invalid(f"{self.param}: unsupported CQL2 construct: {name}")

    # logical ---------------------------------------------------------------------------------

    def _combination(self, node: ast.Combination) -> tuple[str, list]:
        # Flatten chains like a AND b AND c (parsed left-deep) without recursing per link.
        operands, stack = [], [node]
        while stack:
            item = stack.pop()
            if type(item) is type(node):
                stack += [item.rhs, item.lhs]
            else:
                operands.append(item)
        sqls, params = [], []
        for operand in operands:
            sql, operand_params = self.translate(operand)
            sqls.append(f"({sql})")
            params += operand_params
        return f" {node.op.value} ".join(sqls), params

    def _not(self, node: ast.Not) -> tuple[str, list]:
        self._negated = not self._negated
        try:
            sql, params = self.translate(node.sub_node)
        finally:
            self._negated = not self._negated
        return f"NOT ({sql})", params

    # operands --------------------------------------------------------------------------------

    def operand(self, node: Any) -> _Operand:
        if isinstance(node, ast.Attribute):
            return self._attribute(node.name)
        if isinstance(node, ast.Function):
            return self._function(node)
        if isinstance(node, ast.Arithmetic):
            return self._arithmetic(node)
        if isinstance(node, bool | int | float | str | date):
            return _Operand("?", [], None, value=node)
        raise self._unsupported(node)

    def _attribute(self, name: str) -> _Operand:
        if self.schema.is_geometry(name):
            return _Operand(quote_ident(self.schema.geom), [], "geometry", column=self.schema.geom)
        kind = self.schema.kind(name, self.param)
        return _Operand(quote_ident(name), [], kind, column=name)

    def _function(self, node: ast.Function) -> _Operand:
        name = node.name.lower()
        # pygeofilter turns CASEI(x) into lower(x); ACCENTI(x) stays accenti(x).
        transforms = {"lower": ("gpkg_lower", str.lower), "accenti": ("gpkg_unaccent", unaccent)}
        if name not in transforms or len(node.arguments) != 1:
            raise invalid(f"{self.param}: unsupported function {node.name}()")
        sql_name, python = transforms[name]
        arg = self.operand(node.arguments[0])
        if arg.is_literal:
            if not isinstance(arg.value, str):
                raise invalid(f"{self.param}: {node.name}() needs text, got {arg.value!r}")
            return _Operand("?", [], None, value=python(arg.value))
        if arg.kind != "string":
            raise invalid(f"{self.param}: {node.name}() needs a text property")
        return _Operand(f"{sql_name}({arg.sql})", arg.params, "string")

    def _arithmetic(self, node: ast.Arithmetic) -> _Operand:
        sides = [self.operand(node.lhs), self.operand(node.rhs)]
        for side in sides:
            literal_number = isinstance(side.value, int | float) and not isinstance(
                side.value, bool
            )
            if side.kind not in NUMERIC_KINDS and not (side.is_literal and literal_number):
                raise invalid(
                    f"{self.param}: arithmetic needs numbers, got {side.value or side.sql}"
                )
        (lsql, lparams), (rsql, rparams) = (self._sql_of(s, "number") for s in sides)
        op = _ARITHMETIC_OPS[type(node)]
        if op == "/":  # CQL2 '/' is real division; SQLite divides integers by truncation
            lsql = f"CAST({lsql} AS REAL)"
        return _Operand(f"({lsql} {op} {rsql})", lparams + rparams, "number")

    def _sql_of(self, operand: _Operand, kind: str, name: str | None = None) -> tuple[str, list]:
        """SQL for an operand used as `kind`: literals are coerced, temporal values made julian."""
        if operand.is_literal:
            value = coerce_value(kind, operand.value, name=name or kind, param=self.param)
            sql, params = "?", [value]
        else:
            sql, params = operand.sql, list(operand.params)
        if kind in TEMPORAL_KINDS:
            sql = f"julianday({sql})"
        return sql, params

    def _common_kind(self, lhs: _Operand, rhs: _Operand) -> tuple[str, str | None]:
        """The kind both sides are compared as, and the property name for messages."""
        if lhs.kind == "geometry" or rhs.kind == "geometry":
            raise invalid(f"{self.param}: geometries can only be compared with S_* predicates")
        if lhs.is_literal and rhs.is_literal:
            return _literal_kind(lhs.value), None
        typed = lhs if not lhs.is_literal else rhs
        other = rhs if typed is lhs else lhs
        if other.is_literal or _compatible(typed.kind, other.kind):
            kind = typed.kind
            if not other.is_literal and kind != other.kind and kind in NUMERIC_KINDS:
                kind = "number"
            return kind, typed.column or other.column
        raise invalid(f"{self.param}: cannot compare {typed.kind} with {other.kind}")

    # predicates ------------------------------------------------------------------------------

    def _comparison(self, node: ast.Comparison) -> tuple[str, list]:
        op = COMPARISON_OPS.get(type(node))
        if op is None:
            raise self._unsupported(node)
        lhs, rhs = self.operand(node.lhs), self.operand(node.rhs)
        kind, name = self._common_kind(lhs, rhs)
        lsql, lparams = self._sql_of(lhs, kind, name)
        rsql, rparams = self._sql_of(rhs, kind, name)
        return f"{lsql} {op} {rsql}", lparams + rparams

    def _between(self, node: ast.Between) -> tuple[str, list]:
        lhs = self.operand(node.lhs)
        parts = [self.operand(node.low), self.operand(node.high)]
        kind, name = self._common_kind(lhs, parts[0])
        self._common_kind(lhs, parts[1])
        sqls = [self._sql_of(o, kind, name) for o in [lhs, *parts]]
        neg = "NOT " if node.not_ else ""
        sql = f"{sqls[0][0]} {neg}BETWEEN {sqls[1][0]} AND {sqls[2][0]}"
        return sql, sqls[0][1] + sqls[1][1] + sqls[2][1]

    def _in(self, node: ast.In) -> tuple[str, list]:
        lhs = self.operand(node.lhs)
        options = [self.operand(o) for o in node.sub_nodes]
        if lhs.is_literal or not all(o.is_literal for o in options):
            raise invalid(f"{self.param}: IN needs a property and a list of literal values")
        kind, name = self._common_kind(lhs, options[0])
        lsql, params = self._sql_of(lhs, kind, name)
        sqls = []
        for option in options:
            sql, p = self._sql_of(option, kind, name)
            sqls.append(sql)
            params += p
        neg = "NOT " if node.not_ else ""
        return f"{lsql} {neg}IN ({', '.join(sqls)})", params

    def _is_null(self, node: ast.IsNull) -> tuple[str, list]:
        operand = self.operand(node.lhs)
        if operand.is_literal:
            raise invalid(f"{self.param}: IS NULL needs a property")
        return f"{operand.sql} IS {'NOT ' if node.not_ else ''}NULL", operand.params

    def _like(self, node: ast.Like) -> tuple[str, list]:
        lhs = self.operand(node.lhs)
        pattern = self.operand(node.pattern)
        if lhs.kind != "string" or not isinstance(pattern.value, str) or not pattern.is_literal:
            raise invalid(f"{self.param}: LIKE needs a text property and a text pattern")
        text = pattern.value
        lsql = lhs.sql
        if node.nocase:
            lsql, text = f"gpkg_lower({lsql})", text.lower()
        # GLOB, not LIKE: SQLite's LIKE ignores ASCII case, CQL2 LIKE does not.
        neg = "NOT " if node.not_ else ""
        return f"{lsql} {neg}GLOB ?", lhs.params + [like_to_glob(text)]

    def _spatial(self, node: ast.SpatialComparisonPredicate) -> tuple[str, list]:
        op = SPATIAL_OPS.get(type(node))
        if op is None:
            raise self._unsupported(node)
        lhs, rhs = self._spatial_side(node.lhs), self._spatial_side(node.rhs)
        if isinstance(lhs, BaseGeometry) and isinstance(rhs, BaseGeometry):
            return ("1" if getattr(shapely, op)(lhs, rhs) else "0"), []
        if isinstance(lhs, BaseGeometry):  # literal first: flip to feature-first
            lhs, rhs, op = rhs, lhs, CONVERSE.get(op, op)
        if not isinstance(rhs, BaseGeometry):
            raise invalid(f"{self.param}: spatial predicates need one geometry literal")
        return spatial_sql(self.schema, op, rhs, self._negated)

    def _spatial_side(self, node: Any) -> BaseGeometry | str:
        if isinstance(node, ast.Attribute):
            if not self.schema.is_geometry(node.name):
                self.schema.kind(node.name, self.param)  # unknown -> error naming it
                raise invalid(f"{self.param}: '{node.name}' is not the geometry property")
            return "geometry"
        return geometry_literal(node, self.param)

    def _bbox_predicate(self, node: ast.BBox) -> tuple[str, list]:
        if node.crs:
            raise invalid(f"{self.param}: BBOX with an explicit CRS is not supported")
        if self._spatial_side(node.lhs) != "geometry":
            raise invalid(f"{self.param}: BBOX needs the geometry property")
        box = box_geometry(node.minx, node.miny, node.maxx, node.maxy)
        return spatial_sql(self.schema, "intersects", box, self._negated)

    def _temporal(self, node: ast.TemporalPredicate) -> tuple[str, list]:
        relation = TEMPORAL_OPS.get(type(node))
        if relation is None:
            raise self._unsupported(node)
        if self.schema.time_field is None:
            raise invalid(f"{self.param}: temporal predicates need a time field (none configured)")
        lhs = self.operand(node.lhs)
        temporal = lhs.kind in TEMPORAL_KINDS or lhs.column == self.schema.time_field
        if lhs.column is None or not temporal:
            raise invalid(f"{self.param}: temporal predicates need a date property first")
        span = TimeSpan.of(node.rhs, self.param)
        return temporal_sql(self.schema, lhs.column, relation, span, self._negated)


def _compatible(a: str | None, b: str | None) -> bool:
    groups = [NUMERIC_KINDS, TEMPORAL_KINDS, {"string"}, {"boolean"}]
    return any(a in g and b in g for g in groups)


def _literal_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, date):
        return "date-time"
    return "string"


def box_geometry(minx: float, miny: float, maxx: float, maxy: float) -> BaseGeometry:
    """The box as a valid geometry: a zero-width or zero-height box is a line or a point."""
    if minx == maxx and miny == maxy:
        return shapely.Point(minx, miny)
    if minx == maxx or miny == maxy:
        return shapely.LineString([(minx, miny), (maxx, maxy)])
    return shapely.box(minx, miny, maxx, maxy)


def geometry_literal(node: Any, param: str) -> BaseGeometry:
    """A shapely geometry from a pygeofilter geometry, envelope or BBOX(...) function node."""
    try:
        if isinstance(node, values.Geometry):
            return shape(node.geometry)
        if isinstance(node, values.Envelope):
            # pygeofilter fills Envelope(x1, x2, y1, y2) positionally from CQL2 JSON
            # {"bbox": [minx, miny, maxx, maxy]} (and from text ENVELOPE(a b c d)), so the fields
            # hold minx, miny, maxx, maxy in that order despite their names.
            return box_geometry(node.x1, node.x2, node.y1, node.y2)
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            # CQL2 text BBOX(minx, miny, maxx, maxy) arrives as a function call.
            args = node.arguments
            if len(args) == 4 and all(_number(a) is not None for a in args):
                return box_geometry(*args)
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException) as err:
        raise invalid(f"{param}: invalid geometry literal ({err})") from None
    raise invalid(f"{param}: expected a geometry literal, got {node!r}")


def like_to_glob(pattern: str, escape: str = "\\") -> str:
    """CQL2 LIKE pattern ('%' any run, '_' one character, '\\' escapes) to a SQLite GLOB."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == escape:
            char = next(chars, escape)
            out.append(_glob_literal(char))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_literal(char))
    return "".join(out)


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in "*?[" else char


def unaccent(text: str) -> str:
    """Drop combining marks (CQL2 ACCENTI): 'Ысык-Көл' and 'Ысык-Кол' compare equal."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )
