"""The GeoPackage library: published feature layers read and written with plain SQLite.

Public API (import these names from `catalog.gpkg`; the modules' other names are theirs):

- blob codec (catalog/gpkg/blob.py): `read_header`, `wkb_of`, `decode`, `decode_many`,
  `encode`, `encode_many`;
- connections (connection.py): `file_version`, `connection` (read-only, one per file and
  thread), `open_published`, `sqlite_uri`; `register_functions` (functions.py) adds the SQL
  functions the CQL2 translator names;
- tables (tables.py): `describe_table`, `Table`, `table_meta`, `TableMeta`, `TableSchema`
  (a catalog.core.cql2.FilterTarget), `spatial_sql`, `column_kind`, `JSON_TYPES`;
- layers (layer.py): `Layer`, `FeatureQuery`, `FeaturePage`: select, get, scan and write
  features of one table (query rules from catalog/core/layer_query.py); `write_feature_text`;
- GeoJSON writers (geojson.py): `geojson_geometries`, `orjson_geometries`;
- bulk I/O (bulk.py): `read_batches`, `BulkLoader`, `index_columns`, `attributes_index`;
- stored feature text (feature_text.py): `feature_text_path`, `FEATURE_TEXT_SUFFIX`;
- errors: `GeoPackageError` (a file that cannot be served), `QueryError` (a query that
  cannot be answered: HTTP 400, a catalog.core.parse.ParameterError).

It imports only catalog.core: services, conversion and publishing build on it.
"""

from catalog.gpkg.blob import Header, decode, decode_many, encode, encode_many, read_header
from catalog.gpkg.blob import wkb as wkb_of
from catalog.gpkg.bulk import BulkLoader, attributes_index, index_columns, read_batches
from catalog.gpkg.connection import connection, file_version, open_published, sqlite_uri
from catalog.gpkg.errors import GeoPackageError, QueryError
from catalog.gpkg.feature_text import SUFFIX as FEATURE_TEXT_SUFFIX
from catalog.gpkg.feature_text import path_for as feature_text_path
from catalog.gpkg.functions import register_functions
from catalog.gpkg.geojson import geojson_geometries, orjson_geometries
from catalog.gpkg.layer import FeaturePage, FeatureQuery, Layer, write_feature_text
from catalog.gpkg.tables import (
    JSON_TYPES,
    Table,
    TableMeta,
    TableSchema,
    column_kind,
    describe_table,
    is_rectangle,
    spatial_sql,
    table_meta,
)

__all__ = [
    "FEATURE_TEXT_SUFFIX", "JSON_TYPES", "BulkLoader", "FeaturePage", "FeatureQuery",
    "GeoPackageError", "Header", "Layer", "QueryError", "Table", "TableMeta", "TableSchema",
    "attributes_index", "column_kind", "connection", "decode", "decode_many",
    "describe_table", "encode", "encode_many", "feature_text_path", "file_version",
    "is_rectangle",
    "geojson_geometries", "index_columns", "open_published", "orjson_geometries",
    "read_batches", "read_header", "register_functions", "spatial_sql", "sqlite_uri",
    "table_meta", "wkb_of", "write_feature_text",
]
