"""The FeatureStore interface: what every service reads features through.

A FeatureStore serves the features of one published vector layer (one dataset version, which
never changes). It is in the spirit of tipg's collections: the OGC API Features routes
(catalog/features/api.py), map tiles (catalog/portal), the processes (catalog/processes) and
anything else that reads features use only these methods, so a second backend (PostGIS,
issue 13) implements this protocol and passes the same contract tests
(tests/test_feature_store_contract.py).

- `describe`: the layer's schema (properties and their JSON Schema types, id and time
  fields, storage CRS, row count).
- `queryables`: the properties a query may name, with their JSON Schema.
- `count`: numberMatched of a query, without reading features.
- `page`: one page of a query as GeoJSON Feature dicts (mutable plain values); `page_json`:
  the same page ready for orjson (stored feature text or numpy-backed coordinates), the fast
  path of plain GeoJSON answers.
- `get`: one feature by its id (as text, from a URL).
- `tile`: a Mapbox Vector Tile of a WebMercator tile.
- `iterate`: every feature in id order, in batches of (id, properties, shapely geometry).

Problems with a query raise `catalog.core.parse.ParameterError` (HTTP 400, the message names
the parameter); a layer that cannot be served raises `FeatureStoreError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from shapely.geometry.base import BaseGeometry

from catalog.core.parse import BBox, TimeSpan
from catalog.core.webmercator import TileBounds

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class FeatureStoreError(ValueError):
    """The layer cannot be served (missing file, no such table, unreadable)."""


@dataclass(frozen=True)
class ItemsQuery:
    """What to select. Values are checked by the store; what it cannot apply raises a
    ParameterError naming the parameter, never silently ignored."""

    offset: int = 0
    limit: int = 10
    bbox: BBox | Sequence[float] | None = None  # storage CRS; minx > maxx crosses the antimeridian
    datetime: TimeSpan | str | None = None  # text: an ISO 8601 instant or interval
    equals: Sequence[tuple[str, str]] = ()  # (property, value as text): property = value
    sortby: Sequence[tuple[str, bool]] = ()  # (property, descending)
    properties: Sequence[str] = ()  # only these properties in the answer (all when empty)
    skip_geometry: bool = False
    q: str | None = None  # free text: comma-separated terms, any of which matches
    filter: Any = None  # a CQL2 tree from catalog.core.cql2.parse_filter, in the storage CRS


@dataclass(frozen=True)
class LayerDescription:
    """The layer as a client sees it."""

    fields: dict[str, dict]  # property name -> JSON Schema ({"type": ..., "format": ...})
    id_field: str  # the property (or key) whose value is each feature's id
    time_field: str | None  # the property datetime queries test, if any
    storage_crs: str  # OGC CRS URI of the stored coordinates
    geographic: bool  # coordinates are longitude/latitude
    total: int  # number of features


@dataclass(frozen=True)
class FeaturePage:
    """A page of GeoJSON Feature dicts and numberMatched."""

    matched: int
    features: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class JsonPage:
    """A page whose features orjson writes as they are (OPT_SERIALIZE_NUMPY): stored feature
    text as orjson.Fragment, or dicts with numpy coordinate arrays. `source` says which."""

    matched: int
    features: list[Any]
    source: str


@dataclass(frozen=True)
class StoredFeature:
    """A feature as `iterate` yields it."""

    id: Any
    properties: dict
    geometry: BaseGeometry | None


@runtime_checkable
class FeatureStore(Protocol):
    """The features of one published vector layer."""

    def describe(self) -> LayerDescription: ...

    def queryables(self) -> dict[str, dict]: ...

    def count(self, query: ItemsQuery) -> int: ...

    def page(self, query: ItemsQuery) -> FeaturePage: ...

    def page_json(self, query: ItemsQuery) -> JsonPage: ...

    def get(self, feature_id: str) -> dict | None: ...

    def tile(self, tile: TileBounds, layer_name: str) -> bytes: ...

    def iterate(self, batch: int = 10_000) -> Iterator[list[StoredFeature]]: ...
