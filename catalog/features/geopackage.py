"""The FeatureStore of a published GeoPackage: catalog.gpkg.Layer behind the protocol.

Plain SQLite, no SpatiaLite: bbox through the R-tree, CQL2 translated to parameterised SQL
(catalog/core/cql2.py), counts cached per file version, pages of whole features copied from
the feature text stored at publish time (catalog/gpkg/feature_text.py). catalog/gpkg/layer.py
holds the query semantics; this module maps the protocol's types onto it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from catalog import settings
from catalog.core.assets import AssetLocator
from catalog.core.record import Record
from catalog.core.webmercator import TileBounds
from catalog.features import mvt
from catalog.features.store import (
    CRS84,
    FeaturePage,
    FeatureStoreError,
    ItemsQuery,
    JsonPage,
    LayerDescription,
    StoredFeature,
)
from catalog.gpkg import FeatureQuery, GeoPackageError, Layer, decode_many

GEOPACKAGE_ASSET = "geopackage"  # the STAC asset key of a vector record's GeoPackage
Answer = TypeVar("Answer")


class GeoPackageFeatureStore:
    """The features of one feature table of a published GeoPackage (stored in CRS84)."""

    def __init__(self, path: str | Path, *, table: str | None = None,
                 id_field: str | None = None, time_field: str | None = None,
                 temporal_extent: Sequence | None = None, column_cache: Path | None = None):
        try:
            self.layer = Layer(path, table=table, id_field=id_field, time_field=time_field,
                               temporal_extent=temporal_extent, geographic=True,
                               column_cache=column_cache)
        except GeoPackageError as err:
            raise FeatureStoreError(str(err)) from err
        self.layer.load_columns_in_background = settings.column_loads_in_background()
        self.path = Path(self.layer.path)

    @classmethod
    def for_record(cls, record: Record, assets: AssetLocator,
                   column_cache: Path | None = None) -> GeoPackageFeatureStore:
        """The store of a vector record's GeoPackage (its id field and temporal extent);
        column_cache: where large layers keep their column arrays (catalog/gpkg/columns.py)."""
        if record.vector is None:
            raise FeatureStoreError(f"{record.id} version {record.version} is not a vector layer")
        path = assets.local_path(record, record.asset(GEOPACKAGE_ASSET))
        if path is None:
            raise FeatureStoreError(f"{record.id} version {record.version}: the GeoPackage is "
                                    "not on this server's disk")
        extent = record.manifest.temporal_extent.as_json()
        return cls(path, table=record.vector.table, id_field=record.manifest.id_field,
                   temporal_extent=[extent["start"], extent["end"]], column_cache=column_cache)

    # -- the protocol ------------------------------------------------------------------------

    def describe(self) -> LayerDescription:
        layer = self.layer
        return LayerDescription(fields=layer.fields, id_field=layer.id_field,
                                time_field=layer.time_field, storage_crs=CRS84, geographic=True,
                                total=layer.meta.total)

    def queryables(self) -> dict[str, dict]:
        return self.layer.fields  # every exposed column can be filtered and sorted on

    def count(self, query: ItemsQuery) -> int:
        return self._run(lambda: self.layer.select(_feature_query(query, hits=True)).matched)

    def page(self, query: ItemsQuery) -> FeaturePage:
        def select() -> FeaturePage:
            page = self.layer.select(_feature_query(query))
            return FeaturePage(page.matched, self.layer.features(page))
        return self._run(select)

    def page_json(self, query: ItemsQuery) -> JsonPage:
        def select() -> JsonPage:
            page = self.layer.select(_feature_query(query, stored_text=True))
            if page.text:
                return JsonPage(page.matched, [orjson.Fragment(row[0]) for row in page.rows],
                                "stored feature text")
            return JsonPage(page.matched, self.layer.orjson_features(page), "GeoPackage rows")
        return self._run(select)

    def get(self, feature_id: str) -> dict | None:
        return self._run(lambda: self.layer.get(feature_id))

    def tile(self, tile: TileBounds, layer_name: str) -> bytes:
        encoded, _ = self._run(lambda: mvt.render_mvt(self.path, self.layer.table, layer_name,
                                                      tile))
        return encoded

    def iterate(self, batch: int = 10_000) -> Iterator[list[StoredFeature]]:
        kinds = self.layer.schema.kinds
        pages = self.layer.scan(batch)
        while (scanned := self._run(lambda: next(pages, None))) is not None:
            page = scanned[1]  # (primary keys, page of whole features)
            names = page.columns[1:-1]  # the id first, the geometry last
            geometries = decode_many([row[-1] for row in page.rows], strict=False,
                                     source=str(self.path))
            yield [StoredFeature(row[0], _properties(names, row[1:-1], kinds), geometry)
                   for row, geometry in zip(page.rows, geometries, strict=True)]

    def _run(self, work: Callable[[], Answer]) -> Answer:
        """A layer call; an SQLite failure (logged by the layer) is the store's error, not
        the request's (query problems are ParameterErrors and pass through)."""
        try:
            return work()
        except sqlite3.Error as err:
            raise FeatureStoreError(f"{self.path.name}: query failed: {err}") from err

    def __repr__(self) -> str:
        return f"<GeoPackageFeatureStore {self.path} ({self.layer.table})>"


def _feature_query(query: ItemsQuery, hits: bool = False,
                   stored_text: bool = False) -> FeatureQuery:
    return FeatureQuery(
        offset=query.offset, limit=query.limit, hits=hits, bbox=query.bbox or None,
        datetime=query.datetime, equals=list(query.equals), sortby=list(query.sortby),
        properties=list(query.properties), skip_geometry=query.skip_geometry, q=query.q,
        filter=query.filter, stored_text=stored_text)


def _properties(names: Sequence[str], values: Sequence[Any], kinds: dict) -> dict:
    """A row's properties; booleans, which SQLite stores as 0/1, as booleans."""
    return {name: bool(value) if kinds.get(name) == "boolean" and value is not None else value
            for name, value in zip(names, values, strict=True)}
