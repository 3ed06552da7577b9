"""pygeoapi feature provider over a published GeoPackage: a thin adapter of catalog.gpkg.Layer.

pygeoapi's SQLiteGPKG provider needs mod_spatialite (our Python builds cannot load extensions),
reconnects on every request and ignores CQL2, sortby and properties. This provider hands each
request to `catalog.gpkg.Layer` (plain SQLite: R-tree prefilter, exact tests in shapely, CQL2
translated to parameterised SQL by catalog.core.cql2; see catalog/gpkg/layer.py for the query
semantics) and turns its answers and errors into pygeoapi's: a value the layer cannot apply
is `ProviderInvalidQueryError` (HTTP 400, its message in the body), never ignored.

Configuration (a pygeoapi provider block)::

    - type: feature
      name: catalog.ogc.providers.geopackage.GeoPackageProvider
      data: /abs/path/layer.gpkg
      id_field: code                  # optional; default: the integer primary key (fid)
      table: layer                    # optional; default: the only 'features' table
      temporal_extent: [2019-01-01, null]   # optional; the dataset's time span
      time_field: observed            # optional; a DATE/DATETIME (or ISO text) property
      properties: [name, pop]         # optional; expose (and allow querying) only these
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Sequence
from typing import Any

from pygeoapi.crs import crs_transform
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)

from catalog.core.parse import ParameterError
from catalog.gpkg import FeaturePage, FeatureQuery, GeoPackageError, Layer


def invalid(message: str) -> ProviderInvalidQueryError:
    """A 400 error whose text reaches the HTTP body (pygeoapi shows `user_msg`, not `msg`)."""
    return ProviderInvalidQueryError(user_msg=message)


class GeoPackageProvider(BaseProvider):
    """Read-only feature provider over a GeoPackage (fiona/GDAL-written, with R-tree index)."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        try:
            self.layer = Layer(
                self.data, table=provider_def.get("table"), id_field=self.id_field,
                properties=self.properties, time_field=self.time_field,
                temporal_extent=provider_def.get("temporal_extent"),
                geographic=self.storage_crs.is_geographic,
            )
        except GeoPackageError as err:
            raise ProviderConnectionError(str(err)) from err
        self.path = self.layer.path
        self.table = self.layer.table
        self.id_field = self.layer.id_field
        self.columns = self.layer.columns
        self.has_feature_text = self.layer.has_feature_text
        # pygeoapi reads `fields` (i.e. `_fields`) without calling get_fields().
        self._fields = self.get_fields()

    def get_fields(self) -> dict:
        """Property name -> JSON schema type (a copy: pygeoapi mutates what it gets)."""
        return self.layer.fields

    @crs_transform
    def query(self, crs_transform_spec: Any = None, language: Any = None, **kwargs: Any) -> dict:
        """A GeoJSON FeatureCollection page with exact numberMatched.

        pygeoapi's arguments are `select`'s (offset, limit, resulttype, bbox, datetime_,
        properties, sortby, select_properties, skip_geometry, q, filterq); others are ignored.
        """
        page = self.select(**{k: v for k, v in kwargs.items() if k in _SELECT_ARGUMENTS})
        features = self._answer(lambda: self.layer.features(page))
        return {"type": "FeatureCollection", "features": features,
                "numberMatched": page.matched, "numberReturned": len(features)}

    def select(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: Sequence[float] = (),
        datetime_: str | None = None,
        properties: Sequence[tuple[str, str]] = (),
        sortby: Sequence[dict] = (),
        select_properties: Sequence[str] = (),
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        stored_text: bool = False,
    ) -> FeaturePage:
        """The layer's page for pygeoapi's query arguments (see catalog.gpkg.FeatureQuery)."""
        if resulttype not in ("results", "hits"):
            raise invalid(f"resulttype: expected 'results' or 'hits', got '{resulttype}'")
        if datetime_ is not None and not isinstance(datetime_, str):
            raise invalid(f"datetime: expected text, got {datetime_!r}")
        query = FeatureQuery(
            offset=offset, limit=limit, hits=resulttype == "hits", bbox=bbox or None,
            datetime=datetime_, equals=list(properties or ()), sortby=_sort_keys(sortby),
            properties=list(select_properties or ()), skip_geometry=skip_geometry, q=q,
            filter=filterq, stored_text=stored_text,
        )
        return self._answer(lambda: self.layer.select(query))

    def orjson_features(self, page: FeaturePage) -> list[dict]:
        """The page's GeoJSON features for orjson (catalog/ogc/items.py)."""
        return self.layer.orjson_features(page)

    @crs_transform
    def get(self, identifier: Any, crs_transform_spec: Any = None, **kwargs: Any) -> dict:
        """The feature whose id_field equals `identifier` (a URL path segment)."""
        feature = self._answer(lambda: self.layer.get(identifier))
        if feature is None:
            raise ProviderItemNotFoundError(user_msg=f"item {identifier} not found")
        return feature

    def _answer(self, work):
        """Run a layer call, with the layer's errors as pygeoapi's."""
        try:
            return work()
        except ParameterError as err:  # QueryError, Cql2Error, BBoxError, DatetimeError
            raise invalid(str(err)) from None
        except sqlite3.Error as err:
            raise ProviderQueryError(f"query failed: {err}") from err

    def __repr__(self) -> str:
        return f"<GeoPackageProvider> {self.path} ({self.table})"


_SELECT_ARGUMENTS = frozenset(inspect.signature(GeoPackageProvider.select).parameters) - {
    "self", "stored_text"}


def _sort_keys(sortby: Sequence[dict] | None) -> list[tuple[str, bool]]:
    """pygeoapi's [{'property': name, 'order': '+'|'-'}] as (name, descending) pairs."""
    keys = []
    for item in sortby or ():
        if not isinstance(item, dict) or "property" not in item:
            raise invalid(f"sortby: expected {{'property', 'order'}}, got {item!r}")
        name, order = item["property"], item.get("order", "+")
        if order not in ("+", "-"):
            raise invalid(f"sortby: order of '{name}' must be '+' or '-', got {order!r}")
        keys.append((name, order == "-"))
    return keys
