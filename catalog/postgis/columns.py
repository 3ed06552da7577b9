"""A PostGIS layer table's columns in memory (catalog/core/columns.py), read once per table
and node: `columns_of` for the PostGIS store (catalog/features/postgis.py).

Why the PostGIS store needs them: numberMatched is exact, and PostgreSQL finds it by visiting
every match. A filter such as `area_m2 > 12345 AND mean_slope_deg < 7` over 10 million parcels
matches millions of rows and costs a parallel scan of about a second a request, for us as for
tipg (bench/results/features-versus-2026-12-05-10m-postgis-before.md); no index counts a range
without visiting it. The table of a published version never changes, so its columns are read
once (COPY, parsed by numpy: a few seconds per column for 10 million rows), kept in the node's
cache folder for every worker, and a count becomes a few vectorised comparisons.

Every array is read in primary-key order. Text is compared in the tables' "C" collation, which
orders UTF-8 by code point, as the categories' ranks do. Boxes are PostGIS's (`box2d`, float4
rounded outward when the geometry carries one): a feature lies inside its box, which is all the
spatial shortcuts need.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import shapely
from psycopg import sql

from catalog.core import columns as core_columns
from catalog.core.columns import (
    Column,
    Columns,
    number_column,
    text_column,
)
from catalog.core.columns import columns_of as cached_columns
from catalog.core.cql2 import NUMERIC_KINDS
from catalog.postgis.database import connection
from catalog.postgis.layers import LayerTable
from catalog.postgis.schema import LAYERS_TABLE, SCHEMA

EXACT_INTEGERS = 2**53  # integers a float64 holds exactly
COPY_CHUNK = 16 << 20  # bytes of COPY text parsed at a time


class PostgisColumnReader:
    """The ColumnReader of one version's PostGIS table."""

    def __init__(self, url: str, layer: LayerTable, kinds: dict[str, str]):
        self._url, self._layer = url, layer
        self.kinds = kinds
        self._table = layer.qualified
        self._pk = sql.Identifier(layer.pk)

    def keys(self) -> np.ndarray:
        return self._copy(sql.SQL("SELECT {pk} FROM {table} ORDER BY {pk}"), 1, _integers)[0]

    def column(self, name: str, kind: str) -> Column | None:
        column = sql.Identifier(name)
        if kind in NUMERIC_KINDS:
            if not self._numbers_fit(column, kind):
                return None
            values = self._copy(sql.SQL(
                "SELECT coalesce({column}::float8, 'NaN') FROM {table} ORDER BY {pk}"),
                1, _floats, column=column)[0]
            return number_column(kind, values)
        if kind != "string":
            return None
        with connection(self._url) as conn:
            distinct = conn.execute(sql.SQL("SELECT count(DISTINCT {}) FROM {}").format(
                column, self._table)).fetchone()[0]
            if distinct > core_columns.MAX_CATEGORIES:
                return Column(kind, None)  # filters go to SQL; a sort reads the SQL order
            found = [row[0] for row in conn.execute(sql.SQL(
                "SELECT DISTINCT {} FROM {} WHERE {} IS NOT NULL").format(
                column, self._table, column))]
        categories = sorted(found)  # code-point order (the "C" collation's)
        ranks = self._copy(sql.SQL(
            "SELECT coalesce(c.rank, 0) FROM {table} AS t LEFT JOIN unnest({names}::text[]) "
            "WITH ORDINALITY AS c(name, rank) ON c.name = t.{column} ORDER BY t.{pk}"),
            1, _integers, column=column, names=sql.Literal(categories))[0]
        return text_column(kind, ranks, categories)

    def is_geometry(self, name: str) -> bool:
        return name in ("geometry", self._layer.geometry)

    def bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        keys, boxes = self._copy(sql.SQL(
            "SELECT {pk}, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM "
            "(SELECT {pk}, Box2D({geom}) AS b FROM {table} WHERE {geom} IS NOT NULL "
            "AND NOT ST_IsEmpty({geom})) AS boxes"), 5,
            _integers, lambda fields: fields[:, 1:].astype(np.float64),
            geom=sql.Identifier(self._layer.geometry))
        return keys, boxes.T

    def ranks_in_sql_order(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        column = sql.Identifier(name)
        keys, ranks = self._copy(sql.SQL(
            "SELECT {pk}, CASE WHEN {column} IS NULL THEN 0 ELSE dense_rank() OVER "
            "(ORDER BY {column}) END FROM {table}"), 2,
            _integers, lambda fields: fields[:, 1].astype(np.int32), column=column)
        return keys, ranks

    def geometries(self, keys: list[int]) -> np.ndarray:
        statement = sql.SQL("SELECT {pk}, ST_AsBinary({geom}) FROM {table} "
                            "WHERE {pk} = ANY(%s)").format(
            pk=self._pk, geom=sql.Identifier(self._layer.geometry), table=self._table)
        with connection(self._url) as conn:
            found = dict(conn.execute(statement, [keys]).fetchall())
        return shapely.from_wkb([found.get(key) for key in keys])

    def _numbers_fit(self, column: sql.Identifier, kind: str) -> bool:
        """Whether every value is a float64 exactly (no NaN, which the arrays take for NULL;
        integers within 2**53)."""
        with connection(self._url) as conn:
            if kind == "integer":
                low, high = conn.execute(sql.SQL("SELECT min({}), max({}) FROM {}").format(
                    column, column, self._table)).fetchone()
                return low is None or max(-low, high) < EXACT_INTEGERS
            return not conn.execute(sql.SQL(
                "SELECT EXISTS (SELECT FROM {} WHERE {} = 'NaN'::float8)").format(
                self._table, column)).fetchone()[0]

    def _copy(self, query: sql.SQL, columns: int, *converts: Callable[[np.ndarray], np.ndarray],
              **names: sql.Composable) -> list[np.ndarray]:
        """A query's rows of numbers by text COPY, parsed a chunk at a time (10 million rows
        of text would take gigabytes as Python objects): one array per `converts`, each
        applied to the chunks' fields (bytes, a row of `columns` per line)."""
        statement = sql.SQL("COPY ({}) TO STDOUT").format(
            query.format(pk=self._pk, table=self._table, **names))
        parts: list[list[np.ndarray]] = [[] for _ in converts]

        def parse(text: bytes) -> None:
            fields = np.array(text.split(), dtype=bytes).reshape(-1, columns)
            for part, convert in zip(parts, converts, strict=True):
                part.append(convert(fields))

        with connection(self._url) as conn, conn.cursor() as cursor, \
                cursor.copy(statement) as copy:
            pending: list[bytes] = []
            size = 0
            while block := copy.read():
                pending.append(bytes(block))
                size += len(block)
                if size >= COPY_CHUNK:
                    text = b"".join(pending)
                    cut = text.rfind(b"\n") + 1
                    parse(text[:cut])
                    pending, size = [text[cut:]], len(text) - cut
            parse(b"".join(pending))
        return [np.concatenate(part) for part in parts]


def _integers(fields: np.ndarray) -> np.ndarray:
    return fields[:, 0].astype(np.int64)


def _floats(fields: np.ndarray) -> np.ndarray:
    """float8 text ('NaN', 'Infinity' included) as float64."""
    return fields[:, 0].astype(np.float64)


def columns_of(url: str, identity: tuple, layer: LayerTable, kinds: dict[str, str],
               cache: Path | None = None) -> Columns:
    """The Columns of a version's table, one per process (`identity`: `table_identity`)."""
    return cached_columns(("postgis", url, identity, layer.table, tuple(kinds.items())),
                          lambda: PostgisColumnReader(url, layer, kinds), cache)


def table_identity(conn: psycopg.Connection, layer: LayerTable) -> tuple:
    """What tells this table from any other of the same name: its oid, the transaction that
    created it and when it was loaded (a version dropped and loaded again, or a database
    restored or migrated anew at the same URL, has another identity)."""
    oid, created, loaded = conn.execute(sql.SQL(
        "SELECT c.oid::bigint, c.xmin::text, l.loaded_at::text FROM pg_class AS c, {} AS l "
        "WHERE c.oid = %s::regclass AND l.table_name = %s").format(
        sql.Identifier(SCHEMA, LAYERS_TABLE)),
        [layer.qualified.as_string(conn), layer.table]).fetchone()
    return (oid, created, loaded)
