"""What the GeoPackage library raises."""

from __future__ import annotations

from catalog.core.parse import ParameterError


class GeoPackageError(ValueError):
    """The file cannot be served as a feature layer: missing, not a GeoPackage, no such
    table, no geometry column or no integer primary key."""


class QueryError(ParameterError):
    """A query a layer cannot answer as asked (HTTP 400); the message names the parameter."""

    def __init__(self, message: str, param: str = ""):
        # Messages start with the parameter's name ("sortby: ..."): it is the default param.
        super().__init__(param or message.split(":", 1)[0], message)
