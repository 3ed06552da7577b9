"""Published feature layers in PostgreSQL/PostGIS (TAZA_DATABASE_URL).

Each published vector version is copied from its GeoPackage (which stays the download and the
source of truth) into one immutable table in the schema `taza_features`; the table `layers`
there says which table holds which (dataset, version) and what its columns are.

- `connection(url)`, `pool(url)` (database.py): a connection of this process's pool of a
  database (psycopg_pool), sized by TAZA_DATABASE_POOL_SIZE, safe behind pgbouncer in
  transaction mode, made anew after the database was unreachable;
- `ensure_schema` (schema.py): the schema, its `layers` table and the SQL functions the CQL2
  translator's PostgreSQL dialect names (catalog.core.cql2.POSTGRESQL);
- `load_layer`, `drop_layer`, `find_layer`, `LayerTable` (layers.py): write, remove and look
  up the table of one version; `load_versions`, `drop_versions`: what publishing calls, each
  with a connection of its own.

It imports catalog.gpkg (to read the GeoPackage), catalog.settings and catalog.core only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Public name -> the module that defines it. Imported on first use (PEP 562), so a module
# that needs only `catalog.postgis.database` (the catalog store's locks, every `taza`
# command) does not load the layers' readers, numpy and shapely with it: `taza users`
# started in 0.5 s, most of it in those imports.
_EXPORTS = {
    "DatabaseError": "database", "connection": "database", "pool": "database",
    "LayerTable": "layers", "drop_layer": "layers", "drop_versions": "layers",
    "find_layer": "layers", "load_layer": "layers", "load_versions": "layers",
    "loaded_layers": "layers",
    "SCHEMA": "schema", "ensure_schema": "schema",
}

__all__ = ["SCHEMA", "DatabaseError", "LayerTable", "connection", "drop_layer", "drop_versions",
           "ensure_schema", "find_layer", "load_layer", "load_versions", "loaded_layers", "pool"]

if TYPE_CHECKING:
    from catalog.postgis.database import DatabaseError, connection, pool
    from catalog.postgis.layers import (
        LayerTable,
        drop_layer,
        drop_versions,
        find_layer,
        load_layer,
        load_versions,
        loaded_layers,
    )
    from catalog.postgis.schema import SCHEMA, ensure_schema


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
