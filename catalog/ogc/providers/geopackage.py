"""Read-only pygeoapi feature provider for GeoPackages, without SpatiaLite.

pygeoapi's SQLiteGPKG provider needs mod_spatialite (our Python builds cannot load extensions),
reconnects on every request and ignores CQL2, sortby and properties. This provider reads the
GeoPackage with the standard library's sqlite3: the R-tree index (``rtree_<table>_<geom>``) is a
plain SQLite virtual table, and exact geometry tests run in shapely through SQL functions
registered on the connection, so filtering, counting and paging stay in SQL: one statement for
the page and one for numberMatched.

Configuration (a pygeoapi provider block)::

    - type: feature
      name: catalog.ogc.providers.geopackage.GeoPackageProvider
      data: /abs/path/layer.gpkg
      id_field: code                  # optional; default: the integer primary key (fid)
      table: layer                    # optional; default: the only 'features' table
      temporal_extent: [2019-01-01, null]   # optional; the dataset's time span
      time_field: observed            # optional; a DATE/DATETIME (or ISO text) property
      properties: [name, pop]         # optional; expose (and allow querying) only these

Query semantics:

- ``bbox``: R-tree prefilter plus an exact shapely ``intersects``; a box with minx > maxx crosses
  the antimeridian (geographic storage CRS only). 3D boxes are rejected.
- ``datetime``: with ``time_field``, features whose time lies in the instant/interval (a date
  means its whole day); otherwise all features when the interval meets ``temporal_extent`` and
  none when it does not. A collection with neither rejects ``datetime``.
- ``q``: comma-separated terms, any of which may match (pygeoapi's convention for Records); each
  term is a case-insensitive substring of any text property. ASCII terms use SQLite's LIKE (ASCII
  case folding); others compare Python-lowercased text.
- ``filter``: see `cql_sql.CqlTranslator`; NULLs follow SQL three-valued logic.
- ``sortby``: NULLs first ascending, last descending; ties broken by the primary key.

Published files never change in place, so they are opened ``immutable=1``; a replaced file (new
inode or mtime) gets fresh metadata and connections.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import math
import os
import sqlite3
import struct
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson
import shapely
from pygeoapi.crs import crs_transform
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)
from shapely.geometry.base import BaseGeometry

from catalog.ogc.providers.cql_sql import (
    SPATIAL_OPS,
    TEMPORAL_KINDS,
    CqlTranslator,
    TableSchema,
    TimeSpan,
    box_geometry,
    coerce_value,
    invalid,
    quote_ident,
    spatial_sql,
    temporal_sql,
    unaccent,
)

LOGGER = logging.getLogger(__name__)

JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
}

# --- GeoPackage geometry blobs ------------------------------------------------------------------

_ENVELOPE_SIZES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


@dataclass(frozen=True)
class GpkgHeader:
    """The GeoPackage binary header that precedes the WKB (GeoPackage 1.3, clause 2.1.3)."""

    version: int
    srs_id: int
    envelope: tuple[float, ...] | None  # minx, maxx, miny, maxy[, minz, maxz][, minm, maxm]
    empty: bool
    wkb_offset: int


def parse_gpkg_header(blob: bytes) -> GpkgHeader:
    """Parse the header of a GeoPackage geometry blob; ValueError if it is not one."""
    if len(blob) < 8 or blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry (missing 'GP' magic)")
    flags = blob[3]
    if flags & 0x20:
        raise ValueError("extended GeoPackage geometry types are not supported")
    envelope_size = _ENVELOPE_SIZES.get((flags >> 1) & 0x07)
    if envelope_size is None:
        raise ValueError(f"invalid envelope indicator in flags {flags:#04x}")
    order = "<" if flags & 0x01 else ">"
    if len(blob) < 8 + envelope_size:
        raise ValueError("truncated GeoPackage geometry header")
    (srs_id,) = struct.unpack_from(f"{order}i", blob, 4)
    envelope = (
        struct.unpack_from(f"{order}{envelope_size // 8}d", blob, 8) if envelope_size else None
    )
    return GpkgHeader(blob[2], srs_id, envelope, bool(flags & 0x10), 8 + envelope_size)


def gpkg_wkb(blob: bytes) -> bytes:
    """The WKB part of a GeoPackage geometry blob (the WKB carries its own byte order)."""
    if len(blob) >= 8 and blob[:2] == b"GP" and not blob[3] & 0x20:  # the common case, quickly
        size = _ENVELOPE_SIZES.get((blob[3] >> 1) & 0x07)
        if size is not None and len(blob) >= 8 + size:
            return bytes(blob[8 + size :])
    return bytes(blob[parse_gpkg_header(blob).wkb_offset :])  # raises, naming the problem


# shapely type id -> GeoJSON type, for the types shapely.to_ragged_array handles.
_RAGGED_TYPES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint",
                 5: "MultiLineString", 6: "MultiPolygon"}


def _simple_coordinates(geometries: np.ndarray, type_id: int, has_z: bool,
                        as_lists: bool = True) -> list | None:
    """Per-geometry coordinates of points, lines, multipoints and polygons without holes,
    sliced from one coordinate array (shapely.to_ragged_array builds a geometry per ring: 10x
    slower); nested lists, or with `as_lists=False` numpy views for orjson. None otherwise."""
    if type_id not in (0, 1, 3, 4):
        return None
    if type_id == 3 and shapely.get_num_interior_rings(geometries).any():
        return None
    coords = shapely.get_coordinates(geometries, include_z=has_z)
    if as_lists:
        coords = coords.tolist()
    if type_id == 0:
        return list(coords)
    ends = np.cumsum(shapely.get_num_coordinates(geometries)).tolist()
    parts = [coords[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    return [[part] for part in parts] if type_id == 3 else parts


def _page_geometries(geometries: np.ndarray) -> tuple[list[int], np.ndarray, int | None, bool]:
    """The positions of the present (not missing, not empty) geometries of a page, those
    geometries, their common shapely type id (None when types or dimensions differ, M values
    are present, or nothing is) and whether they have Z."""
    index = np.flatnonzero(~shapely.is_missing(geometries) & ~shapely.is_empty(geometries))
    present = geometries[index]
    if not len(index):
        return [], present, None, False
    types = shapely.get_type_id(present)
    has_z = shapely.has_z(present)
    type_id = int(types[0])
    uniform = type_id in _RAGGED_TYPES and (types == type_id).all() and \
        (has_z == has_z[0]).all() and not shapely.has_m(present).any()
    return index.tolist(), present, type_id if uniform else None, bool(has_z[0])


def geojson_geometries(geometries: np.ndarray) -> list[dict | None]:
    """GeoJSON geometry dicts for an array of shapely geometries (None for missing or empty).

    A page of one geometry type becomes one array of coordinates plus offsets, turned into
    nested lists by slicing: about 20x faster than per-geometry `mapping`. Other pages go
    through shapely's GeoJSON writer.
    """
    out: list[dict | None] = [None] * len(geometries)
    index, present, type_id, has_z = _page_geometries(geometries)
    if type_id is not None:
        items = _simple_coordinates(present, type_id, has_z)
        if items is None:
            _, coords, offsets = shapely.to_ragged_array(present)
            items = coords.tolist()
            for level in offsets:
                bounds = level.tolist()
                items = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        geojson = [{"type": _RAGGED_TYPES[type_id], "coordinates": item} for item in items]
    else:
        geojson = [json.loads(text) for text in shapely.to_geojson(present)]
    for i, geometry in zip(index, geojson, strict=True):
        out[i] = geometry
    return out


def orjson_geometries(geometries: np.ndarray) -> list:
    """Geometries ready for ``orjson.dumps(..., option=OPT_SERIALIZE_NUMPY)``; None for missing
    or empty ones.

    A page of one simple type (points, lines, multipoints, polygons without holes) becomes
    GeoJSON dicts whose coordinates are views into one coordinate array, which orjson writes in
    C with shortest round-trip numbers. Other pages get shapely's GeoJSON text as fragments.
    """
    out: list = [None] * len(geometries)
    index, present, type_id, has_z = _page_geometries(geometries)
    parts = None if type_id is None else \
        _simple_coordinates(present, type_id, has_z, as_lists=False)
    if parts is None:
        written = [orjson.Fragment(text) for text in shapely.to_geojson(present).tolist()]
    else:
        written = [{"type": _RAGGED_TYPES[type_id], "coordinates": part} for part in parts]
    for i, geometry in zip(index, written, strict=True):
        out[i] = geometry
    return out


def gpkg_to_shapely(blob: bytes | None) -> BaseGeometry | None:
    """Shapely geometry from a GeoPackage blob (ISO WKB with Z/M included); None for NULL."""
    if blob is None:
        return None
    return shapely.from_wkb(gpkg_wkb(blob))


# --- SQL functions --------------------------------------------------------------------------------


def _prepared_predicate(op: str) -> Callable[[BaseGeometry, BaseGeometry], bool]:
    """op(feature, literal), evaluated with the literal first so GEOS uses its prepared form."""
    literal_first = {
        "intersects": shapely.intersects,
        "disjoint": shapely.disjoint,
        "touches": shapely.touches,
        "within": shapely.contains,  # feature within L  <=>  L contains feature
        "contains": shapely.within,  # feature contains L  <=>  L within feature
    }
    if op in literal_first:
        function = literal_first[op]
        return lambda feature, literal: function(literal, feature)
    function = getattr(shapely, op)
    return lambda feature, literal: function(feature, literal)


def _register_functions(conn: sqlite3.Connection) -> None:
    """Exact spatial predicates and text folding, as deterministic SQL functions.

    Prepared literals are cached per connection, i.e. per thread: GEOS prepared geometries
    must not be shared between threads.
    """
    literals: dict[bytes, BaseGeometry] = {}

    def literal_geometry(wkb: bytes) -> BaseGeometry:
        geometry = literals.get(wkb)
        if geometry is None:
            if len(literals) > 64:
                literals.clear()
            geometry = shapely.from_wkb(wkb)
            shapely.prepare(geometry)
            literals[wkb] = geometry
        return geometry

    def make(op: str) -> Callable[[bytes | None, bytes | None], int | None]:
        test = _prepared_predicate(op)

        def predicate(blob: bytes | None, wkb: bytes | None) -> int | None:
            if blob is None or wkb is None:
                return None  # SQL NULL: unknown, like any comparison with NULL
            try:
                feature = gpkg_to_shapely(blob)
            except (ValueError, shapely.errors.GEOSException) as err:
                LOGGER.warning("unreadable geometry blob skipped: %s", err)
                return None
            return int(bool(test(feature, literal_geometry(wkb))))

        return predicate

    for op in SPATIAL_OPS.values():
        conn.create_function(f"gpkg_{op}", 2, make(op), deterministic=True)
    conn.create_function("gpkg_lower", 1, _text(str.lower), deterministic=True)
    conn.create_function("gpkg_unaccent", 1, _text(unaccent), deterministic=True)


def _text(function: Callable[[str], str]) -> Callable[[Any], Any]:
    return lambda value: function(value) if isinstance(value, str) else value


# --- metadata and connections -------------------------------------------------------------------


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
_LOCAL = threading.local()
# numberMatched of filtered queries, per file version: published files never change, so a count
# stays exact; clients paging through one filter (GDAL, QGIS) ask for it on every page.
_COUNTS: OrderedDict[tuple, int] = OrderedDict()
_COUNTS_LOCK = threading.Lock()
COUNT_CACHE_SIZE = 512
# A page needing more than this share of a filter's matches reads them through the index.
SPARSE_SHARE = 0.2


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


def _file_version(path: str) -> tuple:
    """Identity of the GeoPackage and of its stored feature text (either may be replaced)."""
    try:
        stat = os.stat(path)
    except OSError as err:
        raise ProviderConnectionError(f"cannot open GeoPackage {path}: {err}") from err
    try:
        side = os.stat(feature_text_path(path))
        side_version = (side.st_ino, side.st_mtime_ns, side.st_size)
    except OSError:
        side_version = None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size, side_version


# --- stored feature text ---------------------------------------------------------------------
# Publishing writes, next to <id>.gpkg, <id>.features.sqlite: each feature's GeoJSON text as
# this provider writes it (catalog/convert/feature_text.py), keyed by primary key. Pages of whole
# features then copy stored text instead of decoding geometries and building dicts. The file
# says which table, id field and columns it was written for; a mismatch, another format version
# or a missing file means features are written from the GeoPackage as before.
FEATURE_TEXT_SUFFIX = ".features.sqlite"
FEATURE_TEXT_FORMAT = "taza-feature-text/1"
# It is attached to each connection as the schema `feature_text` (named so in the SQL below).


def feature_text_path(gpkg_path: str) -> str:
    base = gpkg_path[: -len(".gpkg")] if gpkg_path.endswith(".gpkg") else gpkg_path
    return base + FEATURE_TEXT_SUFFIX


def _sqlite_uri(path: str) -> str:
    return f"file:{urllib.parse.quote(path)}?mode=ro&immutable=1"


def _connect(path: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(_sqlite_uri(path), uri=True)
        conn.execute("SELECT 1 FROM gpkg_contents LIMIT 1")
    except sqlite3.Error as err:
        raise ProviderConnectionError(f"cannot open GeoPackage {path}: {err}") from err
    _register_functions(conn)
    side = feature_text_path(path)
    if os.path.exists(side):
        try:
            conn.execute("ATTACH DATABASE ? AS feature_text", (_sqlite_uri(side),))
        except sqlite3.Error as err:  # serve without it rather than fail
            LOGGER.warning("%s: stored feature text not attached: %s", side, err)
    return conn


def _feature_text_about(conn: sqlite3.Connection) -> dict | None:
    """What the attached feature text was written for; None when absent or unreadable."""
    try:
        return dict(conn.execute("SELECT key, value FROM feature_text.about"))
    except sqlite3.Error:
        return None


def connection(path: str, version: tuple) -> sqlite3.Connection:
    """This thread's connection to `path` (pygeoapi builds a provider per request)."""
    conns: dict[str, tuple[tuple, sqlite3.Connection]] = _LOCAL.__dict__.setdefault("conns", {})
    entry = conns.get(path)
    if entry is not None and entry[0] == version:
        return entry[1]
    if entry is not None:
        entry[1].close()
    conn = _connect(path)
    conns[path] = (version, conn)
    return conn


def _pick_table(conn: sqlite3.Connection, table: str | None, path: str) -> str:
    tables = [
        row[0]
        for row in conn.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")
    ]
    if table is None:
        if len(tables) != 1:
            raise ProviderConnectionError(f"{path}: set 'table', feature tables are {tables}")
        return tables[0]
    if table not in tables:
        raise ProviderConnectionError(f"{path}: no feature table '{table}' (have {tables})")
    return table


def _load_meta(conn: sqlite3.Connection, path: str, table: str | None) -> TableMeta:
    table = _pick_table(conn, table, path)
    geom, srs_id = conn.execute(
        "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (table,)
    ).fetchone() or (None, None)
    if geom is None:
        raise ProviderConnectionError(f"{path}: table '{table}' has no geometry column")
    info = conn.execute(f"PRAGMA table_info({quote_ident(table)})").fetchall()
    pk = next((row[1] for row in info if row[5] == 1 and "INT" in row[2].upper()), None)
    if pk is None:
        raise ProviderConnectionError(f"{path}: table '{table}' has no integer primary key")
    kinds = {pk: "integer"}
    columns = []
    for _, name, declared, *_ in info:
        kind = column_kind(declared)
        if name not in (pk, geom) and kind is not None:
            kinds[name] = kind
            columns.append(name)
    rtree = f"rtree_{table}_{geom}"
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (rtree,)).fetchone():
        LOGGER.warning("%s: no R-tree index %s, spatial filters scan the table", path, rtree)
        rtree = None
    schema = TableSchema(table, pk, geom, rtree, kinds)
    total, first, last = conn.execute(
        f"SELECT COUNT(*), MIN({quote_ident(pk)}), MAX({quote_ident(pk)}) "  # noqa: S608 - identifiers from metadata
        f"FROM {quote_ident(table)}"
    ).fetchone()
    dense = total > 0 and last - first + 1 == total
    covering = _covering_index(conn, table, columns)
    about = _feature_text_about(conn)
    return TableMeta(schema, columns, srs_id, total, first, dense, covering, about)


def _covering_index(conn: sqlite3.Connection, table: str, columns: list[str]) -> str | None:
    """An index containing every attribute column (publishing writes one), if any."""
    for row in conn.execute(f"PRAGMA index_list({quote_ident(table)})").fetchall():
        name = row[1]
        indexed = {r[2] for r in conn.execute(f"PRAGMA index_info({quote_ident(name)})")}
        if columns and set(columns) <= indexed:
            return name
    return None


def table_meta(path: str, version: tuple, table: str | None) -> TableMeta:
    key = (path, version, table)
    meta = _META.get(key)
    if meta is None:
        with _META_LOCK:
            meta = _META.get(key)
            if meta is None:
                meta = _load_meta(connection(path, version), path, table)
                for old in [k for k in _META if k[0] == path and k[1] != version]:
                    del _META[old]
                _META[key] = meta
    return meta


@dataclass(frozen=True)
class FeaturePage:
    """A page of rows: the id column first, then properties, then the geometry blob unless
    the request skipped geometries; or, with `text`, one column of stored feature text."""

    matched: int
    columns: list[str]
    rows: list[tuple]
    text: bool = False  # rows are (stored GeoJSON feature text,)


# --- the provider -------------------------------------------------------------------------------


class GeoPackageProvider(BaseProvider):
    """Read-only feature provider over a GeoPackage (fiona/GDAL-written, with R-tree index)."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        self.path = os.path.abspath(self.data)
        self._version = _file_version(self.path)
        self._meta = table_meta(self.path, self._version, provider_def.get("table"))
        self.table = self._meta.schema.table
        self.id_field = self.id_field or self._meta.schema.pk
        self.columns = self._exposed_columns()
        self._check_config()
        # Queries may only reference what is exposed (config `properties`), the id and the pk.
        kinds = self._meta.schema.kinds
        visible = [self._meta.schema.pk, self.id_field, *self.columns]
        visible += [self.time_field] if self.time_field else []
        self.schema = replace(
            self._meta.schema, kinds={c: kinds[c] for c in visible}, time_field=self.time_field
        )
        self.temporal_extent = self._temporal_extent(provider_def.get("temporal_extent"))
        # pygeoapi reads `fields` (i.e. `_fields`) without calling get_fields().
        self._fields = self.get_fields()
        self.has_feature_text = self._feature_text_fits()

    # configuration -------------------------------------------------------------------------------

    def _feature_text_fits(self) -> bool:
        about = self._meta.feature_text
        return about is not None and about == {
            "format": FEATURE_TEXT_FORMAT, "table": self.table, "id_field": self.id_field,
            "columns": json.dumps(self.columns), "rows": str(self._meta.total),
        }

    def _exposed_columns(self) -> list[str]:
        columns = self._meta.columns
        if not self.properties:
            return list(columns)
        unknown = sorted(set(self.properties) - set(columns))
        if unknown:
            raise ProviderConnectionError(f"{self.path}: configured properties {unknown} not found")
        return [c for c in columns if c in self.properties]

    def _check_config(self) -> None:
        kinds = self._meta.schema.kinds
        if self.id_field not in kinds:
            raise ProviderConnectionError(f"{self.path}: id_field '{self.id_field}' not found")
        if self.time_field is not None:
            if kinds.get(self.time_field) not in TEMPORAL_KINDS | {"string"}:
                raise ProviderConnectionError(
                    f"{self.path}: time_field '{self.time_field}' is not a date or text column"
                )

    def _temporal_extent(self, extent: Any) -> TimeSpan | None:
        if extent is None:
            return None
        try:
            start, end = (None if v in (None, "..") else str(v) for v in extent)
            return TimeSpan.parse(f"{start or '..'}/{end or '..'}", "temporal_extent")
        except Exception as err:  # malformed config: fail at load time, not per request
            raise ProviderConnectionError(f"{self.path}: bad temporal_extent {extent!r}") from err

    def get_fields(self) -> dict:
        """Property name -> JSON schema type (a copy: pygeoapi mutates what it gets)."""
        return {name: copy.deepcopy(JSON_TYPES[self.schema.kinds[name]]) for name in self.columns}

    # queries -------------------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        return connection(self.path, self._version)

    @crs_transform
    def query(self, crs_transform_spec: Any = None, language: Any = None, **kwargs: Any) -> dict:
        """A GeoJSON FeatureCollection page with exact numberMatched; see the module docstring.

        pygeoapi's arguments are `select`'s (offset, limit, resulttype, bbox, datetime_,
        properties, sortby, select_properties, skip_geometry, q, filterq); others are ignored.
        """
        page = self.select(**{k: v for k, v in kwargs.items() if k in _SELECT_ARGUMENTS})
        features = self._features(page.rows, page.columns)
        return {"type": "FeatureCollection", "features": features,
                "numberMatched": page.matched, "numberReturned": len(features)}

    def select(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] = (),
        datetime_: str | None = None,
        properties: Sequence[tuple[str, str]] = (),
        sortby: Sequence[dict] = (),
        select_properties: Sequence[str] = (),
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        stored_text: bool = False,
    ) -> FeaturePage:
        """The rows of a page and numberMatched, before any GeoJSON is made of them.

        With `stored_text`, whole features (no property selection, with geometry) come as one
        column of stored GeoJSON text when the layer has it (`FeaturePage.text` says so).
        """
        offset, limit = _page(offset, limit)
        if resulttype not in ("results", "hits"):
            raise invalid(f"resulttype: expected 'results' or 'hits', got '{resulttype}'")
        clauses: list[str] = []
        params: list = []
        for sql, values in (
            self._bbox_sql(bbox),
            self._datetime_sql(datetime_),
            self._properties_sql(properties),
            self._q_sql(q),
            self._filter_sql(filterq),
        ):
            if sql:
                clauses.append(f"({sql})")
                params += values
        columns = self._output_columns(select_properties, skip_geometry)
        text = stored_text and self.has_feature_text and not select_properties and \
            not skip_geometry
        order = self._order_by(sortby)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        matched = self._count(where, params)
        rows: list[tuple] = []
        if resulttype == "results" and offset < matched and limit > 0:
            names = ", ".join(quote_ident(c) for c in columns)
            if text:  # a primary-key lookup per row of the page
                outer_pk = f"{quote_ident(self.table)}.{quote_ident(self.schema.pk)}"
                names = f"(SELECT feature FROM feature_text.features WHERE pk = {outer_pk})"  # noqa: S608 - identifiers from metadata
            # Attribute indexes (written by publishing) serve sortby; without one, pages go in
            # primary-key order, and an index on a filtered column would only slow the scan.
            hint = "" if sortby else " NOT INDEXED"
            select = f"SELECT {names} FROM {quote_ident(self.table)}{hint}"  # noqa: S608 - identifiers from metadata
            if not where and not sortby and self._meta.dense:
                # Unfiltered pages in pk order of a gap-free table: the row at offset k has pk
                # first_pk + k, so a deep page is an index seek instead of an OFFSET walk.
                pk = quote_ident(self.schema.pk)
                sql = f"{select} WHERE {pk} >= ? ORDER BY {pk} LIMIT ?"
                rows = self._execute(sql, [self._meta.first_pk + offset, limit])
            elif not sortby and self._sparse_matches(where, matched, offset + limit):
                # Few rows match an attribute filter: walking the table in pk order would read
                # most of it (with geometries) to fill the page. Find the page's keys in the
                # index of all attributes instead, then read just those rows.
                pk = quote_ident(self.schema.pk)
                keys = (f"SELECT {pk} FROM {quote_ident(self.table)}{self._count_hint(where)}"  # noqa: S608 - identifiers from metadata
                        f"{where} ORDER BY {pk} LIMIT ? OFFSET ?")
                sql = f"{select} WHERE {pk} IN ({keys}) ORDER BY {pk}"
                rows = self._execute(sql, params + [limit, offset])
            else:
                sql = f"{select}{where} ORDER BY {order} LIMIT ? OFFSET ?"
                rows = self._execute(sql, params + [limit, offset])
        return FeaturePage(matched, ["feature"] if text else columns, rows, text)

    def _sparse_matches(self, where: str, matched: int, needed: int) -> bool:
        """Whether the page needs more than SPARSE_SHARE of the filter's matches, for a filter
        the attribute index can evaluate. Matches spread through the table, so a pk-order scan
        would then read a large part of the table (geometries included) to fill the page; index
        entries are several times smaller (1M parcels, 160 matches: 415 ms by table scan)."""
        attribute_only = self._count_hint(where).startswith(" INDEXED BY")
        return attribute_only and needed > SPARSE_SHARE * matched

    def scan(self, batch: int = 10_000):
        """Every row in primary-key order, in pages of whole features (for publishing)."""
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

    @crs_transform
    def get(self, identifier: Any, crs_transform_spec: Any = None, **kwargs: Any) -> dict:
        """The feature whose id_field equals `identifier` (a URL path segment)."""
        kind = self.schema.kinds[self.id_field]
        value: Any = str(identifier)
        if kind in ("integer", "number"):
            try:
                value = coerce_value(kind, value, name=self.id_field, param="id")
            except Exception as err:  # not a number: no such item rather than a bad request
                raise ProviderItemNotFoundError(user_msg=f"item {identifier} not found") from err
        columns = self._output_columns((), False)
        sql = (
            f"SELECT {', '.join(quote_ident(c) for c in columns)} "  # noqa: S608 - identifiers from metadata
            f"FROM {quote_ident(self.table)} WHERE {quote_ident(self.id_field)} = ? "
            f"ORDER BY {quote_ident(self.schema.pk)} LIMIT 1"
        )
        features = self._features(self._execute(sql, [value]), columns)
        if not features:
            raise ProviderItemNotFoundError(user_msg=f"item {identifier} not found")
        return features[0]

    # WHERE parts ---------------------------------------------------------------------------------

    def _bbox_sql(self, bbox: Sequence[float] | None) -> tuple[str, list]:
        if not bbox:
            return "", []
        if len(bbox) != 4:
            raise invalid("bbox: expected 4 numbers minx,miny,maxx,maxy (3D boxes not supported)")
        try:
            minx, miny, maxx, maxy = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise invalid(f"bbox: not numbers: {list(bbox)}") from None
        if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)) or miny > maxy:
            raise invalid(f"bbox: invalid box {list(bbox)}")
        if minx <= maxx:
            return spatial_sql(self.schema, "intersects", box_geometry(minx, miny, maxx, maxy))
        if not self.storage_crs.is_geographic:
            raise invalid("bbox: minx is greater than maxx")
        # Crosses the antimeridian: two boxes, each with its own R-tree prefilter.
        east = spatial_sql(self.schema, "intersects", box_geometry(minx, miny, 180.0, maxy))
        west = spatial_sql(self.schema, "intersects", box_geometry(-180.0, miny, maxx, maxy))
        return f"({east[0]}) OR ({west[0]})", east[1] + west[1]

    def _datetime_sql(self, datetime_: str | None) -> tuple[str, list]:
        if datetime_ is None:
            return "", []
        if not isinstance(datetime_, str):
            raise invalid(f"datetime: expected text, got {datetime_!r}")
        span = TimeSpan.parse(datetime_, "datetime")
        if span.start is None and span.end is None:
            return "", []  # '../..' constrains nothing
        if self.time_field is not None:
            return temporal_sql(self.schema, self.time_field, "intersects", span)
        if self.temporal_extent is not None:
            return ("1" if self.temporal_extent.intersects(span) else "0"), []
        raise invalid("datetime: this collection has no temporal information to filter on")

    def _properties_sql(self, properties: Sequence[tuple[str, str]] | None) -> tuple[str, list]:
        clauses, params = [], []
        for item in properties or ():
            try:
                name, value = item
            except (TypeError, ValueError):
                raise invalid(f"properties: expected (name, value) pairs, got {item!r}") from None
            kind = self._queryable_kind(name, name)
            params.append(coerce_value(kind, value, name=name, param=name))
            column = quote_ident(name)
            if kind in TEMPORAL_KINDS:
                clauses.append(f"julianday({column}) = julianday(?)")
            else:
                clauses.append(f"{column} = ?")
        return " AND ".join(clauses), params

    def _q_sql(self, q: str | None) -> tuple[str, list]:
        if q is None:
            return "", []
        terms = [term.strip() for term in str(q).split(",") if term.strip()]
        if not terms:
            raise invalid("q: no search terms")
        text_columns = [c for c in self.columns if self.schema.kinds[c] == "string"]
        if not text_columns:
            raise invalid("q: this collection has no text properties to search")
        clauses, params = [], []
        for term in terms:
            for column in map(quote_ident, text_columns):
                if term.isascii():
                    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    clauses.append(f"{column} LIKE ? ESCAPE '\\'")
                    params.append(f"%{escaped}%")
                else:
                    clauses.append(f"instr(gpkg_lower({column}), ?) > 0")
                    params.append(term.lower())
        return " OR ".join(clauses), params

    def _filter_sql(self, filterq: Any) -> tuple[str, list]:
        if filterq is None:
            return "", []
        if isinstance(filterq, str):
            raise invalid("filter: expected a parsed CQL2 expression")
        try:
            return CqlTranslator(self.schema, "filter").translate(filterq)
        except RecursionError:
            raise invalid("filter: expression is nested too deeply") from None

    def _queryable_kind(self, name: str, param: str) -> str:
        if name not in self.columns and name != self.schema.pk:
            raise invalid(f"{param}: unknown property '{name}'")
        return self.schema.kinds[name]

    def _order_by(self, sortby: Sequence[dict] | None) -> str:
        keys = []
        for item in sortby or ():
            if not isinstance(item, dict) or "property" not in item:
                raise invalid(f"sortby: expected {{'property', 'order'}}, got {item!r}")
            name, order = item["property"], item.get("order", "+")
            self._queryable_kind(name, "sortby")
            if order not in ("+", "-"):
                raise invalid(f"sortby: order of '{name}' must be '+' or '-', got {order!r}")
            keys.append(f"{quote_ident(name)} {'DESC' if order == '-' else 'ASC'}")
        keys.append(f"{quote_ident(self.schema.pk)} ASC")  # stable paging among equal keys
        return ", ".join(keys)

    # rows to GeoJSON -----------------------------------------------------------------------------

    def _output_columns(self, select_properties: Sequence[str] | None, skip_geometry: bool) -> list:
        selected = list(select_properties or ())
        unknown = [name for name in selected if name not in self.columns]
        if unknown:
            raise invalid(f"properties: unknown properties {unknown}")
        names = [c for c in self.columns if c in selected] if selected else list(self.columns)
        # The id comes first, then the properties (which may list the id column again).
        columns = [self.id_field, *names]
        if not skip_geometry:
            columns.append(self.schema.geom)
        return columns

    def _features(self, rows: list[tuple], columns: list[str]) -> list[dict]:
        has_geometry = columns[-1] == self.schema.geom
        geometries = self._geometries([row[-1] for row in rows]) if has_geometry else None
        return [
            {
                "type": "Feature",
                "id": row[0],
                "geometry": geometries[n] if geometries is not None else None,
                "properties": props,
            }
            for n, (row, props) in enumerate(zip(rows, self._properties(rows, columns),
                                                 strict=True))
        ]

    def orjson_features(self, page: FeaturePage) -> list[dict]:
        """The page's GeoJSON features, their geometries as `orjson_geometries` makes them:
        for writers that serialise with orjson (catalog/ogc/items.py, feature_text.py)."""
        rows, columns = page.rows, page.columns
        if columns[-1] == self.schema.geom:
            geometries = orjson_geometries(self._decode([row[-1] for row in rows]))
        else:
            geometries = [None] * len(rows)
        return [{"type": "Feature", "id": row[0], "geometry": geometry, "properties": props}
                for row, geometry, props in zip(rows, geometries,
                                                self._properties(rows, columns), strict=True)]

    def _properties(self, rows: list[tuple], columns: list[str]) -> list[dict]:
        has_geometry = columns[-1] == self.schema.geom
        names = columns[1 : len(columns) - has_geometry]
        booleans = [i for i, name in enumerate(names) if self.schema.kinds[name] == "boolean"]
        end = len(columns) - has_geometry
        out = [dict(zip(names, row[1:end], strict=True)) for row in rows]
        if booleans:  # SQLite stores booleans as 0/1
            for props in out:
                for i in booleans:
                    if props[names[i]] is not None:
                        props[names[i]] = bool(props[names[i]])
        return out

    def _decode(self, blobs: list[bytes | None]) -> np.ndarray:
        """Shapely geometries of GeoPackage blobs; None where a blob is NULL or unreadable."""
        wkbs: list[bytes | None] = []
        for blob in blobs:
            try:
                wkbs.append(None if blob is None else gpkg_wkb(blob))
            except ValueError as err:
                LOGGER.warning("%s: unreadable geometry: %s", self.path, err)
                wkbs.append(None)
        try:
            return shapely.from_wkb(np.array(wkbs, dtype=object))
        except shapely.errors.GEOSException:  # rare: decode one by one to skip the bad ones
            return np.array([self._one_geometry(wkb) for wkb in wkbs], dtype=object)

    def _geometries(self, blobs: list[bytes | None]) -> list[dict | None]:
        """GeoJSON geometry dicts for a page, decoded and written by shapely's array functions."""
        return geojson_geometries(self._decode(blobs))

    def _one_geometry(self, wkb: bytes | None) -> BaseGeometry | None:
        try:
            return shapely.from_wkb(wkb) if wkb is not None else None
        except shapely.errors.GEOSException as err:
            LOGGER.warning("%s: unreadable geometry: %s", self.path, err)
            return None

    # SQL -----------------------------------------------------------------------------------------

    def _count(self, where: str, params: list) -> int:
        if not where:
            return self._meta.total
        sql = f"SELECT COUNT(*) FROM {quote_ident(self.table)}{self._count_hint(where)}{where}"  # noqa: S608 - identifiers from metadata
        key = (self.path, self._version, sql, tuple(params))
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
        covering = self._meta.covering_index
        spatial = quote_ident(self.schema.geom) in where or (
            self.schema.rtree is not None and quote_ident(self.schema.rtree) in where
        )
        if covering is not None and not spatial:
            return f" INDEXED BY {quote_ident(covering)}"
        return " NOT INDEXED"

    def _execute(self, sql: str, params: list) -> list[tuple]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            if any(limit in str(err) for limit in ("too large", "too many", "too deep")):
                # SQLite's expression-depth / variable-count limits: the request's fault.
                raise invalid(f"query too complex for this server ({err})") from err
            LOGGER.error("%s: query failed: %s\n%s %r", self.path, err, sql, params)
            raise ProviderQueryError(f"query failed: {err}") from err

    def __repr__(self) -> str:
        return f"<GeoPackageProvider> {self.path} ({self.table})"


_SELECT_ARGUMENTS = frozenset(inspect.signature(GeoPackageProvider.select).parameters) - {
    "self", "stored_text"}


def _page(offset: Any, limit: Any) -> tuple[int, int]:
    values = []
    for name, value in (("offset", offset), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise invalid(f"{name}: expected a non-negative integer, got {value!r}")
        values.append(value)
    return values[0], values[1]
