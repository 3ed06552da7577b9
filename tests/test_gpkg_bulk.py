"""The bulk GeoPackage paths of the pipeline give what the per-feature fiona paths give.

A GeoPackage source is checked and copied with SQLite and shapely arrays
(catalog/gpkg/bulk.py); the same features as FlatGeobuf or GeoJSON go through fiona.
Problems found, the published GeoPackage (rows, R-tree, extent, counts, triggers) and the
GeoJSON download must agree.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import fiona
import pytest
import shapely
from shapely.geometry import mapping

from catalog.convert.vector import convert_vector
from catalog.sources.vector import inspect_vector

SCHEMA = {"geometry": "Unknown", "properties": {"code": "str", "n": "int", "area": "float"}}


def _features(count: int = 60) -> list[dict]:
    features = []
    for i in range(count):
        x, y = 70 + (i % 10) * 0.5, 40 + (i // 10) * 0.4
        square = shapely.box(x, y, x + 0.2, y + 0.1)
        geometry = {
            0: square.difference(shapely.box(x + 0.05, y + 0.03, x + 0.15, y + 0.07)),  # a hole
            1: shapely.MultiPolygon([square, shapely.box(x + 0.3, y, x + 0.4, y + 0.1)]),
            2: square,
        }[i % 3]
        features.append({"geometry": geometry,
                         "properties": {"code": f"P{i:03d}", "n": i * 7, "area": i / 3}})
    return features


def _write(path: Path, features: list[dict], driver: str) -> Path:
    # FlatGeobuf's spatial index would reorder the features.
    options = {"SPATIAL_INDEX": "NO"} if driver == "FlatGeobuf" else {}
    with fiona.open(path, "w", driver=driver, schema=SCHEMA, crs="EPSG:4326", **options) as sink:
        for feature in features:
            geometry = feature["geometry"]
            sink.write({"geometry": mapping(geometry) if geometry is not None else None,
                        "properties": feature["properties"]})
    return path


def _rows(gpkg: Path) -> list[tuple]:
    with fiona.open(gpkg) as layer:
        return [(f.id, dict(f.properties), shapely.geometry.shape(f.geometry).wkb_hex)
                for f in layer]


def _sql(gpkg: Path, query: str) -> list[tuple]:
    conn = sqlite3.connect(gpkg)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def _publish(source: Path, out: Path):
    info, problems = inspect_vector(source, "code")
    assert problems == []
    out.mkdir()
    return convert_vector(info, "lots", out)


def test_geopackage_source_publishes_like_fiona(tmp_path: Path) -> None:
    features = _features()
    bulk = _publish(_write(tmp_path / "lots.gpkg", features, "GPKG"), tmp_path / "bulk")
    plain = _publish(_write(tmp_path / "lots.fgb", features, "FlatGeobuf"), tmp_path / "plain")
    (_, bulk_facts), (_, plain_facts) = bulk, plain
    # FlatGeobuf reads integers as int32: the field types may differ, nothing else.
    assert replace(bulk_facts, fields={}) == replace(plain_facts, fields={})
    assert bulk_facts.geometry_type == "MultiPolygon"
    gpkg_bulk, gpkg_plain = tmp_path / "bulk/lots.gpkg", tmp_path / "plain/lots.gpkg"
    assert _rows(gpkg_bulk) == _rows(gpkg_plain)
    for query in (
        "SELECT * FROM rtree_lots_geom ORDER BY id",
        "SELECT min_x, min_y, max_x, max_y, srs_id FROM gpkg_contents",
        "SELECT * FROM gpkg_ogr_contents",
        "SELECT * FROM gpkg_geometry_columns",
        "SELECT name FROM sqlite_master WHERE type IN ('trigger', 'index') ORDER BY name",
    ):
        assert _sql(gpkg_bulk, query) == _sql(gpkg_plain, query), query
    names = {name for (name,) in _sql(gpkg_bulk, "SELECT name FROM sqlite_master")}
    # one per attribute for sortby, one of all attributes for counting attribute filters
    assert {"lots_code_idx", "lots_n_idx", "lots_area_idx", "lots_attributes_idx"} <= names
    downloads = [json.loads((tmp_path / d / "lots.geojson").read_text()) for d in ("bulk", "plain")]
    assert downloads[0] == downloads[1]
    assert len(downloads[0]["features"]) == len(features)


@pytest.mark.parametrize("suffix, driver", [(".gpkg", "GPKG"), (".geojson", "GeoJSON")])
def test_geopackage_checks_report_like_fiona(tmp_path: Path, suffix: str, driver: str) -> None:
    features = _features(40)
    bowtie = shapely.Polygon([(70, 40), (71, 41), (71, 40), (70, 41), (70, 40)])
    features[5]["geometry"] = bowtie
    features[8]["geometry"] = None
    features[9]["properties"]["code"] = "P003"  # duplicate id
    source = _write(tmp_path / f"lots{suffix}", features, driver)
    info, problems = inspect_vector(source, "code")
    assert info.feature_count == 40
    assert [(p.where, p.message) for p in problems] == [
        ("feature 5 (code=P005)", "invalid geometry: Self-intersection[70.5 40.5]"),
        ("feature 8 (code=P008)", "has no geometry"),
        ("feature 9 (code=P003)", "duplicate id 'P003' in field 'code'"),
    ]
