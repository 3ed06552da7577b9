"""Each feature's GeoJSON text, written once at publish time beside the GeoPackage.

A published version never changes, so the text of a whole feature (id, geometry, every
property) is the same on every request. Writing it at publish time, with the very writer that
writes features on request (`Layer.orjson_features` and orjson), lets a reader copy stored text
for pages of whole features instead of decoding geometries and building dicts per request.
Filtering, sorting and paging still run on the GeoPackage; only the writing of each selected
feature is saved. Pages with a property selection or without geometries are written from the
GeoPackage as before.

The file (<id>.features.sqlite) is not a download: it is an index of the GeoPackage, like its
R-tree. Its `about` table says which table, id field and columns it was written for; a reader
uses it only when that matches (`fits`), so a mismatch, another format version or a missing
file means features are written from the GeoPackage. Connections of the library attach it as
the schema `feature_text` (catalog/gpkg/connection.py).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import orjson

SUFFIX = ".features.sqlite"
FORMAT = "taza-feature-text/1"
SCHEMA = "feature_text"  # the name it is attached under
BATCH = 10_000


def path_for(gpkg_path: str) -> str:
    """Where the feature text of a GeoPackage lives."""
    base = gpkg_path[: -len(".gpkg")] if gpkg_path.endswith(".gpkg") else gpkg_path
    return base + SUFFIX


def about(conn: sqlite3.Connection) -> dict | None:
    """What the attached feature text was written for; None when absent or unreadable."""
    try:
        return dict(conn.execute(f"SELECT key, value FROM {SCHEMA}.about"))  # noqa: S608 - fixed name
    except sqlite3.Error:
        return None


def description(table: str, id_field: str, columns: list[str], rows: int) -> dict[str, str]:
    """The `about` rows of feature text written for this table, id field and columns."""
    return {"format": FORMAT, "table": table, "id_field": id_field,
            "columns": json.dumps(columns), "rows": str(rows)}


def write(layer: Any) -> Path:
    """Write the feature text of a `catalog.gpkg.layer.Layer`; returns its path."""
    target = Path(path_for(str(layer.path)))
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(partial)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("CREATE TABLE features (pk INTEGER PRIMARY KEY, feature BLOB NOT NULL)")
        conn.execute("CREATE TABLE about (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        rows = 0
        for pks, page in layer.scan(BATCH):
            # One text at a time, handed to SQLite (which copies it) and dropped: orjson keeps
            # the whole of its growing buffer behind each result (a 6 kB text can hold 64 kB),
            # so a batch of texts in a list held 325 MB at 75,000 parcels with long notes.
            texts = (orjson.dumps(feature, option=orjson.OPT_SERIALIZE_NUMPY)
                     for feature in layer.orjson_features(page))
            conn.executemany("INSERT INTO features VALUES (?, ?)", zip(pks, texts, strict=True))
            rows += len(pks)
        conn.executemany("INSERT INTO about VALUES (?, ?)",
                         description(layer.table, layer.id_field, layer.columns, rows).items())
        conn.commit()
    finally:
        conn.close()
    partial.replace(target)
    return target
