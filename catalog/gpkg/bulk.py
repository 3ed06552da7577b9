"""Bulk reading and writing of GeoPackage feature tables with SQLite and vectorised shapely.

fiona moves one feature at a time through Python dicts: about 40 µs a polygon to write and
60 µs to read and test, minutes for a million parcels. A GeoPackage is an SQLite file whose
geometry column holds a small header plus WKB (catalog/gpkg/blob.py), so whole batches can be
decoded, checked, encoded and inserted with shapely 2 array functions and `executemany`.

Writing: fiona (GDAL) creates the empty layer (schema, CRS, gpkg_* metadata, the R-tree and
its triggers) so the file is exactly what GDAL would write; we then insert the rows, fill the
R-tree from the envelopes we already have, and set the extent and feature count GDAL would set.
The R-tree triggers call SpatiaLite/GDAL SQL functions (ST_MinX, ...), which plain SQLite lacks,
so they are dropped during the load and recreated unchanged afterwards.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import shapely

from catalog.core.sql import quote_ident
from catalog.gpkg import blob
from catalog.gpkg.connection import sqlite_uri
from catalog.gpkg.tables import describe_table

BATCH = 50_000  # rows per batch: bounded memory, few Python round trips
# ... and about this many bytes at most: 50,000 rows of long texts (2 KB each) made a 1 GB
# upload grow a worker by 650 MB (bench/upload.py); 32 MiB batches kept it near 100 MB.
BATCH_BYTES = 32 << 20


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a GeoPackage that is not published yet (not immutable)."""
    return sqlite3.connect(sqlite_uri(Path(path).resolve(), immutable=False), uri=True)


def read_batches(
    path: Path, table: str, columns: Sequence[str], batch: int = BATCH, with_pk: bool = False
) -> Iterator[tuple[np.ndarray, list[tuple]]]:
    """(geometries, attribute rows) in primary-key order, `batch` rows at a time.

    With `with_pk`, each row starts with the primary key. An unreadable geometry raises
    (ValueError or shapely's GEOSException), as does a table that is not a feature table.
    """
    conn = connect_readonly(path)
    try:
        meta = describe_table(conn, table)
        batch = _rows_within_bytes(conn, path, table, batch)
        columns = [meta.pk, *columns] if with_pk else columns
        names = ", ".join(quote_ident(c) for c in (meta.geometry, *columns))
        cursor = conn.execute(
            f"SELECT {names} FROM {quote_ident(table)} ORDER BY {quote_ident(meta.pk)}"  # noqa: S608 - identifiers from metadata
        )
        while rows := cursor.fetchmany(batch):
            yield blob.decode_many([r[0] for r in rows]), [r[1:] for r in rows]
    finally:
        conn.close()


def _rows_within_bytes(conn: sqlite3.Connection, path: Path, table: str, batch: int) -> int:
    """Fewer rows per batch when rows are big: file size / feature count estimates a row
    (generously: indexes count too). Unchanged when GDAL's feature count is not there."""
    try:
        row = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = ?",
                           (table,)).fetchone()
    except sqlite3.Error:
        return batch
    if not row or not row[0] or row[0] <= 0:
        return batch
    per_row = Path(path).stat().st_size / row[0]
    return max(1000, min(batch, int(BATCH_BYTES / per_row)))


class BulkLoader:
    """Append rows to an empty GDAL-created GeoPackage layer, then finish its index and metadata.

    Use as a context manager; `append` takes geometries (shapely array) and attribute rows in the
    table's column order. Nothing is committed unless the block completes.
    """

    def __init__(self, path: Path, table: str):
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.table = describe_table(self.conn, table)
        self.rtree = self.table.rtree
        self.count = 0
        self.bounds = [np.inf, np.inf, -np.inf, -np.inf]
        self._triggers: list[str] = []
        self._rtree_exists: bool | None = None

    def __enter__(self) -> BulkLoader:
        conn = self.conn
        # A staging file: a journal in memory is enough; the store fsyncs the finished version.
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        self._triggers = [
            sql
            for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                (self.table.name,),
            )
        ]
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
            (self.table.name,),
        ).fetchall():
            conn.execute(f"DROP TRIGGER {quote_ident(name)}")
        return self

    def append(self, geometries: np.ndarray, rows: Sequence[Sequence]) -> None:
        t = self.table
        first = self.count + 1
        fids = range(first, first + len(rows))
        blobs = blob.encode_many(geometries, t.srs_id)
        names = ", ".join(quote_ident(c) for c in (t.pk, t.geometry, *t.columns))
        marks = ", ".join("?" * (len(t.columns) + 2))
        self.conn.executemany(
            f"INSERT INTO {quote_ident(t.name)} ({names}) VALUES ({marks})",  # noqa: S608 - identifiers from metadata
            ((fid, data, *row) for fid, data, row in zip(fids, blobs, rows, strict=True)),
        )
        bounds = shapely.bounds(geometries)
        keep = ~(np.isnan(bounds).any(axis=1))  # NULL and empty geometries stay out of the index
        if self._has_rtree():
            boxes = np.column_stack([np.asarray(fids)[keep], bounds[keep][:, [0, 2, 1, 3]]])
            self.conn.executemany(
                f"INSERT INTO {quote_ident(self.rtree)} VALUES (?, ?, ?, ?, ?)",  # noqa: S608 - identifiers from metadata
                ((int(b[0]), *b[1:].tolist()) for b in boxes),
            )
        if keep.any():
            lo, hi = bounds[keep].min(axis=0), bounds[keep].max(axis=0)
            self.bounds = [min(self.bounds[0], lo[0]), min(self.bounds[1], lo[1]),
                           max(self.bounds[2], hi[2]), max(self.bounds[3], hi[3])]
        self.count += len(rows)

    def _has_rtree(self) -> bool:
        if self._rtree_exists is None:
            self._rtree_exists = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ?", (self.rtree,)
            ).fetchone() is not None
        return self._rtree_exists

    def __exit__(self, kind, value, traceback) -> None:
        conn = self.conn
        try:
            if kind is not None:
                conn.execute("ROLLBACK")
                return
            for sql in self._triggers:
                conn.execute(sql)
            if self.count:
                minx, miny, maxx, maxy = self.bounds
                conn.execute(
                    "UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?, "
                    "last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE table_name = ?",
                    (minx, miny, maxx, maxy, self.table.name),
                )
            ogr_contents = "SELECT 1 FROM sqlite_master WHERE name = 'gpkg_ogr_contents'"
            if conn.execute(ogr_contents).fetchone():
                conn.execute(
                    "UPDATE gpkg_ogr_contents SET feature_count = ? WHERE table_name = ?",
                    (self.count, self.table.name),
                )
            conn.execute("COMMIT")
        finally:
            conn.close()


def attributes_index(table: str) -> str:
    """The name of the index holding every attribute column (`index_columns` writes it)."""
    return f"{table}_attributes_idx"


def index_columns(path: Path, table: str, columns: Sequence[str]) -> None:
    """An index on each attribute column, one on all of them, and planner statistics.

    The feature API sorts by any queryable: with an index, `sortby=-area_m2&limit=100` over a
    million rows reads 100 index entries instead of sorting the table (0.1 ms against 0.5 s).
    The index of all attributes is the table without its geometries: counting the matches of an
    attribute filter scans it instead of the table, about 4x less to read. Plain SQL indexes are
    allowed in a GeoPackage and ignored by readers that do not need them.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("BEGIN")
        for column in columns:
            name = quote_ident(f"{table}_{column}_idx")
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {quote_ident(table)} ({quote_ident(column)})"
            )
        if columns:
            names = ", ".join(quote_ident(c) for c in columns)
            conn.execute(f"CREATE INDEX IF NOT EXISTS {quote_ident(attributes_index(table))} "
                         f"ON {quote_ident(table)} ({names})")
        conn.execute(f"ANALYZE {quote_ident(table)}")
        conn.execute("COMMIT")
    finally:
        conn.close()
