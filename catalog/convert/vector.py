"""Vector sources to a GeoPackage (EPSG:4326, R-tree spatial index) and a GeoJSON download."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import fiona
import numpy as np
import shapely
from fiona.crs import CRS
from fiona.transform import transform_geom
from shapely.geometry import shape

from catalog.convert import Asset, describe_file
from catalog.core.record import VectorFacts
from catalog.gpkg import BulkLoader, index_columns, read_batches, write_feature_text
from catalog.sources.vector import VectorInfo, open_vector

STORAGE_CRS = "EPSG:4326"
MULTI = {"Point": "MultiPoint", "LineString": "MultiLineString", "Polygon": "MultiPolygon"}
# fiona field types whose GeoPackage values read the same through SQLite as through fiona.
PLAIN_FIELD_TYPES = {"str", "int", "int32", "int64", "float", "date"}


def table_name(dataset_id: str) -> str:
    """GeoPackage table names: letters, digits and '_' keep every SQL tool happy."""
    return dataset_id.replace("-", "_")


def convert_vector(
    info: VectorInfo, dataset_id: str, out_dir: Path, id_field: str | None = None,
    feature_text: bool = True,
) -> tuple[list[Asset], VectorFacts]:
    """Write <id>.gpkg and <id>.geojson into out_dir, reprojected to EPSG:4326, and the stored
    feature text the API serves whole features from (not a download;
    catalog/gpkg/feature_text.py)."""
    table = table_name(dataset_id)
    gpkg = out_dir / f"{dataset_id}.gpkg"
    geometry_type = _storage_geometry_type(info.geometry_types)
    bbox = _write_geopackage(info, table, gpkg, geometry_type)
    index_columns(gpkg, table, list(info.fields))
    geojson = out_dir / f"{dataset_id}.geojson"
    if not _write_geojson_bulk(gpkg, table, geojson, info.fields):
        _write_geojson(gpkg, table, geojson)
    if feature_text:  # the isolated reader leaves it to its parent (catalog.sources.reader)
        write_stored_feature_text(gpkg, table, id_field)
    assets = [
        describe_file(gpkg, "geopackage", "GeoPackage (EPSG:4326, with spatial index)", ("data",)),
        describe_file(geojson, "geojson", "GeoJSON (RFC 7946)", ("data",)),
    ]
    return assets, VectorFacts(table, bbox, info.feature_count, geometry_type, info.fields)


def write_stored_feature_text(gpkg: Path, table: str, id_field: str | None) -> None:
    """Each feature's GeoJSON text beside the GeoPackage (catalog/gpkg/feature_text.py)."""
    write_feature_text(gpkg, table, id_field)


def _storage_geometry_type(types: tuple[str, ...]) -> str:
    """One declared type per layer: promote Polygon+MultiPolygon to MultiPolygon, etc."""
    kinds = set(types)
    if len(kinds) == 1:
        return types[0]
    promoted = {MULTI.get(t, t) for t in kinds}
    return promoted.pop() if len(promoted) == 1 else "Unknown"


def _write_geopackage(info: VectorInfo, table: str, gpkg: Path, geometry_type: str):
    reproject = CRS.from_user_input(info.crs) != CRS.from_user_input(STORAGE_CRS)
    schema = {"geometry": geometry_type, "properties": info.fields}
    if not reproject and info.path.suffix.lower() == ".gpkg":
        bounds = _copy_geopackage_rows(info, table, gpkg, schema)
        if bounds is not None:
            return bounds
        gpkg.unlink(missing_ok=True)  # start again through fiona
    bounds = [float("inf"), float("inf"), float("-inf"), float("-inf")]
    with (
        open_vector(info.path, info.layer) as source,
        fiona.open(
            gpkg,
            "w",
            driver="GPKG",
            layer=table,
            schema=schema,
            crs=STORAGE_CRS,
            SPATIAL_INDEX="YES",
        ) as sink,
    ):
        batch = []
        for feature in source:
            geometry = feature.geometry
            if reproject:
                geometry = transform_geom(info.crs, STORAGE_CRS, geometry)
            geometry = _promote(geometry, geometry_type)
            _grow(bounds, shape(geometry).bounds)
            batch.append({"geometry": geometry, "properties": dict(feature.properties)})
            if len(batch) == 10_000:  # bounded memory for large layers
                sink.writerecords(batch)
                batch = []
        sink.writerecords(batch)
    return tuple(round(v, 7) for v in bounds)


def _copy_geopackage_rows(info: VectorInfo, table: str, gpkg: Path, schema: dict):
    """GeoPackage source in EPSG:4326 to our GeoPackage, in bulk; None if it cannot.

    GDAL (fiona) creates the layer, so the file's structure is GDAL's; rows are copied with
    SQLite a batch at a time, their values unchanged, geometries promoted to the storage type
    with shapely array functions. Falls back (None) on anything this reader does not handle.
    """
    with fiona.open(gpkg, "w", driver="GPKG", layer=table, schema=schema, crs=STORAGE_CRS,
                    SPATIAL_INDEX="YES"):
        pass  # the empty layer: table, metadata, R-tree and its triggers
    names = list(info.fields)
    try:
        with BulkLoader(gpkg, table) as loader:
            if list(loader.table.columns) != names:  # GDAL renamed a column: use fiona
                raise ValueError("column names differ")
            for geometries, rows in read_batches(info.path, info.layer, names):
                loader.append(_promote_array(geometries, schema["geometry"]), rows)
    except (ValueError, sqlite3.Error, shapely.errors.GEOSException):
        return None
    return tuple(round(float(v), 7) for v in loader.bounds)


def _promote_array(geometries: np.ndarray, target: str) -> np.ndarray:
    """Single parts to one-part Multi* where the layer is declared Multi* (as `_promote`)."""
    single = {"MultiPoint": 0, "MultiLineString": 1, "MultiPolygon": 3}.get(target)
    if single is None:
        return geometries
    singles = shapely.get_type_id(geometries) == single
    if singles.any():
        make = {0: shapely.multipoints, 1: shapely.multilinestrings, 3: shapely.multipolygons}
        geometries = geometries.copy()
        geometries[singles] = make[single](geometries[singles][:, np.newaxis])
    return geometries


def _promote(geometry, target: str):
    geometry = dict(geometry) if not isinstance(geometry, dict) else geometry
    if MULTI.get(geometry["type"]) == target:
        return {"type": target, "coordinates": [geometry["coordinates"]]}
    return geometry


def _grow(bounds: list[float], box: tuple[float, float, float, float]) -> None:
    bounds[0], bounds[1] = min(bounds[0], box[0]), min(bounds[1], box[1])
    bounds[2], bounds[3] = max(bounds[2], box[2]), max(bounds[3], box[3])


def _write_geojson_bulk(gpkg: Path, table: str, geojson: Path, fields: dict[str, str]) -> bool:
    """`_write_geojson` a batch of rows at a time: geometries through shapely's GeoJSON writer.

    Only for fields whose SQLite values are what fiona would give (text, numbers, ISO dates);
    False (nothing written) otherwise, and the caller streams through fiona.
    """
    if any(kind.split(":")[0] not in PLAIN_FIELD_TYPES for kind in fields.values()):
        return False
    try:
        _stream_geojson(gpkg, table, geojson, list(fields))
    except (ValueError, sqlite3.Error, shapely.errors.GEOSException):
        return False  # e.g. curved geometries: fiona's writer rewrites the file
    return True


def _stream_geojson(gpkg: Path, table: str, geojson: Path, names: list[str]) -> None:
    with geojson.open("w", encoding="utf-8") as out:
        out.write('{"type":"FeatureCollection","features":[\n')
        separator = ""
        for geometries, rows in read_batches(gpkg, table, names, with_pk=True):
            texts = shapely.to_geojson(geometries)
            lines = []
            for text, row in zip(texts, rows, strict=True):
                properties = json.dumps(dict(zip(names, row[1:], strict=True)),
                                        ensure_ascii=False, default=str)
                lines.append(f'{separator}{{"type": "Feature", "id": {int(row[0])}, '
                             f'"geometry": {text or "null"}, "properties": {properties}}}\n')
                separator = ","
            out.write("".join(lines))
        out.write("]}\n")


def _write_geojson(gpkg: Path, table: str, geojson: Path) -> None:
    """Stream features out one by one, so a million parcels never sit in memory together."""
    with (fiona.open(gpkg, driver="GPKG", layer=table) as source,
          geojson.open("w", encoding="utf-8") as out):
        out.write('{"type":"FeatureCollection","features":[\n')
        for index, feature in enumerate(source):
            record = {
                "type": "Feature",
                "id": int(feature.id),
                "geometry": _plain(feature.geometry),
                "properties": _plain(dict(feature.properties)),
            }
            out.write(
                ("," if index else "") + json.dumps(record, ensure_ascii=False, default=str) + "\n"
            )
        out.write("]}\n")


def _plain(value):
    """fiona's Geometry/Properties objects as plain JSON-ready dicts and lists."""
    if hasattr(value, "__geo_interface__"):
        value = value.__geo_interface__
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
