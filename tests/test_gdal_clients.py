"""GDAL's own command-line tools (Debian gdal-bin) against the running server."""

from __future__ import annotations

import json
import re
import subprocess

import fiona
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from tests.conftest import RASTER_IDS, SOURCES, VECTOR_IDS


def gdal(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def source_layer(dataset_id: str) -> tuple[int, dict]:
    """Feature count and field types read with fiona straight from the sample source."""
    with fiona.open(SOURCES / f"{dataset_id}.geojson") as layer:
        return len(layer), dict(layer.schema["properties"])


def test_ogrinfo_lists_every_vector_collection_and_no_coverage(server):
    listing = gdal("ogrinfo", "-ro", "-q", f"OAPIF:{server.url}/ogc")
    layers = re.findall(r"^\d+: (\S+)", listing, re.MULTILINE)
    # The OGC API Records catalog (issue 15) is a collection of GeoJSON records too: GDAL
    # opens it as a layer of dataset footprints.
    assert sorted(layers) == sorted([*VECTOR_IDS, "metadata"])
    assert not set(RASTER_IDS) & set(layers)


def test_ogrinfo_reads_the_records_catalog_as_footprints(server):
    summary = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server.url}/ogc", "metadata")
    assert f"Feature Count: {len(VECTOR_IDS) + len(RASTER_IDS)}" in summary


@pytest.mark.parametrize("dataset_id", VECTOR_IDS)
def test_ogrinfo_reports_count_and_fields(server, dataset_id):
    summary = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server.url}/ogc", dataset_id)
    count, fields = source_layer(dataset_id)
    assert f"Feature Count: {count}" in summary
    for name in fields:
        assert re.search(rf"^{re.escape(name)}: ", summary, re.MULTILINE), name


@pytest.mark.parametrize("dataset_id", ["settlements", "airports"])
def test_ogr2ogr_copies_a_whole_layer_through_paging(server, tmp_path, dataset_id):
    target = tmp_path / f"{dataset_id}.geojson"
    # A small page size forces many rel=next requests.
    gdal("ogr2ogr", "-f", "GeoJSON", str(target), f"OAPIF:{server.url}/ogc", dataset_id,
         "-oo", "PAGE_SIZE=7")
    copied = json.loads(target.read_text())["features"]
    with fiona.open(SOURCES / f"{dataset_id}.geojson") as layer:
        expected = sorted(json.dumps(dict(f.properties), sort_keys=True) for f in layer)
    assert sorted(json.dumps(f["properties"], sort_keys=True) for f in copied) == expected


@pytest.mark.parametrize("dataset_id", RASTER_IDS)
def test_gdal_reads_a_cog_window_over_vsicurl(server, tmp_path, dataset_id):
    record = server.get(f"/stac/land/{dataset_id}/{dataset_id}/{dataset_id}.json").json()
    href = record["assets"]["data"]["href"]
    # The asset href is relative to the item; resolve it as a client would.
    url = requests_join(f"{server.url}/stac/land/{dataset_id}/{dataset_id}/", href)
    window = Window(1000, 300, 64, 48)
    out = tmp_path / "window.tif"
    gdal("gdal_translate", "-q", "-srcwin", str(window.col_off), str(window.row_off),
         str(window.width), str(window.height), f"/vsicurl/{url}", str(out),
         "--config", "GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
    with rasterio.open(out) as got, rasterio.open(SOURCES / f"{dataset_id}.tif") as source:
        assert got.crs == source.crs
        np.testing.assert_array_equal(got.read(1), source.read(1, window=window))


def requests_join(base: str, href: str) -> str:
    from urllib.parse import urljoin

    return urljoin(base, href)
