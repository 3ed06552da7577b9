"""The table of one published vector version: loaded from its GeoPackage, looked up, dropped.

A version's table never changes after loading: `load_layer` creates it, copies every feature
(COPY, values as the GeoPackage holds them), indexes it and records it in `layers`, all in
the caller's transaction, so a failed load leaves nothing behind. Column types keep SQLite's
answers: text in the "C" collation (SQLite compares text bytewise), booleans as 0/1 smallints,
dates and date-times as the ISO text the GeoPackage stores.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import shapely
from psycopg import sql

from catalog.gpkg import Layer, decode_many
from catalog.postgis.database import connect
from catalog.postgis.schema import LAYERS_TABLE, SCHEMA, ensure_schema

SRID = 4326  # published GeoPackages are stored in CRS84 (longitude, latitude)
COPY_BATCH = 10_000
MAX_INDEXED_COLUMNS = 32  # attribute indexes serve sortby and equality; beyond this, scans
COLUMN_TYPES = {
    "string": 'text COLLATE "C"', "integer": "bigint", "number": "double precision",
    "boolean": "smallint", "date": 'text COLLATE "C"', "date-time": 'text COLLATE "C"',
}


@dataclass(frozen=True)
class LayerTable:
    """Where a version's features are and what the table holds."""

    dataset_id: str
    version: int
    table: str  # in SCHEMA
    pk: str  # the GeoPackage's integer primary key
    geometry: str  # the geometry column
    columns: tuple[tuple[str, str], ...]  # (attribute, kind) in the GeoPackage's order
    total: int

    @property
    def kinds(self) -> dict[str, str]:
        return {self.pk: "integer", **dict(self.columns)}

    @property
    def qualified(self) -> sql.Composed:
        return sql.Identifier(SCHEMA, self.table)


def table_name(dataset_id: str, version: int) -> str:
    """A readable, collision-free name under PostgreSQL's 63-byte limit."""
    readable = re.sub(r"[^a-z0-9_]+", "_", dataset_id.lower())[:36]
    digest = hashlib.sha256(dataset_id.encode()).hexdigest()[:8]
    return f"{readable}_{digest}_v{version}"


def load_layer(conn: psycopg.Connection, dataset_id: str, version: int, gpkg: str | Path,
               table: str | None = None) -> LayerTable:
    """Copy one version's feature table into its PostGIS table, in the caller's transaction
    (the schema is made on first use). A version already loaded is returned as it is."""
    ensure_schema(conn)
    found = find_layer(conn, dataset_id, version)
    if found is not None:
        return found
    source = Layer(gpkg, table=table)
    schema = source.schema
    columns = tuple((name, schema.kinds[name]) for name in source.columns)
    layer = LayerTable(dataset_id, version, table_name(dataset_id, version), schema.pk,
                       schema.geom, columns, source.meta.total)
    _create_table(conn, layer)
    _copy_rows(conn, layer, source)
    _index(conn, layer)
    conn.execute(sql.SQL("ANALYZE {}").format(layer.qualified))
    conn.execute(
        sql.SQL("INSERT INTO {} (dataset_id, version, table_name, pk, geometry, columns, total)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)").format(_layers()),
        [dataset_id, version, layer.table, layer.pk, layer.geometry,
         json.dumps([list(c) for c in columns]), layer.total])
    return layer


def _set_all_visible(conn: psycopg.Connection, layer: LayerTable) -> None:
    """VACUUM the new table (outside any transaction: the connection is in autocommit), so its
    pages are marked all-visible at once rather than whenever autovacuum comes: counts over the
    attribute indexes (bitmap scans that need no column) then skip the table's pages. A
    version's table never changes after this, so the mark stays."""
    conn.execute(sql.SQL("VACUUM {}").format(layer.qualified))


def drop_layer(conn: psycopg.Connection, dataset_id: str, version: int) -> bool:
    """Drop a version's table and its entry; False when it had none."""
    found = find_layer(conn, dataset_id, version)
    if found is None:
        return False
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(found.qualified))
    conn.execute(sql.SQL("DELETE FROM {} WHERE dataset_id = %s AND version = %s")
                 .format(_layers()), [dataset_id, version])
    return True


def find_layer(conn: psycopg.Connection, dataset_id: str, version: int) -> LayerTable | None:
    """The loaded table of a version, or None (also before any version was loaded)."""
    if not _has_layers_table(conn):
        return None
    row = conn.execute(
        sql.SQL("SELECT table_name, pk, geometry, columns, total FROM {} "
                "WHERE dataset_id = %s AND version = %s").format(_layers()),
        [dataset_id, version]).fetchone()
    if row is None:
        return None
    name, pk, geometry, columns, total = row
    return LayerTable(dataset_id, version, name, pk, geometry,
                      tuple((c[0], c[1]) for c in columns), total)


def loaded_layers(conn: psycopg.Connection) -> set[tuple[str, int]]:
    """Every (dataset, version) with a table."""
    if not _has_layers_table(conn):
        return set()
    rows = conn.execute(sql.SQL("SELECT dataset_id, version FROM {}").format(_layers()))
    return {(row[0], row[1]) for row in rows}


def _layers() -> sql.Composed:
    return sql.Identifier(SCHEMA, LAYERS_TABLE)


def _has_layers_table(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.{LAYERS_TABLE}"]).fetchone()
    return row[0] is not None


def _create_table(conn: psycopg.Connection, layer: LayerTable) -> None:
    definitions = [sql.SQL("{} bigint PRIMARY KEY").format(sql.Identifier(layer.pk))]
    definitions += [sql.SQL("{} " + COLUMN_TYPES[kind]).format(sql.Identifier(name))
                    for name, kind in layer.columns]
    definitions.append(sql.SQL("{} geometry").format(sql.Identifier(layer.geometry)))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(layer.qualified,
                                                       sql.SQL(", ").join(definitions)))


def _copy_rows(conn: psycopg.Connection, layer: LayerTable, source: Layer) -> None:
    names = [layer.pk, *(name for name, _ in layer.columns), layer.geometry]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        layer.qualified, sql.SQL(", ").join(map(sql.Identifier, names)))
    with conn.cursor().copy(statement) as copy:
        for row in _rows(source):
            copy.write_row(row)


def _rows(source: Layer) -> Iterator[tuple]:
    """(pk, attributes..., hex EWKB or None) of every feature, in primary-key order."""
    for pks, page in source.scan(COPY_BATCH):
        geometries = decode_many([row[-1] for row in page.rows], strict=False,
                                 source=str(source.path))
        geometries = shapely.set_srid(geometries, SRID)
        written = shapely.to_wkb(geometries, hex=True, include_srid=True, flavor="extended")
        for pk, row, ewkb in zip(pks, page.rows, written, strict=True):
            # The page repeats the id (the pk here) first, then attributes, then the blob.
            yield (pk, *row[1:-1], ewkb)


def _index(conn: psycopg.Connection, layer: LayerTable) -> None:
    conn.execute(sql.SQL("CREATE INDEX ON {} USING gist ({})").format(
        layer.qualified, sql.Identifier(layer.geometry)))
    # NULLS FIRST: the store sorts as SQLite does (ASC NULLS FIRST, DESC NULLS LAST), which
    # this index gives read forward and backward; a default index (NULLS LAST) serves neither,
    # so every sorted page sorted all its matches (10 million parcels: 2.6 requests a second).
    for name, _ in layer.columns[:MAX_INDEXED_COLUMNS]:
        conn.execute(sql.SQL("CREATE INDEX ON {} ({} NULLS FIRST)").format(
            layer.qualified, sql.Identifier(name)))


def load_versions(url: str, versions: Iterable[tuple[str, int, Path, str | None]]
                  ) -> list[tuple[str, int]]:
    """Load every (dataset, version, GeoPackage, table) not loaded yet, each in a transaction
    of its own; return what was loaded. On failure, what this call loaded is dropped again
    and the error raised: the database is as it was."""
    created: list[tuple[str, int]] = []
    with connect(url) as conn:
        try:
            loaded = loaded_layers(conn)
            for dataset_id, version, gpkg, table in versions:
                if (dataset_id, version) in loaded:
                    continue
                with conn.transaction():
                    layer = load_layer(conn, dataset_id, version, gpkg, table)
                created.append((dataset_id, version))
                _set_all_visible(conn, layer)
        except BaseException:
            conn.rollback()
            _drop_all(conn, created)
            raise
    return created


def drop_versions(url: str, versions: Iterable[tuple[str, int]]) -> None:
    """Drop the tables of these versions (those that have one)."""
    versions = list(versions)
    if versions:
        with connect(url) as conn:
            _drop_all(conn, versions)


def _drop_all(conn: psycopg.Connection, versions: Iterable[tuple[str, int]]) -> None:
    for dataset_id, version in versions:
        with conn.transaction():
            drop_layer(conn, dataset_id, version)
