"""CQL2 filters on STAC items: parse (text or JSON) and translate to parameterised SQLite.

The translation is the feature provider's (`catalog.ogc.providers.cql_sql.CqlTranslator`);
this module only tells it where item properties live in the index: `id`, `collection` and
`datetime` are columns, every other property is `json_extract(props, ?)` with the JSON path
bound as a parameter. Properties that no item declares may be named too (the queryables say
`additionalProperties: true`, as pgstac does); their type is taken from the literal they are
compared with, and on items that lack them they are NULL, so comparisons are false.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pygeoapi.provider.base import ProviderInvalidQueryError
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text

from catalog.ogc.providers.cql_sql import CqlTranslator, TableSchema, _Operand, invalid
from catalog.stac_api.backend import InvalidQuery

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


class _ItemsSchema(TableSchema):
    def time_span_sql(self, column: str) -> tuple[str, str]:
        if column not in TIME_SPANS:
            raise invalid(f"filter: temporal predicates apply to {', '.join(TIME_SPANS)}")
        return TIME_SPANS[column]


ITEMS_SCHEMA = _ItemsSchema(table="items", pk="pk", geom="geometry", rtree="items_rtree",
                            kinds=COLUMN_KINDS, time_field="datetime")


def property_name(name: str, param: str) -> str:
    """A property as named in a request ('properties.x' or 'x'), checked; returns 'x'."""
    if name.startswith("properties."):
        name = name[len("properties."):]
    if not PROPERTY_NAME.match(name):
        raise InvalidQuery(f"{param}: '{name[:80]}' is not a property name")
    return name


def json_path(name: str, param: str) -> str:
    """The JSON path of an item property, bound as a parameter (never spliced into SQL)."""
    return f'$."{property_name(name, param)}"'


def parse(text_or_json: str | dict, lang: str) -> Any:
    """A pygeofilter AST from CQL2 text or CQL2 JSON; InvalidQuery naming `filter` if bad."""
    try:
        if lang == "cql2-text":
            if not isinstance(text_or_json, str):
                raise InvalidQuery("filter: cql2-text filters are strings")
            return parse_cql2_text(text_or_json)
        return parse_cql2_json(text_or_json)
    except InvalidQuery:
        raise
    except RecursionError:
        raise InvalidQuery("filter: expression is nested too deeply") from None
    except Exception as err:  # lark and pygeofilter raise many kinds; all mean "bad filter"
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise InvalidQuery(f"filter: not valid {lang} ({type(err).__name__}: {detail})") from None


def to_sql(node: Any, declared: dict[str, str] | None = None) -> tuple[str, list]:
    """Parameterised SQL for a parsed filter over the `items` table."""
    try:
        kinds = {**_literal_kinds(node), **(declared or {}), **COLUMN_KINDS}
        return _StacTranslator(ITEMS_SCHEMA, kinds).translate(node)
    except ProviderInvalidQueryError as err:
        raise InvalidQuery(err.user_msg or str(err)) from None
    except RecursionError:
        raise InvalidQuery("filter: expression is nested too deeply") from None


class _StacTranslator(CqlTranslator):
    def __init__(self, schema: TableSchema, kinds: dict[str, str]):
        super().__init__(schema, "filter")
        self.kinds = kinds

    def _attribute(self, name: str) -> _Operand:
        if self.schema.is_geometry(name):
            return super()._attribute(name)
        try:
            name = property_name(name, "filter")
        except InvalidQuery as err:
            raise invalid(str(err)) from None
        if name in COLUMNS:
            return _Operand(COLUMNS[name], [], COLUMN_KINDS[name], column=name)
        kind = self.kinds.get(name, "string")
        return _Operand("json_extract(props, ?)", [f'$."{name}"'], kind, column=name)


def _literal_kinds(node: Any, depth: int = 0) -> dict[str, str]:
    """Kinds of properties nobody declared, from the literals they are compared with."""
    if depth > MAX_FILTER_DEPTH:
        raise InvalidQuery("filter: expression is nested too deeply")
    if not isinstance(node, ast.Node):
        return {}
    children = node.get_sub_nodes()
    found: dict[str, str] = {}
    names = [c.name.removeprefix("properties.") for c in children if isinstance(c, ast.Attribute)]
    literal_kinds = {k for k in map(_kind_of_literal, children) if k}
    if isinstance(node, ast.Like):
        literal_kinds = {"string"}
    if isinstance(node, ast.TemporalPredicate):
        literal_kinds = {"date-time"}
    if len(literal_kinds) > 1:
        raise InvalidQuery(f"filter: values of different types compared with {names}")
    for name in names:
        if literal_kinds:
            found[name] = next(iter(literal_kinds))
    for child in children:
        for name, kind in _literal_kinds(child, depth + 1).items():
            if found.setdefault(name, kind) != kind:
                raise InvalidQuery(f"filter: '{name}' is compared with values of several types")
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
