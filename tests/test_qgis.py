"""QGIS (Debian's 3.22, python3-qgis) reads the OGC API Features layers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import fiona
from shapely.geometry import box, shape

from catalog.core.webmercator import TileBounds
from tests.conftest import SOURCES

CLIENT = Path(__file__).parent / "clients" / "qgis_oapif.py"


def test_qgis_loads_counts_and_filters_settlements(server):
    result = subprocess.run(["/usr/bin/python3", str(CLIENT), server.url, "settlements"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    with fiona.open(SOURCES / "settlements.geojson") as layer:
        features = [(f.properties, shape(f.geometry)) for f in layer]
        fields = list(layer.schema["properties"])
    assert report["valid"]
    assert report["feature_count"] == len(features)  # read from numberMatched
    assert report["fields"] == fields
    assert report["subset_ids"] == sorted(p["geonames_id"] for p, _ in features
                                          if p["population"] > 100000)
    area = box(74, 42, 75, 43)
    assert report["bbox_ids"] == sorted(p["geonames_id"] for p, g in features
                                        if g.intersects(area))


VECTOR_TILES = Path(__file__).parent / "clients" / "qgis_vector_tiles.py"


def test_qgis_322_draws_the_latest_xyz_vector_tile_template(server):
    """QGIS 3.22 cannot read OGC API - Tiles; its generic vector tile connection takes the
    `latest` template (docs/clients.md, "Map tiles") and draws the settlements from it."""
    extent = [str(v) for v in TileBounds.checked(5, 22, 11).mercator]

    def drawn(dataset_id: str) -> int:
        template = f"{server.url}/tiles/{dataset_id}/latest/{{z}}/{{x}}/{{y}}.mvt"
        result = subprocess.run(["/usr/bin/python3", str(VECTOR_TILES), template, *extent],
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["valid"] and report["version"].startswith("3.22")
        return report["drawn"]

    assert drawn("settlements") > 500  # pixels of the 68 settlements in that tile
    assert drawn("no-such-dataset") == 0  # what QGIS draws comes from our answers
