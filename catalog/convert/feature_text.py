"""Each feature's GeoJSON text, written once at publish time beside the GeoPackage.

A published version never changes, so the text of a whole feature (id, geometry, every
property) is the same on every request. Writing it here, with the very code that writes
features on request (GeoPackageProvider.orjson_features and orjson), lets the items endpoint copy
stored text for whole-feature pages (catalog/ogc/items.py) instead of decoding geometries and
building dicts per request. Filtering, sorting and paging still run on the GeoPackage; only the
writing of each selected feature is saved. Pages with `properties` or `skipGeometry` are written
from the GeoPackage as before.

The file (<id>.features.sqlite) is not a download: it is an index of the GeoPackage, like its
R-tree, and records what it was written for so the provider can tell whether it fits.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import orjson

from catalog.ogc.providers.geopackage import (
    FEATURE_TEXT_FORMAT,
    GeoPackageProvider,
    feature_text_path,
)

BATCH = 10_000


def write_feature_text(gpkg: Path, table: str, id_field: str | None) -> Path:
    """Write <id>.features.sqlite for the GeoPackage's table; returns its path."""
    provider = GeoPackageProvider({"name": "GeoPackage", "type": "feature", "data": str(gpkg),
                                   "table": table, "id_field": id_field})
    target = Path(feature_text_path(str(gpkg)))
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(partial)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("CREATE TABLE features (pk INTEGER PRIMARY KEY, feature BLOB NOT NULL)")
        conn.execute("CREATE TABLE about (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        rows = 0
        for pks, page in provider.scan(BATCH):
            texts = [orjson.dumps(feature, option=orjson.OPT_SERIALIZE_NUMPY)
                     for feature in provider.orjson_features(page)]
            conn.executemany("INSERT INTO features VALUES (?, ?)", zip(pks, texts, strict=True))
            rows += len(pks)
        about = {"format": FEATURE_TEXT_FORMAT, "table": provider.table,
                 "id_field": provider.id_field, "columns": json.dumps(provider.columns),
                 "rows": str(rows)}
        conn.executemany("INSERT INTO about VALUES (?, ?)", about.items())
        conn.commit()
    finally:
        conn.close()
    partial.replace(target)
    return target
