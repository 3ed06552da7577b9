"""A feature table of a published GeoPackage, queried with plain SQLite (no SpatiaLite).

`Layer` is what feature services build on: it selects pages of rows (filtering, counting,
sorting and paging in SQL: one statement for the page, one for numberMatched), fetches one
feature, scans every feature, and writes rows as GeoJSON (catalog/gpkg/geojson.py). It knows
nothing of HTTP or of pygeoapi: `FeatureQuery` says what to select, and a value it cannot
apply raises `QueryError` naming the parameter.

The R-tree index (``rtree_<table>_<geom>``) is a plain SQLite virtual table; exact geometry
tests run in shapely through SQL functions registered on the connection
(catalog/gpkg/functions.py).

Query semantics:

- ``bbox``: R-tree prefilter plus an exact shapely ``intersects``; a box with minx > maxx
  crosses the antimeridian (geographic layers only). 3D boxes are refused.
- ``datetime``: with ``time_field``, features whose time lies in the instant/interval (a date
  means its whole day); otherwise all features when the interval meets ``temporal_extent`` and
  none when it does not. A layer with neither refuses ``datetime``.
- ``q``: comma-separated terms, any of which may match; each term is a case-insensitive
  substring of any text property. ASCII terms use SQLite's LIKE (ASCII case folding); others
  compare Python-lowercased text.
- ``filter``: a parsed CQL2 tree, translated by catalog.core.cql2; NULLs follow SQL
  three-valued logic.
- ``sortby``: NULLs first ascending, last descending; ties broken by the primary key.
"""

from __future__ import annotations

import copy
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from catalog.core import columns as core_columns
from catalog.core.cql2 import (
    LOWER_SQL,
    SQLITE,
    TEMPORAL_KINDS,
    Cql2Error,
    coerce_value,
    to_sql,
)
from catalog.core.layer_query import (
    array_query,
    bbox_condition,
    check_page,
    datetime_condition,
    equals_condition,
    free_text_terms,
    order_by,
    output_columns,
    temporal_extent_span,
)
from catalog.core.parse import BBox, TimeSpan
from catalog.core.sql import quote_ident
from catalog.gpkg import columns as in_memory
from catalog.gpkg import feature_text, geojson
from catalog.gpkg.connection import connection, file_version
from catalog.gpkg.errors import GeoPackageError, QueryError
from catalog.gpkg.tables import JSON_TYPES, TableMeta, TableSchema, spatial_sql, table_meta

LOGGER = logging.getLogger(__name__)

# numberMatched of filtered queries, per file version: published files never change, so a count
# stays exact; clients paging through one filter (GDAL, QGIS) ask for it on every page.
_COUNTS: OrderedDict[tuple, int] = OrderedDict()
_COUNTS_LOCK = threading.Lock()
COUNT_CACHE_SIZE = 512
# A page needing more than this share of a filter's matches reads them through the index.
SPARSE_SHARE = 0.2


@dataclass(frozen=True)
class FeatureQuery:
    """What to select from a layer. Values are checked by `Layer.select`."""

    offset: int = 0
    limit: int = 10
    hits: bool = False  # numberMatched only, no rows
    bbox: BBox | Sequence[float] | None = None
    datetime: TimeSpan | str | None = None
    equals: Sequence[tuple[str, Any]] = ()  # (property, value): property = value
    sortby: Sequence[tuple[str, bool]] = ()  # (property, descending)
    properties: Sequence[str] = ()  # only these properties in the answer (all when empty)
    skip_geometry: bool = False
    q: str | None = None  # free text: comma-separated terms
    filter: Any = None  # a parsed CQL2 tree (catalog.core.cql2.parse_filter)
    stored_text: bool = False  # whole features as stored GeoJSON text, where the layer has it


@dataclass(frozen=True)
class FeaturePage:
    """A page of rows: the id column first, then properties, then the geometry blob unless
    the query skipped geometries; or, with `text`, one column of stored feature text."""

    matched: int
    columns: list[str]
    rows: list[tuple]
    text: bool = False  # rows are (stored GeoJSON feature text,)


class Layer:
    """A read-only feature table of a GeoPackage written by GDAL/fiona (with its R-tree).

    path: the GeoPackage; table: the feature table (default: the only one); id_field: the
    column giving feature ids (default: the integer primary key); properties: expose (and let
    queries reference) only these columns; time_field: a DATE/DATETIME (or ISO text) column
    for datetime queries; temporal_extent: the layer's time span when it has no time field;
    geographic: coordinates are longitude/latitude (boxes may cross the antimeridian);
    default: the layer is stored in EPSG:4326; column_cache: a folder where the arrays of large
    layers' columns are kept for every process (catalog/gpkg/columns.py; None: in memory only).
    """

    def __init__(self, path: str | Path, *, table: str | None = None,
                 id_field: str | None = None, properties: Sequence[str] | None = None,
                 time_field: str | None = None, temporal_extent: Sequence | None = None,
                 geographic: bool | None = None, column_cache: Path | None = None):
        self.path = os.path.abspath(path)
        self.column_cache = column_cache
        self.version = file_version(self.path)
        self.meta: TableMeta = table_meta(self.path, self.version, table)
        self.table = self.meta.schema.table
        self.id_field = id_field or self.meta.schema.pk
        self.time_field = time_field
        self.columns = self._exposed_columns(properties)
        self._check_config()
        # Queries may only reference what is exposed, the id and the pk.
        kinds = self.meta.schema.kinds
        visible = [self.meta.schema.pk, self.id_field, *self.columns]
        visible += [time_field] if time_field else []
        self.schema: TableSchema = replace(
            self.meta.schema, kinds={c: kinds[c] for c in visible}, time_field=time_field
        )
        self.temporal_extent = self._temporal_extent(temporal_extent)
        # Layers of at least this many rows answer plain attribute filters from memory.
        self.in_memory_min_rows = core_columns.MIN_ROWS
        # Their arrays not yet read: SQL answers while a thread reads them (False: the
        # request reads them and waits; the feature store sets it from TAZA_COLUMN_LOADS).
        self.load_columns_in_background = True
        self.geographic = self.meta.srs_id == 4326 if geographic is None else geographic
        self.has_feature_text = self.meta.feature_text is not None and \
            self.meta.feature_text == feature_text.description(
                self.table, self.id_field, self.columns, self.meta.total)

    # configuration -----------------------------------------------------------------------

    def _exposed_columns(self, properties: Sequence[str] | None) -> list[str]:
        columns = self.meta.columns
        if not properties:
            return list(columns)
        unknown = sorted(set(properties) - set(columns))
        if unknown:
            raise GeoPackageError(f"{self.path}: configured properties {unknown} not found")
        return [c for c in columns if c in properties]

    def _check_config(self) -> None:
        kinds = self.meta.schema.kinds
        if self.id_field not in kinds:
            raise GeoPackageError(f"{self.path}: id_field '{self.id_field}' not found")
        if self.time_field is not None:
            if kinds.get(self.time_field) not in TEMPORAL_KINDS | {"string"}:
                raise GeoPackageError(
                    f"{self.path}: time_field '{self.time_field}' is not a date or text column"
                )

    def _temporal_extent(self, extent: Sequence | None) -> TimeSpan | None:
        try:
            return temporal_extent_span(extent)
        except ValueError as err:  # malformed config: fail at load, not per request
            raise GeoPackageError(f"{self.path}: {err}") from err

    @property
    def fields(self) -> dict[str, dict]:
        """Property name -> JSON schema type (a copy: callers may change it)."""
        return {name: copy.deepcopy(JSON_TYPES[self.schema.kinds[name]])
                for name in self.columns}

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection to the file."""
        return connection(self.path, self.version)

    # queries -----------------------------------------------------------------------------

    def select(self, query: FeatureQuery) -> FeaturePage:
        """The rows of a page and numberMatched, before any GeoJSON is made of them.

        With `stored_text`, whole features (no property selection, with geometry) come as one
        column of stored GeoJSON text when the layer has it (`FeaturePage.text` says so).
        """
        offset, limit = check_page(query.offset, query.limit)
        answered = self._select_in_memory(query, offset, limit)
        if answered is not None:
            return answered
        clauses: list[str] = []
        params: list = []
        for sql, values in (
            self._bbox_sql(query.bbox),
            self._datetime_sql(query.datetime),
            self._equals_sql(query.equals),
            self._q_sql(query.q),
            self._filter_sql(query.filter),
        ):
            if sql:
                clauses.append(f"({sql})")
                params += values
        columns = self._output_columns(query.properties, query.skip_geometry)
        text = query.stored_text and self.has_feature_text and not query.properties and \
            not query.skip_geometry
        sortby = query.sortby
        order = self._order_by(sortby)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        matched = self._count(where, params)
        rows: list[tuple] = []
        if not query.hits and offset < matched and limit > 0:
            rows = self._page_rows(columns, text, where, params, bool(sortby), order, offset,
                                   limit, matched)
        return FeaturePage(matched, ["feature"] if text else columns, rows, text)

    def _select_in_memory(self, query: FeatureQuery, offset: int,
                          limit: int) -> FeaturePage | None:
        """A bbox and/or plain attribute and intersects filter (and one sort key) of a large
        layer, answered from its columns and R-tree boxes held in memory
        (catalog/gpkg/columns.py); None when SQL must answer."""
        wanted = array_query(query, self.meta.total, self.in_memory_min_rows, self.geographic)
        if wanted is None:
            return None

        def from_columns() -> tuple[np.ndarray, list[int]]:
            held = in_memory.columns_of(self.path, self.version, self.schema,
                                        self.meta.covering_index, self.column_cache)
            positions = held.matching(wanted.filter, wanted.box_geometry)
            keys = [] if query.hits else held.page(positions, list(query.sortby), offset, limit)
            return positions, keys

        try:
            with core_columns.engine_reads_deferred(self.load_columns_in_background):
                positions, keys = from_columns()
        except core_columns.NotLoaded:
            core_columns.load_in_background((self.path, self.version, self.table), from_columns)
            return None
        except in_memory.Unsupported:
            return None
        out = self._output_columns(query.properties, query.skip_geometry)
        text = query.stored_text and self.has_feature_text and not query.properties and \
            not query.skip_geometry
        return FeaturePage(len(positions), ["feature"] if text else out,
                           self._rows_by_key(out, text, keys), text)

    def _rows_by_key(self, columns: list[str], text: bool, keys: list[int]) -> list[tuple]:
        """The rows whose primary keys are `keys`, in that order."""
        if not keys:
            return []
        pk = quote_ident(self.schema.pk)
        names = ", ".join(quote_ident(c) for c in columns)
        if text:
            sql = (f"SELECT pk, feature FROM {feature_text.SCHEMA}.features "  # noqa: S608 - fixed names
                   f"WHERE pk IN ({', '.join('?' * len(keys))})")
        else:
            sql = (f"SELECT {pk}, {names} FROM {quote_ident(self.table)} "  # noqa: S608 - identifiers from metadata
                   f"WHERE {pk} IN ({', '.join('?' * len(keys))})")
        found = {row[0]: row[1:] for row in self._execute(sql, keys)}
        return [found[key] for key in keys]

    def _page_rows(self, columns: list[str], text: bool, where: str, params: list,
                   sorted_: bool, order: str, offset: int, limit: int,
                   matched: int) -> list[tuple]:
        names = ", ".join(quote_ident(c) for c in columns)
        if text:  # a primary-key lookup per row of the page
            outer_pk = f"{quote_ident(self.table)}.{quote_ident(self.schema.pk)}"
            names = f"(SELECT feature FROM {feature_text.SCHEMA}.features WHERE pk = {outer_pk})"  # noqa: S608 - identifiers from metadata
        # Attribute indexes (written by publishing) serve sortby; without one, pages go in
        # primary-key order, and an index on a filtered column would only slow the scan.
        hint = "" if sorted_ else " NOT INDEXED"
        select = f"SELECT {names} FROM {quote_ident(self.table)}{hint}"  # noqa: S608 - identifiers from metadata
        pk = quote_ident(self.schema.pk)
        if not where and not sorted_ and self.meta.dense:
            # Unfiltered pages in pk order of a gap-free table: the row at offset k has pk
            # first_pk + k, so a deep page is an index seek instead of an OFFSET walk.
            sql = f"{select} WHERE {pk} >= ? ORDER BY {pk} LIMIT ?"
            return self._execute(sql, [self.meta.first_pk + offset, limit])
        if not sorted_ and self._sparse_matches(where, matched, offset + limit):
            # Few rows match an attribute filter: walking the table in pk order would read
            # most of it (with geometries) to fill the page. Find the page's keys in the
            # index of all attributes instead, then read just those rows.
            keys = (f"SELECT {pk} FROM {quote_ident(self.table)}{self._count_hint(where)}"  # noqa: S608 - identifiers from metadata
                    f"{where} ORDER BY {pk} LIMIT ? OFFSET ?")
            sql = f"{select} WHERE {pk} IN ({keys}) ORDER BY {pk}"
            return self._execute(sql, params + [limit, offset])
        sql = f"{select}{where} ORDER BY {order} LIMIT ? OFFSET ?"
        return self._execute(sql, params + [limit, offset])

    def _sparse_matches(self, where: str, matched: int, needed: int) -> bool:
        """Whether the page needs more than SPARSE_SHARE of the filter's matches, for a filter
        the attribute index can evaluate. Matches spread through the table, so a pk-order scan
        would then read a large part of the table (geometries included) to fill the page; index
        entries are several times smaller (1M parcels, 160 matches: 415 ms by table scan)."""
        attribute_only = self._count_hint(where).startswith(" INDEXED BY")
        return attribute_only and needed > SPARSE_SHARE * matched

    def scan(self, batch: int = 10_000) -> Iterator[tuple[list[int], FeaturePage]]:
        """Every row in primary-key order, in pages of whole features: (pks, page)."""
        columns = self._output_columns((), False)
        pk = quote_ident(self.schema.pk)
        names = ", ".join([pk, *(quote_ident(c) for c in columns)])
        sql = (f"SELECT {names} FROM {quote_ident(self.table)} "  # noqa: S608 - identifiers from metadata
               f"WHERE {pk} > ? ORDER BY {pk} LIMIT ?")
        last = -(1 << 63)
        while rows := self._execute(sql, [last, batch]):
            last = rows[-1][0]
            yield [row[0] for row in rows], FeaturePage(len(rows), columns,
                                                        [row[1:] for row in rows])

    def get(self, identifier: Any) -> dict | None:
        """The feature whose id_field equals `identifier` (text, as in a URL), or None."""
        kind = self.schema.kinds[self.id_field]
        value: Any = str(identifier)
        if kind in ("integer", "number"):
            try:
                value = coerce_value(kind, value, name=self.id_field, param="id")
            except Cql2Error:  # not a number: no such feature rather than a bad request
                return None
        columns = self._output_columns((), False)
        sql = (
            f"SELECT {', '.join(quote_ident(c) for c in columns)} "  # noqa: S608 - identifiers from metadata
            f"FROM {quote_ident(self.table)} WHERE {quote_ident(self.id_field)} = ? "
            f"ORDER BY {quote_ident(self.schema.pk)} LIMIT 1"
        )
        features = self.features(FeaturePage(1, columns, self._execute(sql, [value])))
        return features[0] if features else None

    # writing -----------------------------------------------------------------------------

    def features(self, page: FeaturePage) -> list[dict]:
        """The page's GeoJSON features as plain dicts (not for pages of stored text)."""
        return geojson.features(page.rows, page.columns, self.schema.kinds, self.schema.geom,
                                self.path)

    def orjson_features(self, page: FeaturePage) -> list[dict]:
        """The page's GeoJSON features for orjson (catalog/gpkg/geojson.py)."""
        return geojson.orjson_features(page.rows, page.columns, self.schema.kinds,
                                       self.schema.geom, self.path)

    # WHERE parts -------------------------------------------------------------------------

    def _bbox_sql(self, bbox: BBox | Sequence[float] | None) -> tuple[str, list]:
        return bbox_condition(bbox, self.geographic,
                              lambda box: spatial_sql(self.schema, "intersects", box))

    def _datetime_sql(self, value: TimeSpan | str | None) -> tuple[str, list]:
        span = self.schema.time_span_sql(self.time_field) if self.time_field else None
        return datetime_condition(value, span, self.temporal_extent, SQLITE)

    def _equals_sql(self, equals: Sequence[tuple[str, Any]]) -> tuple[str, list]:
        return equals_condition(equals, lambda name: self._queryable_kind(name, name),
                                quote_ident, SQLITE)

    def _q_sql(self, q: str | None) -> tuple[str, list]:
        if q is None:
            return "", []
        text_columns = [c for c in self.columns if self.schema.kinds[c] == "string"]
        terms = free_text_terms(q, text_columns)
        clauses, params = [], []
        for term in terms:
            for column in map(quote_ident, text_columns):
                if term.isascii():
                    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    clauses.append(f"{column} LIKE ? ESCAPE '\\'")
                    params.append(f"%{escaped}%")
                else:
                    clauses.append(f"instr({LOWER_SQL}({column}), ?) > 0")
                    params.append(term.lower())
        return " OR ".join(clauses), params

    def _filter_sql(self, tree: Any) -> tuple[str, list]:
        if tree is None:
            return "", []
        if isinstance(tree, str):
            raise QueryError("filter: expected a parsed CQL2 expression")
        return to_sql(tree, self.schema, "filter")

    def _queryable_kind(self, name: str, param: str) -> str:
        if name not in self.columns and name != self.schema.pk:
            raise QueryError(f"{param}: unknown property '{name}'", param,
                             message_code="unknown_property", params={"name": name})
        return self.schema.kinds[name]

    def _order_by(self, sortby: Sequence[tuple[str, bool]]) -> str:
        return order_by(sortby, lambda name: self._queryable_kind(name, "sortby"), quote_ident,
                        quote_ident(self.schema.pk))

    def _output_columns(self, select_properties: Sequence[str] | None,
                        skip_geometry: bool) -> list[str]:
        return output_columns(self.columns, self.id_field, self.schema.geom, select_properties,
                              skip_geometry)

    # SQL ---------------------------------------------------------------------------------

    def _count(self, where: str, params: list) -> int:
        if not where:
            return self.meta.total
        sql = f"SELECT COUNT(*) FROM {quote_ident(self.table)}{self._count_hint(where)}{where}"  # noqa: S608 - identifiers from metadata
        key = (self.path, self.version, sql, tuple(params))
        with _COUNTS_LOCK:
            if key in _COUNTS:
                _COUNTS.move_to_end(key)
                return _COUNTS[key]
        count = self._execute(sql, params)[0][0]
        with _COUNTS_LOCK:
            _COUNTS[key] = count
            while len(_COUNTS) > COUNT_CACHE_SIZE:
                _COUNTS.popitem(last=False)
        return count

    def _count_hint(self, where: str) -> str:
        """Which copy of the rows a count scans.

        A filter on attributes only is counted over the index of all attributes: the rows
        without their geometries, about 4x less to read than the table. Anything touching the
        geometry or the R-tree reads the table, NOT INDEXED: without per-value statistics
        (SQLite's STAT4 is not compiled in) the planner would count `land_use = ?` through the
        land_use index, twice as slow as a scan. The R-tree prefilter (a rowid IN list) is not
        an index of the table and still applies.
        """
        covering = self.meta.covering_index
        spatial = quote_ident(self.schema.geom) in where or (
            self.schema.rtree is not None and quote_ident(self.schema.rtree) in where
        )
        if covering is not None and not spatial:
            return f" INDEXED BY {quote_ident(covering)}"
        return " NOT INDEXED"

    def _execute(self, sql: str, params: list) -> list[tuple]:
        """Rows of a statement; QueryError when the request went past SQLite's limits, the
        sqlite3.Error itself (logged) when the statement failed otherwise."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            if any(limit in str(err) for limit in ("too large", "too many", "too deep")):
                # SQLite's expression-depth / variable-count limits: the request's fault.
                raise QueryError(f"query too complex for this server ({err})",
                                 "filter") from err
            LOGGER.error("%s: query failed: %s\n%s %r", self.path, err, sql, params)
            raise

    def __repr__(self) -> str:
        return f"<Layer> {self.path} ({self.table})"


def write_feature_text(gpkg: str | Path, table: str, id_field: str | None) -> Path:
    """Write the stored feature text of a GeoPackage's table (<id>.features.sqlite) with the
    library's own writer; returns its path (catalog/gpkg/feature_text.py)."""
    return feature_text.write(Layer(gpkg, table=table, id_field=id_field))
