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

__all__ = ["SCHEMA", "DatabaseError", "LayerTable", "connection", "drop_layer", "drop_versions",
           "ensure_schema", "find_layer", "load_layer", "load_versions", "loaded_layers", "pool"]
