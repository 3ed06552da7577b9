"""What the GeoPackage library raises."""

from __future__ import annotations

from catalog.core.layer_query import LayerQueryError


class GeoPackageError(ValueError):
    """The file cannot be served as a feature layer: missing, not a GeoPackage, no such
    table, no geometry column or no integer primary key."""


# A query a layer cannot answer as asked (HTTP 400): the query rules' own error.
QueryError = LayerQueryError
