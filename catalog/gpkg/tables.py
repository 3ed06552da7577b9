"""What a GeoPackage feature table holds, read from its own metadata, and the SQL of spatial
predicates over it (R-tree prefilter, exact test in shapely).

`describe_table` reads a table's columns; `table_meta` adds what serving needs (kinds, row
count, key layout, covering index, stored feature text) and caches it per file version;
`TableSchema` is the table as the CQL2 translator sees it (catalog.core.cql2.FilterTarget).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from catalog.core.cql2 import Cql2Error, Property, column_time_span_sql, is_rectangle
from catalog.core.sql import quote_ident
from catalog.gpkg import feature_text
from catalog.gpkg.connection import FileVersion, connection
from catalog.gpkg.errors import GeoPackageError
from catalog.gpkg.functions import predicate_sql_name

LOGGER = logging.getLogger(__name__)

JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
}


def column_kind(declared: str) -> str | None:
    """JSON-ish kind of a GeoPackage column type; None for BLOB/untyped columns (not exposed)."""
    base = declared.upper().split("(")[0].strip()
    special = {"BOOLEAN": "boolean", "DATE": "date", "DATETIME": "date-time"}
    if base in special:
        return special[base]
    # SQLite's type-affinity rules, in its order.
    if "INT" in base:
        return "integer"
    if any(word in base for word in ("CHAR", "CLOB", "TEXT")):
        return "string"
    if base in ("", "BLOB"):
        return None
    if any(word in base for word in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return "number"
    return None


@dataclass(frozen=True)
class Table:
    """A feature table: its primary key, geometry column and attribute columns."""

    name: str
    pk: str
    geometry: str
    columns: tuple[str, ...]  # attribute columns in table order (BLOBs included)
    srs_id: int
    kinds: Mapping[str, str]  # pk and attribute columns with a JSON-representable kind

    @property
    def rtree(self) -> str:
        """The name of its R-tree index table (which may not exist)."""
        return f"rtree_{self.name}_{self.geometry}"


def feature_tables(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")]


def describe_table(conn: sqlite3.Connection, table: str) -> Table:
    """The table's columns; GeoPackageError (a ValueError) if it is not a feature table
    with an integer primary key."""
    row = conn.execute(
        "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (table,)
    ).fetchone()
    if row is None:
        raise GeoPackageError(f"table {table!r} has no geometry column")
    geometry, srs_id = row
    info = conn.execute(f"PRAGMA table_info({quote_ident(table)})").fetchall()
    pk = next((r[1] for r in info if r[5] == 1 and "INT" in r[2].upper()), None)
    if pk is None:
        raise GeoPackageError(f"table {table!r} has no integer primary key")
    columns = tuple(r[1] for r in info if r[1] not in (pk, geometry))
    kinds = {pk: "integer"}
    for _, name, declared, *_ in info:
        kind = column_kind(declared)
        if name not in (pk, geometry) and kind is not None:
            kinds[name] = kind
    return Table(table, pk, geometry, columns, srs_id, kinds)


# --- the table as a filter target ---------------------------------------------------------


@dataclass(frozen=True)
class TableSchema:
    """What a query may reference: queryable columns and their kinds, geometry, R-tree."""

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
            raise Cql2Error(f"{param}: unknown property '{name}'", param,
                            message_code="unknown_property", params={"name": name}) from None

    def is_geometry(self, name: str) -> bool:
        # pygeoapi renames 'geometry' only when the config sets geom_field; accept both names.
        return name in ("geometry", self.geom)

    def resolve(self, name: str, param: str, spatial: bool = False) -> Property:
        if self.is_geometry(name):
            return Property(quote_ident(self.geom), "geometry", name=self.geom)
        return Property(quote_ident(name), self.kind(name, param), name=name)

    def spatial_sql(self, op: str, geometry: BaseGeometry,
                    null_safe: bool = False) -> tuple[str, list]:
        return spatial_sql(self, op, geometry, null_safe)

    def time_span_sql(self, name: str) -> tuple[str, str]:
        return column_time_span_sql(quote_ident(name), self.kinds.get(name))


def spatial_sql(schema: TableSchema, op: str, geometry: BaseGeometry,
                null_safe: bool = False) -> tuple[str, list]:
    """Exact predicate op(feature, geometry), behind an R-tree prefilter where the op allows.

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
    sql, params = f"{predicate_sql_name(op)}({geom}, ?)", [wkb]
    if schema.rtree is not None and not geometry.is_empty:
        bounds = list(geometry.bounds)  # minx, miny, maxx, maxy
        rtree = f"{quote_ident(schema.pk)} IN (SELECT id FROM {quote_ident(schema.rtree)} WHERE "  # noqa: S608 - identifiers from metadata
        if op == "intersects" and is_rectangle(geometry):
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


# --- what serving needs, read once per file version --------------------------------------


@dataclass
class TableMeta:
    """Per-file facts read once: columns, kinds, geometry column, R-tree, row count."""

    schema: TableSchema
    columns: list[str]  # non-pk, non-geometry columns with a JSON-representable kind
    srs_id: int
    total: int
    first_pk: int | None = None  # smallest primary key
    dense: bool = False  # pks are first_pk .. first_pk + total - 1: offset k is pk first_pk + k
    covering_index: str | None = None  # an index holding every attribute column
    feature_text: dict | None = None  # `about` of the stored feature text, if any


_META: dict[tuple, TableMeta] = {}
_META_LOCK = threading.Lock()


def pick_table(conn: sqlite3.Connection, table: str | None, path: str) -> str:
    """`table`, checked; or the only feature table when None."""
    tables = feature_tables(conn)
    if table is None:
        if len(tables) != 1:
            raise GeoPackageError(f"{path}: set 'table', feature tables are {tables}")
        return tables[0]
    if table not in tables:
        raise GeoPackageError(f"{path}: no feature table '{table}' (have {tables})")
    return table


def load_meta(conn: sqlite3.Connection, path: str, table: str | None) -> TableMeta:
    table = pick_table(conn, table, path)
    try:
        described = describe_table(conn, table)
    except GeoPackageError as err:
        raise GeoPackageError(f"{path}: {err}") from None
    columns = [c for c in described.columns if c in described.kinds]
    rtree: str | None = described.rtree
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (rtree,)).fetchone():
        LOGGER.warning("%s: no R-tree index %s, spatial filters scan the table", path, rtree)
        rtree = None
    pk = described.pk
    schema = TableSchema(table, pk, described.geometry, rtree, dict(described.kinds))
    total, first, last = conn.execute(
        f"SELECT COUNT(*), MIN({quote_ident(pk)}), MAX({quote_ident(pk)}) "  # noqa: S608 - identifiers from metadata
        f"FROM {quote_ident(table)}"
    ).fetchone()
    dense = total > 0 and last - first + 1 == total
    covering = _covering_index(conn, table, columns)
    return TableMeta(schema, columns, described.srs_id, total, first, dense, covering,
                     feature_text.about(conn))


def _covering_index(conn: sqlite3.Connection, table: str, columns: list[str]) -> str | None:
    """An index containing every attribute column (publishing writes one), if any."""
    for row in conn.execute(f"PRAGMA index_list({quote_ident(table)})").fetchall():
        name = row[1]
        indexed = {r[2] for r in conn.execute(f"PRAGMA index_info({quote_ident(name)})")}
        if columns and set(columns) <= indexed:
            return name
    return None


def table_meta(path: str, version: FileVersion, table: str | None) -> TableMeta:
    """The table's TableMeta as of the file `version`, read once and cached."""
    key = (path, version, table)
    meta = _META.get(key)
    if meta is None:
        with _META_LOCK:
            meta = _META.get(key)
            if meta is None:
                meta = load_meta(connection(path, version), path, table)
                for old in [k for k in _META if k[0] == path and k[1] != version]:
                    del _META[old]
                _META[key] = meta
    return meta
