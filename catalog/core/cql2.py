"""CQL2 filters: parsed once (text or JSON), translated into parameterised SQL conditions.

`parse_filter` turns a request's filter into a pygeofilter tree (`Cql2Error` if it cannot).
`to_sql` translates a tree into ``(sql, params)`` for one `FilterTarget`: the target says what
a property name stands for in SQL (`FilterTarget.resolve`), how a spatial predicate is tested
and where a property's time span lies. The GeoPackage library (catalog/gpkg) is the target of
feature layers; the STAC API's SQLite index is another (catalog/stac_api/cql.py).

The SQL this module writes itself (placeholders, truth constants, instants, LIKE, case and
accent folding, real division) comes from a `SqlDialect`: `SQLITE` by default, `POSTGRESQL`
for PostGIS layers (catalog/features/postgis.py), whose targets hand it to `to_sql`.

Values always travel as ``?`` parameters; the only text spliced into SQL is what a target
returns (quoted identifiers, fixed fragments) and the fixed fragments of this module. Anything
that cannot be applied faithfully raises `Cql2Error` naming the parameter, never a silent
"match everything".

SQL functions an SQLite target's connection must provide (catalog/gpkg registers them):
``gpkg_lower(text)``, Unicode lower case (SQLite's ``lower()`` folds ASCII only, and the
catalog's text is largely Cyrillic); ``gpkg_unaccent(text)``, combining marks stripped (CQL2
``ACCENTI``). A PostgreSQL target's schema provides ``instant``, ``lower_text`` and
``unaccent_text`` (catalog/postgis/schema.py).
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import shapely
from pygeofilter import ast, values
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from catalog.core.parse import DatetimeError, ParameterError, TimeSpan, parse_instant
from catalog.core.sql import SQLITE_INT_MAX, SQLITE_INT_MIN

NUMERIC_KINDS = frozenset({"integer", "number"})
TEMPORAL_KINDS = frozenset({"date", "date-time"})
LOWER_SQL = "gpkg_lower"
UNACCENT_SQL = "gpkg_unaccent"
LANGUAGES = ("cql2-text", "cql2-json")

# CQL2 spatial predicate node -> predicate name (shapely's, and the SQL function suffix).
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

# Temporal relations between a property's time span A and a literal span B. pygeofilter 0.4
# maps CQL2 T_INTERSECTS to TimeOverlaps (its cql2 table), so TimeOverlaps is read as
# "intersects"; the strict Allen "overlaps" can never hold for an instant-valued property.
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


class Cql2Error(ParameterError):
    """A filter that cannot be parsed or applied; the message names the parameter.

    For a filter that does not parse, `lang` is the language it was read as and `cause` the
    parser's own exception (its type and first line are what services show).
    """

    kind = "filter"

    def __init__(self, message: str, param: str = "filter", problem: str = "invalid",
                 lang: str | None = None, cause: BaseException | None = None,
                 message_code: str | None = None, params: dict | None = None):
        super().__init__(param, message, problem, message_code, params)
        self.lang = lang
        self.cause = cause


# --- parsing --------------------------------------------------------------------------------


def parse_filter(value: str | dict, lang: str = "cql2-text", param: str = "filter") -> Any:
    """The pygeofilter tree of a CQL2 text (a string) or CQL2 JSON (a string or a parsed
    document) filter. Parse once per request and hand the tree on."""
    # Imported here: building the CQL2 text grammar takes 0.15 s, which processes that never
    # parse a filter (the isolated reader converting a file) need not pay.
    from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
    from pygeofilter.parsers.cql2_text import parse as parse_cql2_text

    try:
        if lang == "cql2-text":
            if not isinstance(value, str):
                raise Cql2Error(f"{param}: cql2-text filters are strings", param, "type", lang)
            quick = _parse_with_plain_timestamps(value, parse_cql2_text)
            return quick if quick is not None else parse_cql2_text(value)
        return parse_cql2_json(_plain_timestamps_read(between_as_pygeofilter_reads(value)))
    except Cql2Error:
        raise
    except RecursionError as err:
        raise Cql2Error(f"{param}: expression is nested too deeply", param, "depth", lang,
                        err) from None
    except Exception as err:  # lark and pygeofilter raise many kinds; all mean "bad filter"
        first_line = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise Cql2Error(f"{param}: not valid {lang} ({type(err).__name__}: {first_line})",
                        param, "syntax", lang, err) from None


_PLAIN_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")


def _plain_timestamps_read(node: Any, operand: bool = False) -> Any:
    """A CQL2 JSON document whose operands `{"timestamp": "<plain RFC 3339>"}` are already
    datetimes (pygeofilter's JSON parser takes datetime values as they are; for the text it
    calls dateparser, about 5 ms of CPU a literal: issue 14). Other forms are left to it."""
    if isinstance(node, list):
        return [_plain_timestamps_read(item, operand) for item in node]
    if not isinstance(node, dict):
        return node
    if operand and len(node) == 1 and isinstance(node.get("timestamp"), str) \
            and _PLAIN_INSTANT.fullmatch(node["timestamp"]):
        try:
            return datetime.fromisoformat(node["timestamp"])
        except ValueError:
            return node  # not a date (2021-02-30): pygeofilter says what it says of it
    if "op" in node and isinstance(node.get("args"), list):
        return {**node, "args": _plain_timestamps_read(node["args"], True)}
    return node


# A CQL2 text TIMESTAMP literal in the plain RFC 3339 form (UTC offset included), outside any
# quoted text; quoted texts are matched first so that a TIMESTAMP inside one is left alone.
_TEXT_TOKENS = re.compile(
    r"'[^']*'|\"[^\"]*\"|(?<![A-Za-z0-9_:.])TIMESTAMP\('(?P<instant>\d{4}-\d{2}-\d{2}T\d{2}:"
    r"\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2}))'\)")
_STAND_IN_YEAR = "0001-"  # DATE literals standing in for timestamps: 0001-01-01 onwards
_MAX_STAND_INS = 300


def _parse_with_plain_timestamps(text: str, parse: Callable[[str], Any]) -> Any:
    """The tree pygeofilter makes of a CQL2 text filter, with its plain TIMESTAMP literals
    read by the standard library instead of `dateparser` (which pygeofilter 0.4 calls for
    each, about 5 ms of CPU a literal, 85-90 % of a search with one: issue 14). Each such
    literal is replaced by a DATE literal of year 1 (the grammar takes DATE wherever it
    takes TIMESTAMP, and nowhere else), the text parsed by pygeofilter, and the dates put
    back as the instants they stand for. None (the caller parses the text as it is) when
    the text has no such literal, already names year 1, fails to parse, or a stand-in is
    not found back exactly once as a date value of the tree."""
    if "TIMESTAMP('" not in text or _STAND_IN_YEAR in text:
        return None
    instants: dict[date, datetime] = {}
    pieces: list[str] = []
    position = 0
    for match in _TEXT_TOKENS.finditer(text):
        literal = match.group("instant")
        if literal is None:
            continue
        try:
            instant = datetime.fromisoformat(literal)
        except ValueError:
            continue  # not a date (2021-02-30): pygeofilter says what it says of it
        if len(instants) >= _MAX_STAND_INS:
            return None
        stand_in = date(1, 1, 1) + timedelta(days=len(instants))
        instants[stand_in] = instant
        pieces += [text[position:match.start()], f"DATE('{stand_in.isoformat()}')"]
        position = match.end()
    if not instants:
        return None
    try:
        tree = parse("".join([*pieces, text[position:]]))
    except Exception:  # the text as it is gets parsed and its error reported
        return None
    found: list[date] = []
    tree = _put_back(tree, instants, found)
    if sorted(found) != sorted(instants):
        return None
    return tree


def _put_back(node: Any, instants: dict[date, datetime], found: list[date]) -> Any:
    """`node` with the stand-in dates of `instants` replaced (in place) by their instants."""
    if type(node) is date:
        if node in instants:
            found.append(node)
            return instants[node]
        return node
    if isinstance(node, list):
        return [_put_back(item, instants, found) for item in node]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            replaced = _put_back(value, instants, found)
            if replaced is not value:
                setattr(node, field.name, replaced)
    return node


def between_as_pygeofilter_reads(node: Any) -> Any:
    """A CQL2 JSON document with `between` in the draft form pygeofilter 0.4 knows
    (args [value, [low, high]]); CQL2 1.0 writes args [value, low, high]."""
    if isinstance(node, list):
        return [between_as_pygeofilter_reads(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: between_as_pygeofilter_reads(value) for key, value in node.items()}
    if node.get("op") == "between" and len(node.get("args", [])) == 3:
        value, low, high = node["args"]
        node["args"] = [value, [low, high]]
    return node


# --- the SQL dialect ------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlDialect:
    """The SQL a translation writes itself, per database. Templates take one expression.

    `instant` turns a time value (ISO text) into something ordered in time; `like` is the
    operator of a case-sensitive pattern match and `pattern` turns a CQL2 LIKE pattern into
    its operand."""

    name: str
    placeholder: str
    true: str
    false: str
    instant: str
    lower: str
    unaccent: str
    real: str
    divide: str  # numerator, denominator; NULL for a zero denominator, as SQLite answers
    like: str
    pattern: Callable[[str], str]

    def constant(self, value: bool) -> str:
        return self.true if value else self.false


def like_to_postgresql(pattern: str, escape: str = "\\") -> str:
    """CQL2 LIKE pattern to a PostgreSQL LIKE pattern (escape '\\'), every escape explicit so
    that a trailing backslash stays a literal backslash."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == escape:
            out.append("\\" + next(chars, escape))
        elif char in "%_":
            out.append(char)
        else:
            out.append("\\" + char if char == "\\" else char)
    return "".join(out)


# --- the target of a translation ----------------------------------------------------------


@dataclass(frozen=True)
class Property:
    """What a property name stands for in SQL."""

    sql: str  # an expression: a quoted column, or e.g. json_extract(props, ?)
    kind: str  # string|integer|number|boolean|date|date-time, or geometry
    params: tuple = ()  # parameters of `sql`
    name: str | None = None  # the property (for messages and time spans)
    # The SQL already holds the time as the dialect's `instant` would make it (e.g. a column of
    # Julian days in SQLite): compared bare, so an index on it serves the comparison.
    instant: bool = False


class FilterTarget(Protocol):
    """Where a filter applies: a table with queryable properties."""

    time_field: str | None  # the property temporal predicates may use without a time kind

    def resolve(self, name: str, param: str, spatial: bool = False) -> Property:
        """The property a filter names; Cql2Error naming `param` when there is none.
        `spatial`: the name is an argument of a spatial predicate (S_*, BBOX)."""

    def spatial_sql(self, op: str, geometry: BaseGeometry,
                    null_safe: bool = False) -> tuple[str, list]:
        """op(the feature's geometry, geometry) for op in SPATIAL_OPS' values."""

    def time_span_sql(self, name: str) -> tuple[str, str]:
        """SQL for the start and end (Julian days) of a temporal property's value."""


def column_time_span_sql(column_sql: str, kind: str | None) -> tuple[str, str]:
    """Start and end (Julian days) of a column's value: a DATE covers its whole day;
    date-times and ISO text are instants."""
    if kind == "date":
        return f"julianday({column_sql})", f"julianday({column_sql}, '+86399.999 seconds')"
    return f"julianday({column_sql})", f"julianday({column_sql})"


# --- values -----------------------------------------------------------------------------


def parse_time(text: str, param: str) -> date | datetime:
    """An RFC 3339 date or date-time (naive date-times are UTC)."""
    span = parse_instant(text, param)
    if span.start is not None and span.end != span.start:  # a whole day: the date itself
        return span.start.date()
    return span.start


def time_to_sql(value: date | datetime) -> str:
    """ISO text that SQLite's julianday() reads, in UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep="T", timespec="milliseconds")
    return value.isoformat()


def span_bounds_sql(span: TimeSpan) -> tuple[str | None, str | None]:
    """The span's ends as time_to_sql text (None where open)."""
    return (time_to_sql(span.start) if span.start else None,
            time_to_sql(span.end) if span.end else None)


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
    """A query value as the column stores it; Cql2Error naming the property if it cannot be."""
    result: Any = None
    if kind == "string":
        result = value if isinstance(value, str) else None
    elif kind in NUMERIC_KINDS:
        result = _number(value)
    elif kind == "boolean":
        result = _boolean(value)
    elif kind in TEMPORAL_KINDS:
        if isinstance(value, str):
            try:
                value = parse_time(value, f"{param} ({name})")
            except DatetimeError as err:
                raise Cql2Error(str(err), param, "value") from None
        if isinstance(value, date):  # datetime is a date subclass
            result = time_to_sql(value)
    if result is None:
        raise Cql2Error(f"{param}: value {value!r} does not fit property '{name}' of type "
                        f"{kind}", param, "value")
    return result


def time_span_of(value: Any, param: str) -> TimeSpan:
    """The span of a CQL2 temporal literal (instant, date, interval) or ISO text."""
    if isinstance(value, values.Interval):
        start = time_span_of(value.start, param).start if value.start is not None else None
        end = time_span_of(value.end, param).end if value.end is not None else None
        if start is not None and end is not None and start > end:
            raise Cql2Error(f"{param}: interval start is after its end", param, "value")
        return TimeSpan(start, end)
    if isinstance(value, datetime):
        return TimeSpan.instant(value)
    if isinstance(value, date):
        return TimeSpan.day(value)
    if isinstance(value, str):
        return time_span_of(parse_time(value, param), param)
    raise Cql2Error(f"{param}: unsupported temporal value {value!r}", param, "value")


# --- SQL pieces -------------------------------------------------------------------------


def temporal_sql(span_sql: tuple[str, str], relation: str, span: TimeSpan,
                 null_safe: bool = False, dialect: SqlDialect | None = None) -> tuple[str, list]:
    """Relation between a property's span A=[a0, a1] (SQL) and the literal span B=[b0, b1].

    A NULL time gives FALSE, which filters like NULL; under NOT the two differ, so negated
    callers pass `null_safe` to get SQL's NULL instead.
    """
    dialect = dialect or SQLITE
    a0, a1 = span_sql
    b0, b1 = span_bounds_sql(span)
    literal = dialect.instant.format(dialect.placeholder)
    never = dialect.false
    terms: list[tuple[str, str | None]]  # (SQL with one placeholder, parameter), None when open
    if relation in ("intersects", "disjoint"):
        terms = [(f"{a0} <= {literal}", b1), (f"{a1} >= {literal}", b0)]
    elif relation == "before":
        terms = [(f"{a1} < {literal}", b0) if b0 else (never, None)]
    elif relation == "after":
        terms = [(f"{a0} > {literal}", b1) if b1 else (never, None)]
    elif relation == "during":
        terms = [(f"{a0} > {literal}", b0), (f"{a1} < {literal}", b1)]
    elif relation == "equals":
        terms = [(f"{a0} = {literal}", b0), (f"{a1} = {literal}", b1)]
        if b0 is None or b1 is None:
            terms = [(never, None)]  # no time equals an open end
    else:  # pragma: no cover - TEMPORAL_OPS lists every relation handled above
        raise Cql2Error(f"unsupported temporal relation {relation}")
    terms = [t for t in terms if t[1] is not None or t[0] == never]
    condition = " AND ".join(t[0] for t in terms) or dialect.true
    params = [t[1] for t in terms if t[1] is not None]
    if relation == "disjoint":
        condition = f"NOT ({condition})"
    if null_safe:
        return f"CASE WHEN {a0} IS NULL THEN NULL ELSE ({condition}) END", params
    return f"{a0} IS NOT NULL AND ({condition})", params


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
            # {"bbox": [minx, miny, maxx, maxy]} (and from text ENVELOPE(a b c d)), so the
            # fields hold minx, miny, maxx, maxy in that order despite their names.
            return box_geometry(node.x1, node.x2, node.y1, node.y2)
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            # CQL2 text BBOX(minx, miny, maxx, maxy) arrives as a function call.
            args = node.arguments
            if len(args) == 4 and all(_number(a) is not None for a in args):
                return box_geometry(*args)
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException) as err:
        raise Cql2Error(f"{param}: invalid geometry literal ({err})", param, "value") from None
    raise Cql2Error(f"{param}: expected a geometry literal, got {node!r}", param, "value")


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


SQLITE = SqlDialect(
    name="sqlite", placeholder="?", true="1", false="0", instant="julianday({})",
    lower=LOWER_SQL + "({})", unaccent=UNACCENT_SQL + "({})", real="CAST({} AS REAL)",
    divide="({} / {})",
    # GLOB, not LIKE: SQLite's LIKE ignores ASCII case, CQL2 LIKE does not.
    like="GLOB", pattern=like_to_glob)
# The functions named here live in the schema of the feature tables (catalog/postgis).
POSTGRESQL = SqlDialect(
    name="postgresql", placeholder="%s", true="TRUE", false="FALSE",
    instant="taza_features.instant({})", lower="taza_features.lower_text({})",
    unaccent="taza_features.unaccent_text({})", real="CAST({} AS double precision)",
    divide="({} / NULLIF({}, 0))",
    like="LIKE", pattern=like_to_postgresql)


def unaccent(text: str) -> str:
    """Drop combining marks (CQL2 ACCENTI): 'Ысык-Көл' and 'Ысык-Кол' compare equal."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


# --- translation ------------------------------------------------------------------------


def to_sql(node: Any, target: FilterTarget, param: str = "filter",
           dialect: SqlDialect | None = None) -> tuple[str, list]:
    """Parameterised SQL for a parsed filter over `target` in `dialect` (SQLite unless
    given); Cql2Error naming `param`."""
    try:
        return _Translator(target, param, dialect or SQLITE).translate(node)
    except RecursionError:
        raise Cql2Error(f"{param}: expression is nested too deeply", param, "depth") from None


@dataclass
class _Operand:
    """A translated scalar expression: SQL text plus its parameters, and what it holds."""

    sql: str
    params: list
    kind: str | None  # None for a literal whose type follows the other side
    value: Any = None  # the Python value when literal
    column: str | None = None  # the property name for a bare property reference
    instant: bool = False  # SQL already in the dialect's instant form (Property.instant)

    @property
    def is_literal(self) -> bool:
        return self.kind is None


class _Translator:
    """Translate a pygeofilter tree into a parameterised SQLite condition.

    Supported: AND/OR/NOT, comparisons, LIKE (CQL2 wildcards, case-sensitive via GLOB), IN,
    BETWEEN, IS NULL, INCLUDE/EXCLUDE, CASEI/ACCENTI, + - * / (real division), date/timestamp
    literals (compared as instants), the eight S_* predicates and BBOX against geometry
    literals, and T_BEFORE/T_AFTER/T_DURING/T_EQUALS/T_INTERSECTS/T_DISJOINT when the target
    has a time field. Anything else raises Cql2Error naming the construct.
    """

    def __init__(self, target: FilterTarget, param: str, dialect: SqlDialect):
        self.target = target
        self.param = param
        self.dialect = dialect
        self._negated = False  # inside an odd number of NOTs: FALSE and NULL then differ
        self._handlers: dict[type, Callable[[Any], tuple[str, list]]] = {
            ast.And: self._combination,
            ast.Or: self._combination,
            ast.Not: self._not,
            ast.Include: lambda node: (self.dialect.constant(not node.not_), []),
            ast.Like: self._like,
            ast.In: self._in,
            ast.Between: self._between,
            ast.IsNull: self._is_null,
            ast.BBox: self._bbox_predicate,
        }
        self._base_handlers: list[tuple[type, Callable[[Any], tuple[str, list]]]] = [
            (ast.Comparison, self._comparison),
            (ast.SpatialComparisonPredicate, self._spatial),
            (ast.TemporalPredicate, self._temporal),
        ]

    def invalid(self, message: str) -> Cql2Error:
        return Cql2Error(f"{self.param}: {message}", self.param)

    def translate(self, node: Any) -> tuple[str, list]:
        handler = self._handlers.get(type(node))
        if handler is None:
            for base, candidate in self._base_handlers:
                if isinstance(node, base):
                    handler = candidate
                    break
        if handler is None:
            raise self._unsupported(node)
        return handler(node)

    def _unsupported(self, node: Any) -> Cql2Error:
        name = type(node).__name__
        if isinstance(node, ast.Node):
            try:
                name = f"{name} ({ast.get_repr(node)})"
            except Exception:  # the repr only decorates the message
                pass
        return self.invalid(f"unsupported CQL2 construct: {name}")

    # logical -------------------------------------------------------------------------------

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

    # operands ------------------------------------------------------------------------------

    def operand(self, node: Any) -> _Operand:
        if isinstance(node, ast.Attribute):
            found = self.target.resolve(node.name, self.param)
            return _Operand(found.sql, list(found.params), found.kind, column=found.name,
                            instant=found.instant)
        if isinstance(node, ast.Function):
            return self._function(node)
        if isinstance(node, ast.Arithmetic):
            return self._arithmetic(node)
        if isinstance(node, bool | int | float | str | date):
            return _Operand(self.dialect.placeholder, [], None, value=node)
        raise self._unsupported(node)

    def _function(self, node: ast.Function) -> _Operand:
        name = node.name.lower()
        # pygeofilter turns CASEI(x) into lower(x); ACCENTI(x) stays accenti(x).
        transforms = {"lower": (self.dialect.lower, str.lower),
                      "accenti": (self.dialect.unaccent, unaccent)}
        if name not in transforms or len(node.arguments) != 1:
            raise self.invalid(f"unsupported function {node.name}()")
        sql_template, python = transforms[name]
        arg = self.operand(node.arguments[0])
        if arg.is_literal:
            if not isinstance(arg.value, str):
                raise self.invalid(f"{node.name}() needs text, got {arg.value!r}")
            return _Operand(self.dialect.placeholder, [], None, value=python(arg.value))
        if arg.kind != "string":
            raise self.invalid(f"{node.name}() needs a text property")
        return _Operand(sql_template.format(arg.sql), arg.params, "string")

    def _arithmetic(self, node: ast.Arithmetic) -> _Operand:
        sides = [self.operand(node.lhs), self.operand(node.rhs)]
        for side in sides:
            literal_number = isinstance(side.value, int | float) and not isinstance(
                side.value, bool
            )
            if side.kind not in NUMERIC_KINDS and not (side.is_literal and literal_number):
                raise self.invalid(f"arithmetic needs numbers, got {side.value or side.sql}")
        (lsql, lparams), (rsql, rparams) = (self._sql_of(s, "number") for s in sides)
        op = _ARITHMETIC_OPS[type(node)]
        if op == "/":  # CQL2 '/' is real division; SQL divides integers by truncation
            divided = self.dialect.divide.format(self.dialect.real.format(lsql), rsql)
            return _Operand(divided, lparams + rparams, "number")
        return _Operand(f"({lsql} {op} {rsql})", lparams + rparams, "number")

    def _sql_of(self, operand: _Operand, kind: str, name: str | None = None) -> tuple[str, list]:
        """SQL for an operand used as `kind`: literals coerced, temporal values made julian."""
        if operand.is_literal:
            value = coerce_value(kind, operand.value, name=name or kind, param=self.param)
            sql, params = self.dialect.placeholder, [value]
        else:
            sql, params = operand.sql, list(operand.params)
        if kind in TEMPORAL_KINDS and not operand.instant:
            sql = self.dialect.instant.format(sql)
        return sql, params

    def _common_kind(self, lhs: _Operand, rhs: _Operand) -> tuple[str, str | None]:
        """The kind both sides are compared as, and the property name for messages."""
        if lhs.kind == "geometry" or rhs.kind == "geometry":
            raise self.invalid("geometries can only be compared with S_* predicates")
        if lhs.is_literal and rhs.is_literal:
            return _literal_kind(lhs.value), None
        typed = lhs if not lhs.is_literal else rhs
        other = rhs if typed is lhs else lhs
        if other.is_literal or _compatible(typed.kind, other.kind):
            kind = typed.kind
            if not other.is_literal and kind != other.kind and kind in NUMERIC_KINDS:
                kind = "number"
            return kind, typed.column or other.column
        raise self.invalid(f"cannot compare {typed.kind} with {other.kind}")

    # predicates ----------------------------------------------------------------------------

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
            raise self.invalid("IN needs a property and a list of literal values")
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
            raise self.invalid("IS NULL needs a property")
        return f"{operand.sql} IS {'NOT ' if node.not_ else ''}NULL", operand.params

    def _like(self, node: ast.Like) -> tuple[str, list]:
        lhs = self.operand(node.lhs)
        pattern = self.operand(node.pattern)
        if lhs.kind != "string" or not isinstance(pattern.value, str) or not pattern.is_literal:
            raise self.invalid("LIKE needs a text property and a text pattern")
        text = pattern.value
        lsql = lhs.sql
        if node.nocase:
            lsql, text = self.dialect.lower.format(lsql), text.lower()
        neg = "NOT " if node.not_ else ""
        return (f"{lsql} {neg}{self.dialect.like} {self.dialect.placeholder}",
                lhs.params + [self.dialect.pattern(text)])

    def _spatial(self, node: ast.SpatialComparisonPredicate) -> tuple[str, list]:
        op = SPATIAL_OPS.get(type(node))
        if op is None:
            raise self._unsupported(node)
        lhs, rhs = self._spatial_side(node.lhs), self._spatial_side(node.rhs)
        if isinstance(lhs, BaseGeometry) and isinstance(rhs, BaseGeometry):
            return self.dialect.constant(bool(getattr(shapely, op)(lhs, rhs))), []
        if isinstance(lhs, BaseGeometry):  # literal first: flip to feature-first
            lhs, rhs, op = rhs, lhs, CONVERSE.get(op, op)
        if not isinstance(rhs, BaseGeometry):
            raise self.invalid("spatial predicates need one geometry literal")
        return self.target.spatial_sql(op, rhs, self._negated)

    def _spatial_side(self, node: Any) -> BaseGeometry | str:
        if isinstance(node, ast.Attribute):
            if self.target.resolve(node.name, self.param, spatial=True).kind != "geometry":
                raise self.invalid(f"'{node.name}' is not the geometry property")
            return "geometry"
        return geometry_literal(node, self.param)

    def _bbox_predicate(self, node: ast.BBox) -> tuple[str, list]:
        if node.crs:
            raise self.invalid("BBOX with an explicit CRS is not supported")
        if self._spatial_side(node.lhs) != "geometry":
            raise self.invalid("BBOX needs the geometry property")
        box = box_geometry(node.minx, node.miny, node.maxx, node.maxy)
        return self.target.spatial_sql("intersects", box, self._negated)

    def _temporal(self, node: ast.TemporalPredicate) -> tuple[str, list]:
        relation = TEMPORAL_OPS.get(type(node))
        if relation is None:
            raise self._unsupported(node)
        if self.target.time_field is None:
            raise self.invalid("temporal predicates need a time field (none configured)")
        lhs = self.operand(node.lhs)
        temporal = lhs.kind in TEMPORAL_KINDS or lhs.column == self.target.time_field
        if lhs.column is None or not temporal:
            raise self.invalid("temporal predicates need a date property first")
        span = time_span_of(node.rhs, self.param)
        return temporal_sql(self.target.time_span_sql(lhs.column), relation, span,
                            self._negated, self.dialect)


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


def is_rectangle(geometry: BaseGeometry) -> bool:
    """A polygon of positive area that is exactly its bounding box. The usual ring of four
    corners (a request's bbox) is recognised from its coordinates; other rings (more
    points, holes) ask GEOS (about 0.1 ms a call, per search: issue 14)."""
    if geometry.geom_type != "Polygon":
        return False
    if shapely.get_num_interior_rings(geometry) == 0:
        ring = shapely.get_coordinates(geometry).tolist()
        if len(ring) == 5 and ring[0] == ring[4]:
            return _four_corners(ring)
    if geometry.area == 0:
        return False
    return bool(shapely.equals(geometry, shapely.box(*geometry.bounds)))


def _four_corners(ring: list[list[float]]) -> bool:
    """Whether a closed ring of five points (last = first) is the four distinct corners of a
    box of positive area, every edge along an axis."""
    xs, ys = {p[0] for p in ring}, {p[1] for p in ring}
    if len(xs) != 2 or len(ys) != 2 or len({(p[0], p[1]) for p in ring}) != 4:
        return False
    return all((a[0] == b[0]) != (a[1] == b[1]) for a, b in zip(ring, ring[1:], strict=False))
