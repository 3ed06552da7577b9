"""The FeatureStore of a version loaded into PostGIS (TAZA_DATABASE_URL, catalog/postgis).

Same answers as the GeoPackage store (tests/test_feature_store_contract.py and
tests/test_postgis_features.py run both): the same query rules (catalog.gpkg's BBOX_RULES,
DATETIME_RULES, check_page), CQL2 through catalog.core.cql2 in its PostgreSQL dialect, NULLs
first ascending and last descending, ties broken by the primary key, exact counts. Spatial
tests are PostGIS's (GEOS, as shapely); map tiles are ST_AsMVT with the GeoPackage tiles'
buffer, feature cap and thinning. Every statement runs on a connection of this worker's pool;
values are bound, identifiers quoted by psycopg.sql.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import sql
from psycopg_pool import PoolTimeout
from shapely.geometry.base import BaseGeometry

from catalog.core.assets import AssetLocator
from catalog.core.cql2 import (
    POSTGRESQL,
    SPATIAL_OPS,
    TEMPORAL_KINDS,
    Cql2Error,
    Property,
    box_geometry,
    coerce_value,
    temporal_sql,
    to_sql,
)
from catalog.core.parse import BBox, TimeSpan, parse_bbox, parse_datetime
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
from catalog.gpkg import (
    BBOX_RULES,
    DATETIME_RULES,
    JSON_TYPES,
    QueryError,
    check_page,
    geojson_geometries,
    orjson_geometries,
)
from catalog.postgis import SCHEMA, DatabaseError, LayerTable, find_layer, pool

LOGGER = logging.getLogger(__name__)
MAX_FILTER_VALUES = 1000  # bound values in one query; beyond, "too complex" (as SQLite's depth)
SPATIAL_FUNCTIONS = {name: f"ST_{name.capitalize()}" for name in SPATIAL_OPS.values()}


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
            raise Cql2Error(f"{param}: unknown property '{name}'", param)
        return Property(ident(name), self.kinds[name], name=name)

    def spatial_sql(self, op: str, geometry: BaseGeometry,
                    null_safe: bool = False) -> tuple[str, list]:
        # A NULL geometry gives NULL: outside NOT it filters like FALSE, under NOT it stays
        # NULL, as null_safe asks.
        literal = "ST_GeomFromWKB(%s, 4326)"
        return (f"{SPATIAL_FUNCTIONS[op]}({ident(self.layer.geometry)}, {literal})",
                [shapely.to_wkb(geometry, flavor="iso")])

    def time_span_sql(self, name: str) -> tuple[str, str]:
        start = POSTGRESQL.instant.format(ident(name))
        if self.kinds.get(name) == "date":  # a date covers its whole day
            return start, f"({start} + interval '86399.999 seconds')"
        return start, start


class PostgisFeatureStore:
    """The features of one published version's PostGIS table."""

    def __init__(self, url: str, layer: LayerTable, *, id_field: str | None = None,
                 time_field: str | None = None, temporal_extent: Sequence | None = None):
        self.url = url
        self.layer = layer
        self.columns = [name for name, _ in layer.columns]
        self.kinds = layer.kinds
        self.id_field = id_field or layer.pk
        self.time_field = time_field
        self._check_fields()
        self.temporal_extent = _temporal_extent(temporal_extent, layer)
        self.target = PostgisTarget(layer, self.kinds, time_field)
        self.table = ident(SCHEMA, layer.table)

    @classmethod
    def for_record(cls, record: Record, url: str) -> PostgisFeatureStore:
        """The store of a published vector version (FeatureStoreError when not loaded)."""
        if record.vector is None:
            raise FeatureStoreError(f"{record.id} version {record.version} is not a vector layer")
        try:
            with pool(url).connection() as conn:
                layer = find_layer(conn, record.id, record.version)
        except (psycopg.Error, PoolTimeout, DatabaseError) as err:
            raise FeatureStoreError(f"{record.id}: the database cannot be read ({err})") from err
        if layer is None:
            raise FeatureStoreError(f"{record.id} version {record.version} has no table in "
                                    "the database: publish it again (or roll back to it)")
        extent = record.manifest.temporal_extent.as_json()
        return cls(url, layer, id_field=record.manifest.id_field,
                   temporal_extent=[extent["start"], extent["end"]])

    @classmethod
    def opener(cls, url: str) -> Callable[[Record, AssetLocator], PostgisFeatureStore]:
        """A LiveFeatures store opener for the database at `url`."""
        return lambda record, _assets: cls.for_record(record, url)

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
        return self._count(where, params)

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
        west, south, east, north = mvt.buffered_lonlat(tile)
        envelope = "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        box = [west, south, east, north]
        geom, pk = ident(self.layer.geometry), ident(self.layer.pk)
        candidates = self._rows(f"SELECT count(*) FROM {self.table} "  # noqa: S608 - quoted identifiers
                                f"WHERE {geom} && {envelope}", box)[0][0]
        thinning = max(1, -(-candidates // mvt.FEATURE_CAP))
        thin, thin_params = "", []
        if thinning > 1:  # the GeoPackage tiles' hash: the same features stay
            thin, thin_params = f" AND (({pk} * %s) & 4294967295) %% %s = 0", \
                [mvt.HASH_MULTIPLIER, thinning]
        attributes = "".join(f", {ident(name)}" for name in self.columns)
        statement = (
            f"SELECT ST_AsMVT(t, %s, {mvt.EXTENT}, 'mvt_geometry', 'mvt_id') FROM ("  # noqa: S608 - quoted identifiers
            f"SELECT {pk} AS mvt_id{attributes}, ST_AsMVTGeom(ST_SimplifyPreserveTopology("
            f"ST_Transform(ST_ClipByBox2D({geom}, {envelope}), 3857), %s), "
            "ST_TileEnvelope(%s, %s, %s), "
            f"{mvt.EXTENT}, {mvt.BUFFER}, true) AS mvt_geometry "
            f"FROM {self.table} WHERE {geom} && {envelope}{thin}) AS t "
            "WHERE t.mvt_geometry IS NOT NULL")
        params = [layer_name, *box, _simplify_tolerance(tile), tile.z, tile.x, tile.y, *box,
                  *thin_params]
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
        matched = self._count(where, params)
        rows: list[tuple] = []
        if offset < matched and limit > 0:
            statement = (f"SELECT {self._select_list(columns)} FROM {self.table}{where} "  # noqa: S608 - quoted identifiers
                         f"ORDER BY {order} LIMIT %s OFFSET %s")
            rows = self._rows(statement, [*params, limit, offset])
        return matched, columns, rows

    def _where(self, query: ItemsQuery) -> tuple[str, list]:
        clauses, params = [], []
        for text, values in (self._bbox_sql(query.bbox), self._datetime_sql(query.datetime),
                             self._equals_sql(query.equals), self._q_sql(query.q),
                             self._filter_sql(query.filter)):
            if text:
                clauses.append(f"({text})")
                params += values
        if len(params) > MAX_FILTER_VALUES:
            raise QueryError(f"query too complex for this server (more than "
                             f"{MAX_FILTER_VALUES} values)", "filter")
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def _count(self, where: str, params: list) -> int:
        if not where:
            return self.layer.total
        return self._rows(f"SELECT count(*) FROM {self.table}{where}", params)[0][0]  # noqa: S608 - quoted identifiers

    def _bbox_sql(self, bbox: BBox | Sequence[float] | None) -> tuple[str, list]:
        if bbox is None or (not isinstance(bbox, BBox) and not bbox):
            return "", []
        if not isinstance(bbox, BBox):
            try:
                bbox = parse_bbox(list(bbox), "bbox", replace(BBOX_RULES, antimeridian=True))
            except TypeError:
                raise QueryError(f"bbox: not numbers: {bbox!r}") from None
        elif bbox.minz is not None:
            raise QueryError(BBOX_RULES.messages["count"].format(param="bbox"))
        minx, miny, maxx, maxy = bbox.bounds
        if minx <= maxx:
            return self.target.spatial_sql("intersects", box_geometry(minx, miny, maxx, maxy))
        east = self.target.spatial_sql("intersects", box_geometry(minx, miny, 180.0, maxy))
        west = self.target.spatial_sql("intersects", box_geometry(-180.0, miny, maxx, maxy))
        return f"({east[0]}) OR ({west[0]})", east[1] + west[1]

    def _datetime_sql(self, value: TimeSpan | str | None) -> tuple[str, list]:
        if value is None:
            return "", []
        if isinstance(value, str):
            value = parse_datetime(value, "datetime", DATETIME_RULES)
        elif not isinstance(value, TimeSpan):
            raise QueryError(f"datetime: expected text, got {value!r}")
        if value.unbounded:
            return "", []
        if self.time_field is not None:
            return temporal_sql(self.target.time_span_sql(self.time_field), "intersects", value,
                                dialect=POSTGRESQL)
        if self.temporal_extent is not None:
            return POSTGRESQL.constant(self.temporal_extent.intersects(value)), []
        raise QueryError("datetime: this collection has no temporal information to filter on")

    def _equals_sql(self, equals: Sequence[tuple[str, Any]]) -> tuple[str, list]:
        clauses, params = [], []
        for item in equals or ():
            try:
                name, value = item
            except (TypeError, ValueError):
                raise QueryError(f"properties: expected (name, value) pairs, got {item!r}",
                                 "properties") from None
            kind = self._queryable_kind(name, name)
            params.append(coerce_value(kind, value, name=name, param=name))
            column = ident(name)
            if kind in TEMPORAL_KINDS:
                instant = POSTGRESQL.instant
                clauses.append(f"{instant.format(column)} = {instant.format('%s')}")
            else:
                clauses.append(f"{column} = %s")
        return " AND ".join(clauses), params

    def _q_sql(self, q: str | None) -> tuple[str, list]:
        if q is None:
            return "", []
        terms = [term.strip() for term in str(q).split(",") if term.strip()]
        if not terms:
            raise QueryError("q: no search terms")
        text_columns = [c for c in self.columns if self.kinds[c] == "string"]
        if not text_columns:
            raise QueryError("q: this collection has no text properties to search")
        clauses = [f"strpos({POSTGRESQL.lower.format(ident(column))}, %s) > 0"
                   for _ in terms for column in text_columns]
        params = [term.lower() for term in terms for _ in text_columns]
        return " OR ".join(clauses), params

    def _filter_sql(self, tree: Any) -> tuple[str, list]:
        if tree is None:
            return "", []
        if isinstance(tree, str):
            raise QueryError("filter: expected a parsed CQL2 expression")
        return to_sql(tree, self.target, "filter", POSTGRESQL)

    def _queryable_kind(self, name: str, param: str) -> str:
        if name not in self.columns and name != self.layer.pk:
            raise QueryError(f"{param}: unknown property '{name}'", param)
        return self.kinds[name]

    def _order_by(self, sortby: Sequence[tuple[str, bool]]) -> str:
        keys = []
        for name, descending in sortby or ():
            self._queryable_kind(name, "sortby")
            # SQLite's order, which the GeoPackage store has: NULLs are the smallest values.
            keys.append(f"{ident(name)} {'DESC NULLS LAST' if descending else 'ASC NULLS FIRST'}")
        keys.append(f"{ident(self.layer.pk)} ASC")  # stable paging among equal keys
        return ", ".join(keys)

    def _output_columns(self, selected: Sequence[str] | None, skip_geometry: bool) -> list[str]:
        """The id, then properties in table order, then the geometry unless skipped."""
        selected = list(selected or ())
        unknown = [name for name in selected if name not in self.columns]
        if unknown:
            raise QueryError(f"properties: unknown properties {unknown}")
        names = [c for c in self.columns if c in selected] if selected else list(self.columns)
        return [self.id_field, *names, *([] if skip_geometry else [self.layer.geometry])]

    def _select_list(self, columns: list[str]) -> str:
        names = [ident(c) for c in columns]
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
            with pool(self.url).connection() as conn:
                return conn.execute(statement, params).fetchall()
        except psycopg.errors.ProgramLimitExceeded as err:
            raise QueryError(f"query too complex for this server ({_first_line(err)})",
                             "filter") from err
        except psycopg.DataError as err:
            raise QueryError(f"filter: cannot be computed ({_first_line(err)})",
                             "filter") from err
        except (psycopg.Error, PoolTimeout) as err:
            LOGGER.error("%s: query failed: %s\n%s %r", self.layer.table, err, statement, params)
            raise FeatureStoreError(f"{self.layer.dataset_id}: query failed: "
                                    f"{_first_line(err)}") from err

    def _check_fields(self) -> None:
        if self.id_field not in self.kinds:
            raise FeatureStoreError(f"{self.layer.table}: id_field '{self.id_field}' not found")
        kind = self.kinds.get(self.time_field) if self.time_field else None
        if self.time_field is not None and kind not in TEMPORAL_KINDS | {"string"}:
            raise FeatureStoreError(f"{self.layer.table}: time_field '{self.time_field}' is "
                                    "not a date or text column")

    def __repr__(self) -> str:
        return f"<PostgisFeatureStore {self.layer.table}>"


def _simplify_tolerance(tile: TileBounds) -> float:
    """The GeoPackage tiles' simplification (a fraction of a pixel, none at the deepest zoom),
    in WebMercator metres."""
    if tile.z >= mvt.MAX_ZOOM:
        return 0.0
    minx, _, maxx, _ = tile.mercator
    return mvt.SIMPLIFY * (maxx - minx) / mvt.EXTENT


def _temporal_extent(extent: Sequence | None, layer: LayerTable) -> TimeSpan | None:
    if extent is None:
        return None
    try:
        start, end = (None if v in (None, "..") else str(v) for v in extent)
        return parse_datetime(f"{start or '..'}/{end or '..'}", "temporal_extent",
                              DATETIME_RULES)
    except (ValueError, TypeError) as err:  # malformed config: fail at load, not per request
        raise FeatureStoreError(f"{layer.table}: bad temporal_extent {extent!r}") from err


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
