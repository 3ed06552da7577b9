"""The FeatureStore of a version loaded into PostGIS (TAZA_DATABASE_URL, catalog/postgis).

Same answers as the GeoPackage store (tests/test_feature_store_contract.py and
tests/test_postgis_features.py run both): the same query rules (catalog/core/layer_query.py),
CQL2 through catalog.core.cql2 in its PostgreSQL dialect, NULLs
first ascending and last descending, ties broken by the primary key, exact counts. Spatial
tests are PostGIS's (GEOS, as shapely); map tiles are ST_AsMVT with the GeoPackage tiles'
buffer, feature cap and thinning. Every statement runs on a connection of this worker's pool;
values are bound, identifiers quoted by psycopg.sql.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql
from psycopg_pool import PoolTimeout
from pygeofilter import ast
from shapely.geometry.base import BaseGeometry

from catalog import settings
from catalog.core import columns as in_memory
from catalog.core.cql2 import (
    POSTGRESQL,
    SPATIAL_OPS,
    TEMPORAL_KINDS,
    Cql2Error,
    Property,
    coerce_value,
    to_sql,
)
from catalog.core.errors import first_line
from catalog.core.layer_query import (
    LayerQueryError,
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
from catalog.core.record import Record
from catalog.core.webmercator import TileBounds
from catalog.features import mvt
from catalog.features.store import (
    CRS84,
    FeaturePage,
    FeatureStoreError,
    ItemsQuery,
    JsonPage,
    LayerDescription,
    StoredFeature,
)
from catalog.gpkg import JSON_TYPES, geojson_geometries, orjson_geometries
from catalog.postgis import SCHEMA, DatabaseError, LayerTable, connection, find_layer
from catalog.postgis.columns import columns_of, table_identity

LOGGER = logging.getLogger(__name__)
MAX_FILTER_VALUES = 1000  # bound values in one query; beyond, "too complex" (as SQLite's depth)
SPATIAL_FUNCTIONS = {name: f"ST_{name.capitalize()}" for name in SPATIAL_OPS.values()}
SPATIAL_NODES = (ast.SpatialComparisonPredicate, ast.SpatialDistancePredicate, ast.Relate,
                 ast.BBox)
# More than the error of PostGIS's float4 boxes at 180 degrees (2^-23 * 180 = 2.1e-5): see
# PostgisTarget.box_sql.
BOX_MARGIN = 1e-4
SQL_BOX_MATCHES = 100_000  # see PostgisFeatureStore.sql_box_matches


def ident(*names: str) -> str:
    """A quoted identifier for query text that psycopg scans for %s placeholders."""
    return sql.Identifier(*names).as_string(None).replace("%", "%%")


class PostgisTarget:
    """The table as the CQL2 translator sees it (catalog.core.cql2.FilterTarget)."""

    def __init__(self, layer: LayerTable, kinds: dict[str, str], time_field: str | None):
        self.layer = layer
        self.kinds = kinds
        self.time_field = time_field

    def resolve(self, name: str, param: str, spatial: bool = False) -> Property:
        if name in ("geometry", self.layer.geometry):
            return Property(ident(self.layer.geometry), "geometry", name=self.layer.geometry)
        if name not in self.kinds:
            raise Cql2Error(f"{param}: unknown property '{name}'", param,
                            message_code="unknown_property", params={"name": name})
        return Property(ident(name), self.kinds[name], name=name)

    def spatial_sql(self, op: str, geometry: BaseGeometry,
                    null_safe: bool = False) -> tuple[str, list]:
        # A NULL geometry gives NULL: outside NOT it filters like FALSE, under NOT it stays
        # NULL, as null_safe asks.
        geom, literal = ident(self.layer.geometry), "ST_GeomFromWKB(%s, 4326)"
        if not shapely.is_valid(geometry):
            # An invalid literal (a polygon collapsed to a line) gets different answers from
            # PostGIS's GEOS and its shortcuts than from shapely's, which the GeoPackage store
            # uses; made valid here by shapely, every predicate answers as shapely does on the
            # literal as written (tests/test_feature_store_contract.py draws such literals).
            geometry = shapely.make_valid(geometry)
        wkb = shapely.to_wkb(geometry, flavor="iso")
        return f"{SPATIAL_FUNCTIONS[op]}({geom}, {literal})", [wkb]

    def box_sql(self, box: BaseGeometry) -> tuple[str, list]:
        """The features meeting a box (bbox=). Those whose bounding box lies inside it meet it
        without an exact test, so GEOS sees only the features on its edges; a box of 100,000
        parcels is then read at the cost of its edges' few hundred.

        PostGIS compares float4 boxes rounded outward (an error below 2.2e-5 degrees up to 180),
        so the inside test uses the box shrunk by BOX_MARGIN: inside that, a feature is inside
        the box itself."""
        exact, params = self.spatial_sql("intersects", box)
        minx, miny, maxx, maxy = box.bounds
        if maxx - minx <= 2 * BOX_MARGIN or maxy - miny <= 2 * BOX_MARGIN:
            return exact, params
        geom, envelope = ident(self.layer.geometry), "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        inner = [minx + BOX_MARGIN, miny + BOX_MARGIN, maxx - BOX_MARGIN, maxy - BOX_MARGIN]
        return (f"{geom} && {envelope} AND ({geom} @ {envelope} OR {exact})",
                [minx, miny, maxx, maxy, *inner, *params])

    def time_span_sql(self, name: str) -> tuple[str, str]:
        start = POSTGRESQL.instant.format(ident(name))
        if self.kinds.get(name) == "date":  # a date covers its whole day
            return start, f"({start} + interval '86399.999 seconds')"
        return start, start


class PostgisFeatureStore:
    """The features of one published version's PostGIS table."""

    def __init__(self, url: str, layer: LayerTable, *, id_field: str | None = None,
                 time_field: str | None = None, temporal_extent: Sequence | None = None,
                 first_pk: int | None = None, column_cache: Path | None = None):
        self.url = url
        self.layer = layer
        # Tables of at least this many rows count and page bbox, plain attribute and
        # intersects filters from their columns in memory (catalog/postgis/columns.py), kept
        # below `column_cache` for every worker of the node.
        self.in_memory_min_rows = in_memory.MIN_ROWS
        # A bbox alone, expected to hold fewer features than this, goes to SQL: the GiST
        # index reads a small box's matches faster than the arrays scan the rows across the
        # box's width (10 million parcels: town-sized boxes 318 req/s by SQL, 128 from memory;
        # region-sized ones 3.9 by SQL, 15.7 from memory).
        self.sql_box_matches = SQL_BOX_MATCHES
        # Arrays not yet read (a new node, a new version): SQL answers while a thread reads
        # them (or the request waits for them, with TAZA_COLUMN_LOADS=request).
        self.load_columns_in_background = settings.column_loads_in_background()
        self.column_cache = column_cache
        self._identity: tuple | None = None
        self._extent: tuple[float, ...] | None = None  # see _expected_in; () unknown
        # The pk of the first row when the pks run without a gap (first_pk .. first_pk +
        # total - 1): the row at offset k of an unfiltered page is then pk first_pk + k.
        self.first_pk = first_pk
        self.columns = [name for name, _ in layer.columns]
        self.kinds = layer.kinds
        self.id_field = id_field or layer.pk
        self.time_field = time_field
        self._check_fields()
        try:
            self.temporal_extent = temporal_extent_span(temporal_extent)
        except ValueError as err:  # malformed config: fail at load, not per request
            raise FeatureStoreError(f"{layer.table}: {err}") from err
        self.target = PostgisTarget(layer, self.kinds, time_field)
        self.table = ident(SCHEMA, layer.table)

    @classmethod
    def for_record(cls, record: Record, url: str,
                   column_cache: Path | None = None) -> PostgisFeatureStore:
        """The store of a published vector version (FeatureStoreError when not loaded)."""
        if record.vector is None:
            raise FeatureStoreError(f"{record.id} version {record.version} is not a vector layer")
        try:
            with connection(url) as conn:
                layer = find_layer(conn, record.id, record.version)
                first_pk = _gap_free_start(conn, layer) if layer is not None else None
        except (psycopg.Error, PoolTimeout, DatabaseError) as err:
            raise FeatureStoreError(f"{record.id}: the database cannot be read ({err})") from err
        if layer is None:
            raise FeatureStoreError(f"{record.id} version {record.version} has no table in "
                                    "the database: publish it again (or roll back to it)")
        extent = record.manifest.temporal_extent.as_json()
        return cls(url, layer, id_field=record.manifest.id_field,
                   temporal_extent=[extent["start"], extent["end"]], first_pk=first_pk,
                   column_cache=column_cache)

    # -- the protocol ------------------------------------------------------------------------

    def describe(self) -> LayerDescription:
        return LayerDescription(fields=self.queryables(), id_field=self.id_field,
                                time_field=self.time_field, storage_crs=CRS84, geographic=True,
                                total=self.layer.total)

    def queryables(self) -> dict[str, dict]:
        return {name: dict(JSON_TYPES[self.kinds[name]]) for name in self.columns}

    def count(self, query: ItemsQuery) -> int:
        check_page(query.offset, query.limit)
        where, params = self._where(query)
        self._output_columns(query.properties, query.skip_geometry)  # refused as page() would
        self._order_by(query.sortby)
        held = self._in_memory(query, 0, 0)
        return held[0] if held is not None else self._count(where, params)

    def page(self, query: ItemsQuery) -> FeaturePage:
        matched, columns, rows = self._select(query)
        return FeaturePage(matched, self._features(rows, columns, geojson_geometries))

    def page_json(self, query: ItemsQuery) -> JsonPage:
        matched, columns, rows = self._select(query)
        return JsonPage(matched, self._features(rows, columns, orjson_geometries),
                        "PostGIS rows")

    def get(self, feature_id: str) -> dict | None:
        kind = self.kinds[self.id_field]
        value: Any = str(feature_id)
        if kind in ("integer", "number"):
            try:
                value = coerce_value(kind, value, name=self.id_field, param="id")
            except Cql2Error:  # not a number: no such feature rather than a bad request
                return None
        columns = self._output_columns((), False)
        statement = (f"SELECT {self._select_list(columns)} FROM {self.table} "  # noqa: S608 - quoted identifiers
                     f"WHERE {ident(self.id_field)} = %s ORDER BY {ident(self.layer.pk)} LIMIT 1")
        features = self._features(self._rows(statement, [value]), columns, geojson_geometries)
        return features[0] if features else None

    def tile(self, tile: TileBounds, layer_name: str) -> bytes:
        """One statement, so one connection and one round trip a tile: the count of the
        tile's candidates, which sets the thinning (the GeoPackage tiles' hash, so the same
        features stay), is its subquery."""
        west, south, east, north = mvt.buffered_lonlat(tile)
        envelope = "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        box = [west, south, east, north]
        geom, pk = f"f.{ident(self.layer.geometry)}", f"f.{ident(self.layer.pk)}"
        attributes = "".join(f", {ident(name)}" for name in self.columns)
        qualified = "".join(f", f.{ident(name)}" for name in self.columns)
        # Clipped only where the geometry leaves the buffered tile, and simplified (below the
        # deepest zoom) only where it has more than a quadrilateral's points, as the
        # GeoPackage tiles are: each costs a trip through GEOS per feature, which for 200
        # parcels a tile took longer than everything else in this statement.
        mercator = "mvt_mercator"
        drawn, simplify_params = mercator, []
        tolerance = _simplify_tolerance(tile)
        if tolerance > 0:
            drawn = (f"CASE WHEN ST_NPoints({mercator}) > {mvt.SIMPLIFIED_ABOVE} "
                     f"THEN ST_SimplifyPreserveTopology({mercator}, %s) ELSE {mercator} END")
            simplify_params = [tolerance]
        statement = (
            f"SELECT ST_AsMVT(t, %s, {mvt.EXTENT}, 'mvt_geometry', 'mvt_id') FROM ("  # noqa: S608 - quoted identifiers
            f"SELECT mvt_id{attributes}, ST_AsMVTGeom({drawn}, ST_TileEnvelope(%s, %s, %s), "
            f"{mvt.EXTENT}, {mvt.BUFFER}, true) AS mvt_geometry FROM ("
            f"SELECT {pk} AS mvt_id{qualified}, ST_Transform("
            f"CASE WHEN {geom} @ {envelope} THEN {geom} "
            f"ELSE ST_ClipByBox2D({geom}, {envelope}) END, 3857) AS {mercator} "
            f"FROM {self.table} AS f, (SELECT greatest(1, ceil(count(*) / %s::numeric))::bigint "
            f"AS thinning FROM {self.table} AS f WHERE {geom} && {envelope}) AS k "
            f"WHERE {geom} && {envelope} AND CASE WHEN k.thinning = 1 THEN true "
            f"ELSE (({pk} * %s) & 4294967295) %% k.thinning = 0 END) AS s) AS t "
            "WHERE t.mvt_geometry IS NOT NULL")
        params = [layer_name, *simplify_params, tile.z, tile.x, tile.y, *box, *box,
                  mvt.FEATURE_CAP, *box, *box, mvt.HASH_MULTIPLIER]
        return bytes(self._rows(statement, params)[0][0] or b"")

    def iterate(self, batch: int = 10_000) -> Iterator[list[StoredFeature]]:
        columns = self._output_columns((), False)
        pk = ident(self.layer.pk)
        statement = (f"SELECT {pk}, {self._select_list(columns)} FROM {self.table} "  # noqa: S608 - quoted identifiers
                     f"WHERE {pk} > %s ORDER BY {pk} LIMIT %s")
        last = -(1 << 63)
        while rows := self._rows(statement, [last, batch]):
            last = rows[-1][0]
            geometries = shapely.from_wkb([row[-1] for row in rows])
            names = columns[1:-1]
            yield [StoredFeature(row[1], self._properties(names, row[2:-1]), geometry)
                   for row, geometry in zip(rows, geometries, strict=True)]

    # -- queries ----------------------------------------------------------------------------

    def _select(self, query: ItemsQuery) -> tuple[int, list[str], list[tuple]]:
        offset, limit = check_page(query.offset, query.limit)
        where, params = self._where(query)
        columns = self._output_columns(query.properties, query.skip_geometry)
        order = self._order_by(query.sortby)
        held = self._in_memory(query, offset, limit)
        if held is not None:
            matched, keys = held
            return matched, columns, self._rows_by_key(columns, keys)
        if where and limit > 0 and _is_spatial(query):
            return self._select_spatial(where, params, columns, query.sortby, order, offset,
                                        limit)
        matched = self._count(where, params)
        rows: list[tuple] = []
        if offset < matched and limit > 0:
            if not where and not query.sortby and self.first_pk is not None:
                # A deep unfiltered page is an index seek, not a walk past `offset` rows.
                pk = ident(self.layer.pk)
                statement = (f"SELECT {self._select_list(columns)} FROM {self.table} "  # noqa: S608 - quoted identifiers
                             f"WHERE {pk} >= %s ORDER BY {pk} LIMIT %s")
                rows = self._rows(statement, [self.first_pk + offset, limit])
            else:
                statement = (f"SELECT {self._select_list(columns)} FROM {self.table}{where} "  # noqa: S608 - quoted identifiers
                             f"ORDER BY {order} LIMIT %s OFFSET %s")
                rows = self._rows(statement, [*params, limit, offset])
        return matched, columns, rows

    def _select_spatial(self, where: str, params: list, columns: list[str],
                        sortby: Sequence[tuple[str, bool]], order: str, offset: int,
                        limit: int) -> tuple[int, list[str], list[tuple]]:
        """A page under a spatial condition, in one statement and one pass over the matches:
        they are read once (keys and sort values only) for both the count and the page's
        keys, whose rows are then joined by key. Ordered by the pk's index instead, PostgreSQL
        walks the table until it has a page; parcels near each other have near pks, so for a
        box far from the first rows it walked most of the table (4 requests a second at 10
        million parcels). One statement, not a count and a fetch: each statement is parsed
        and planned anew (no prepared statements, for pgbouncer) and takes a connection."""
        pk = ident(self.layer.pk)
        carried = ", ".join(dict.fromkeys([pk, *(ident(name) for name, _ in sortby)]))
        # The count's row is joined to the page's rows, left: a page past the matches still
        # says how many there are (one row, its position NULL).
        statement = (
            f"WITH hits AS MATERIALIZED (SELECT {carried} FROM {self.table}{where}) "  # noqa: S608 - quoted identifiers
            "SELECT counted.taza_matched, k.taza_position, "
            f"{self._select_list(columns, 't')} "
            "FROM (SELECT count(*) AS taza_matched FROM hits) AS counted LEFT JOIN ("
            f"unnest(ARRAY(SELECT {pk} FROM hits ORDER BY {order} LIMIT %s OFFSET %s)) "
            "WITH ORDINALITY AS k(taza_key, taza_position) "
            f"JOIN {self.table} AS t ON t.{pk} = k.taza_key) ON true "
            "ORDER BY k.taza_position")
        rows = self._rows(statement, [*params, limit, offset])
        return rows[0][0], columns, [row[2:] for row in rows if row[1] is not None]

    def _rows_by_key(self, columns: list[str], keys: list[int]) -> list[tuple]:
        """The rows whose pks are `keys`, in that order."""
        if not keys:
            return []
        found = {row[0]: row[1:] for row in self._rows(
            f"SELECT {ident(self.layer.pk)}, {self._select_list(columns)} FROM {self.table} "  # noqa: S608 - quoted identifiers
            f"WHERE {ident(self.layer.pk)} = ANY(%s)", [keys])}
        return [found[key] for key in keys]

    def _in_memory(self, query: ItemsQuery, offset: int,
                   limit: int) -> tuple[int, list[int]] | None:
        """numberMatched and the page's keys of a bbox and/or plain attribute or intersects
        filter (one sort key at most) of a large table, from its columns in memory; None when
        SQL must answer. Called after the query's SQL was built, so a bad query has already
        raised what SQL raises."""
        wanted = array_query(query, self.layer.total, self.in_memory_min_rows, True)
        if wanted is None:
            return None

        def from_columns() -> tuple[np.ndarray, list[int]]:
            held = columns_of(self.url, self._table_identity(), self.layer, self.kinds,
                              self.column_cache)
            positions = held.matching(wanted.filter, wanted.box_geometry)
            keys = held.page(positions, list(query.sortby), offset, limit) if limit else []
            return positions, keys

        try:
            # PostGIS's GiST: its cost follows the matches, few here. Decided from the table's
            # statistics, before any array is read: a fresh node would otherwise read every
            # row's key and box (10 million parcels: 40 s) to send a small box to SQL.
            if wanted.box and wanted.filter is None and \
                    self._expected_in(wanted.box) < self.sql_box_matches:
                return None
            with in_memory.engine_reads_deferred(self.load_columns_in_background):
                positions, keys = from_columns()
        except in_memory.NotLoaded:
            in_memory.load_in_background(self._table_identity(), from_columns)
            return None
        except in_memory.Unsupported:
            return None
        except (psycopg.Error, PoolTimeout) as err:
            LOGGER.error("%s: reading its columns failed: %s", self.layer.table, err)
            raise FeatureStoreError(f"{self.layer.dataset_id}: query failed: "
                                    f"{first_line(err)}") from err
        return len(positions), keys

    def _expected_in(self, box: Sequence[float]) -> float:
        """How many features `box` would hold if the rows were spread evenly over the table's
        extent, as PostGIS's statistics estimate it (the table is analysed when loaded; no
        row is read). A table without statistics counts as holding every row in the box."""
        if self._extent is None:
            found = self._rows(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM ST_EstimatedExtent(%s, %s, %s) AS e",
                [SCHEMA, self.layer.table, self.layer.geometry])
            self._extent = tuple(found[0]) if found and found[0][0] is not None else ()
        if not self._extent:
            return float(self.layer.total)
        return self.layer.total * in_memory.box_share(self._extent, box)

    def _table_identity(self) -> tuple:
        if self._identity is None:
            with connection(self.url) as conn:
                self._identity = table_identity(conn, self.layer)
        return self._identity

    def _where(self, query: ItemsQuery) -> tuple[str, list]:
        clauses, params = [], []
        for text, values in (self._bbox_sql(query.bbox), self._datetime_sql(query.datetime),
                             self._equals_sql(query.equals), self._q_sql(query.q),
                             self._filter_sql(query.filter)):
            if text:
                clauses.append(f"({text})")
                params += values
        if len(params) > MAX_FILTER_VALUES:
            raise LayerQueryError(f"query too complex for this server (more than "
                             f"{MAX_FILTER_VALUES} values)", "filter")
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def _count(self, where: str, params: list) -> int:
        if not where:
            return self.layer.total
        return self._rows(f"SELECT count(*) FROM {self.table}{where}", params)[0][0]  # noqa: S608 - quoted identifiers

    def _bbox_sql(self, bbox: BBox | Sequence[float] | None) -> tuple[str, list]:
        return bbox_condition(bbox, True, self.target.box_sql)

    def _datetime_sql(self, value: TimeSpan | str | None) -> tuple[str, list]:
        span = self.target.time_span_sql(self.time_field) if self.time_field else None
        return datetime_condition(value, span, self.temporal_extent, POSTGRESQL)

    def _equals_sql(self, equals: Sequence[tuple[str, Any]]) -> tuple[str, list]:
        return equals_condition(equals, lambda name: self._queryable_kind(name, name), ident,
                                POSTGRESQL)

    def _q_sql(self, q: str | None) -> tuple[str, list]:
        if q is None:
            return "", []
        text_columns = [c for c in self.columns if self.kinds[c] == "string"]
        terms = free_text_terms(q, text_columns)
        clauses = [f"strpos({POSTGRESQL.lower.format(ident(column))}, %s) > 0"
                   for _ in terms for column in text_columns]
        params = [term.lower() for term in terms for _ in text_columns]
        return " OR ".join(clauses), params

    def _filter_sql(self, tree: Any) -> tuple[str, list]:
        if tree is None:
            return "", []
        if isinstance(tree, str):
            raise LayerQueryError("filter: expected a parsed CQL2 expression")
        return to_sql(tree, self.target, "filter", POSTGRESQL)

    def _queryable_kind(self, name: str, param: str) -> str:
        if name not in self.columns and name != self.layer.pk:
            raise LayerQueryError(f"{param}: unknown property '{name}'", param,
                                  message_code="unknown_property", params={"name": name})
        return self.kinds[name]

    def _order_by(self, sortby: Sequence[tuple[str, bool]]) -> str:
        # SQLite's order, which the GeoPackage store has: NULLs are the smallest values.
        return order_by(sortby, lambda name: self._queryable_kind(name, "sortby"), ident,
                        ident(self.layer.pk), ("ASC NULLS FIRST", "DESC NULLS LAST"))

    def _output_columns(self, selected: Sequence[str] | None, skip_geometry: bool) -> list[str]:
        return output_columns(self.columns, self.id_field, self.layer.geometry, selected,
                              skip_geometry)

    def _select_list(self, columns: list[str], table: str | None = None) -> str:
        """The columns' select list, each qualified by `table` (an alias) when given."""
        names = [f"{table}.{ident(c)}" if table else ident(c) for c in columns]
        if columns[-1] == self.layer.geometry:
            names[-1] = f"ST_AsBinary({names[-1]})"
        return ", ".join(names)

    # -- answers -----------------------------------------------------------------------------

    def _features(self, rows: list[tuple], columns: list[str], write_geometries) -> list[dict]:
        has_geometry = columns[-1] == self.layer.geometry
        names = columns[1:len(columns) - has_geometry]
        geometries = write_geometries(shapely.from_wkb(
            np.array([row[-1] for row in rows], dtype=object))) if has_geometry else \
            [None] * len(rows)
        return [{"type": "Feature", "id": row[0], "geometry": geometry,
                 "properties": self._properties(names, row[1:1 + len(names)])}
                for row, geometry in zip(rows, geometries, strict=True)]

    def _properties(self, names: Sequence[str], values: Sequence[Any]) -> dict:
        """A row's properties; booleans, stored as 0/1 as SQLite does, as booleans."""
        return {name: bool(value) if self.kinds[name] == "boolean" and value is not None
                else value for name, value in zip(names, values, strict=True)}

    def _rows(self, statement: str, params: list) -> list[tuple]:
        """The rows of a statement. A statement past the server's limits or a value it cannot
        compute (division by zero) is the request's fault; anything else is the store's."""
        try:
            with connection(self.url) as conn:
                return conn.execute(statement, params).fetchall()
        except psycopg.errors.ProgramLimitExceeded as err:
            raise LayerQueryError(f"query too complex for this server ({first_line(err)})",
                             "filter") from err
        except psycopg.DataError as err:
            raise LayerQueryError(f"filter: cannot be computed ({first_line(err)})",
                             "filter") from err
        except (psycopg.Error, PoolTimeout) as err:
            LOGGER.error("%s: query failed: %s\n%s %r", self.layer.table, err, statement, params)
            raise FeatureStoreError(f"{self.layer.dataset_id}: query failed: "
                                    f"{first_line(err)}") from err

    def _check_fields(self) -> None:
        if self.id_field not in self.kinds:
            raise FeatureStoreError(f"{self.layer.table}: id_field '{self.id_field}' not found")
        kind = self.kinds.get(self.time_field) if self.time_field else None
        if self.time_field is not None and kind not in TEMPORAL_KINDS | {"string"}:
            raise FeatureStoreError(f"{self.layer.table}: time_field '{self.time_field}' is "
                                    "not a date or text column")

    def __repr__(self) -> str:
        return f"<PostgisFeatureStore {self.layer.table}>"


def _is_spatial(query: ItemsQuery) -> bool:
    """Whether the query has a spatial condition: bbox, or one in its CQL2 filter."""
    if query.bbox:
        return True
    nodes = [query.filter] if query.filter is not None and not isinstance(query.filter, str) \
        else []
    while nodes:
        node = nodes.pop()
        if isinstance(node, SPATIAL_NODES):
            return True
        if isinstance(node, ast.Node):
            nodes += node.get_sub_nodes()
    return False


def _gap_free_start(conn: psycopg.Connection, layer: LayerTable) -> int | None:
    """The first pk when the table's pks are first .. first + total - 1 (unique, so then
    every one of them), else None. Two ends of the primary key's index: no scan."""
    pk = sql.Identifier(layer.pk)
    low, high = conn.execute(sql.SQL("SELECT min({}), max({}) FROM {}").format(
        pk, pk, layer.qualified)).fetchone()
    if low is None or high - low + 1 != layer.total:
        return None
    return low


def _simplify_tolerance(tile: TileBounds) -> float:
    """The GeoPackage tiles' simplification (a fraction of a pixel, none at the deepest zoom),
    in WebMercator metres."""
    if tile.z >= mvt.MAX_ZOOM:
        return 0.0
    minx, _, maxx, _ = tile.mercator
    return mvt.SIMPLIFY * (maxx - minx) / mvt.EXTENT

