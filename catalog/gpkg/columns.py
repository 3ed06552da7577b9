"""A GeoPackage layer's columns in memory (catalog/core/columns.py), read out of its SQLite
file once per file version: `columns_of` for the GeoPackage store (catalog/gpkg/layer.py).

Rows are read through the index of all attributes when there is one: the rows without their
geometries, several times less to read. Its order is fixed, so every column read through it
lines up with the keys read through it. Boxes come from the layer's R-tree.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from catalog.core.columns import (
    Column,
    Columns,
    Unsupported,
    column_from_values,
)
from catalog.core.columns import columns_of as cached_columns
from catalog.core.sql import quote_ident
from catalog.gpkg.blob import decode_many
from catalog.gpkg.connection import FileVersion, connection
from catalog.gpkg.tables import TableSchema

__all__ = ["Columns", "SqliteColumnReader", "Unsupported", "columns_of"]

BATCH = 50_000


class SqliteColumnReader:
    """The ColumnReader of one table of a GeoPackage file as of one version."""

    def __init__(self, path: str, version: FileVersion, schema: TableSchema,
                 source_index: str | None):
        self._path, self._version, self._schema = path, version, schema
        self.kinds = schema.kinds
        self._table, self._pk = quote_ident(schema.table), quote_ident(schema.pk)
        self._from = f"{quote_ident(schema.table)}" + (
            f" INDEXED BY {quote_ident(source_index)}" if source_index else " NOT INDEXED")

    @property
    def _conn(self) -> sqlite3.Connection:
        """The calling thread's connection (sqlite3 connections stay in their thread)."""
        return connection(self._path, self._version)

    def keys(self) -> np.ndarray:
        return self._read(self._schema.pk, np.int64)

    def column(self, name: str, kind: str) -> Column | None:
        return column_from_values(kind, self._read(name, object))

    def is_geometry(self, name: str) -> bool:
        return self._schema.is_geometry(name)

    def bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self._schema.rtree is None:
            return None
        rtree = quote_ident(self._schema.rtree)
        cursor = self._conn.execute(f"SELECT id, minx, miny, maxx, maxy FROM {rtree}")  # noqa: S608 - identifiers from metadata
        rows = np.array([row for rows in iter(lambda: cursor.fetchmany(BATCH), []) for row in rows],
                        dtype=np.float64).reshape(-1, 5)
        return rows[:, 0].astype(np.int64), rows[:, 1:].T

    def ranks_in_sql_order(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Dense ranks in SQLite's own ORDER BY (through its index)."""
        column = quote_ident(name)
        cursor = self._conn.execute(f"SELECT {self._pk}, {column} FROM {self._table} "  # noqa: S608 - identifiers from metadata
                                    f"ORDER BY {column}, {self._pk}")
        keys, ranks, rank, previous = [], [], 0, None
        for rows in iter(lambda: cursor.fetchmany(BATCH), []):
            for key, value in rows:
                if value is not None and (rank == 0 or value != previous):
                    rank, previous = rank + 1, value
                keys.append(key)
                ranks.append(0 if value is None else rank)
        return np.array(keys, dtype=np.int64), np.array(ranks, dtype=np.int32)

    def geometries(self, keys: list[int]) -> np.ndarray:
        geom = quote_ident(self._schema.geom)
        found: dict[int, bytes | None] = {}
        for start in range(0, len(keys), BATCH // 5):
            chunk = keys[start:start + BATCH // 5]
            found.update(self._conn.execute(
                f"SELECT {self._pk}, {geom} FROM {self._table} "  # noqa: S608 - identifiers from metadata
                f"WHERE {self._pk} IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
        return decode_many([found.get(key) for key in keys], strict=False)

    def _read(self, name: str, dtype: Any) -> np.ndarray:
        cursor = self._conn.execute(f"SELECT {quote_ident(name)} FROM {self._from}")  # noqa: S608 - identifiers from metadata
        values = [row[0] for rows in iter(lambda: cursor.fetchmany(BATCH), []) for row in rows]
        if dtype is object:
            array = np.empty(len(values), dtype=object)
            array[:] = values
            return array
        return np.array(values, dtype=dtype)


def columns_of(path: str, version: FileVersion, schema: TableSchema,
               source_index: str | None, cache: Path | None = None) -> Columns:
    """The Columns of the table of `schema` in the file `path` as of `version`, one per
    process (shared by its threads); with `cache`, their arrays are kept in files below it
    for every process."""
    # Layers of one file may expose different columns: each gets its own.
    identity = (path, version, schema.table, schema.geom, tuple(schema.kinds.items()))
    return cached_columns(identity, lambda: SqliteColumnReader(path, version, schema,
                                                               source_index), cache)
