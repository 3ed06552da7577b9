"""QGIS (Debian's 3.22, python3-qgis) reads the OGC API Features layers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import fiona
from shapely.geometry import box, shape

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
