"""Features: the FeatureStore interface, its GeoPackage implementation, and our OGC API -
Features routes over it.

The store layer (what other services import):

- `FeatureStore` (store.py): describe, queryables, count, page, page_json, get, tile,
  iterate; `ItemsQuery`, `LayerDescription`, `FeaturePage`, `JsonPage`, `StoredFeature`,
  `FeatureStoreError`;
- `GeoPackageFeatureStore` (geopackage.py): a published GeoPackage through catalog.gpkg;
  its map tiles (mvt.py) go to zoom `MVT_MAX_ZOOM`, beyond which clients overzoom;
- `LiveFeatures`, `LiveRelease` (release.py): the live release's records and stores, per
  worker, swapped when a new release goes live.

The web layer: `catalog.features.api.create_features_blueprint` (the /ogc Features routes),
`catalog.features.openapi` (their part of the /ogc OpenAPI document). Other services import
the store layer only.
"""

from catalog.features.geopackage import GeoPackageFeatureStore
from catalog.features.mvt import MAX_ZOOM as MVT_MAX_ZOOM
from catalog.features.release import LiveFeatures, LiveRelease
from catalog.features.store import (
    CRS84,
    FeaturePage,
    FeatureStore,
    FeatureStoreError,
    ItemsQuery,
    JsonPage,
    LayerDescription,
    StoredFeature,
)

__all__ = [
    "CRS84", "MVT_MAX_ZOOM", "FeaturePage", "FeatureStore", "FeatureStoreError",
    "GeoPackageFeatureStore", "ItemsQuery", "JsonPage", "LayerDescription", "LiveFeatures",
    "LiveRelease", "StoredFeature",
]
