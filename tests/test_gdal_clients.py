"""GDAL's own command-line tools (Debian gdal-bin) against the running server."""

from __future__ import annotations

import json
import re
import subprocess

import fiona
import numpy as np
import pytest
import rasterio
import yaml
from rasterio.windows import Window

from tests.conftest import DATASETS, RASTER_IDS, SOURCES, VECTOR_IDS


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


def first_item(dataset_id: str) -> tuple[str, str, object]:
    """The dataset's first STAC item, from its manifest: (theme, item id, source path). A
    dataset of several items (a time series) has one item per manifest `items` entry; a
    single-source dataset has one item named after the dataset."""
    manifest = yaml.safe_load((DATASETS / f"{dataset_id}.yaml").read_text())
    if manifest.get("items"):
        item = manifest["items"][0]
        return manifest["theme"], item["id"], DATASETS / item["source"]
    return manifest["theme"], dataset_id, DATASETS / manifest["source"]


@pytest.mark.parametrize("dataset_id", RASTER_IDS)
def test_gdal_reads_a_cog_window_over_vsicurl(server, tmp_path, dataset_id):
    theme, item_id, source_path = first_item(dataset_id)
    folder = f"{server.url}/stac/{theme}/{dataset_id}/{item_id}/"
    record = server.get(f"{folder}{item_id}.json".removeprefix(server.url)).json()
    href = record["assets"]["data"]["href"]
    # The asset href is relative to the item; resolve it as a client would.
    url = requests_join(folder, href)
    with rasterio.open(source_path) as source:
        # A window off the origin and wholly inside the raster (the samples' sizes differ:
        # 47 x 19 cells for the climate normals, thousands for the elevation).
        col, row = source.width // 3, source.height // 3
        window = Window(col, row, min(64, source.width - col), min(48, source.height - row))
        expected = source.read(1, window=window)
        crs, nodata = source.crs, source.nodata
    # The comparison means something only if the window holds data, not just nodata.
    assert (expected != nodata).any()
    out = tmp_path / "window.tif"
    gdal("gdal_translate", "-q", "-srcwin", str(window.col_off), str(window.row_off),
         str(window.width), str(window.height), f"/vsicurl/{url}", str(out),
         "--config", "GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
    with rasterio.open(out) as got:
        assert got.crs == crs
        np.testing.assert_array_equal(got.read(1), expected)


def requests_join(base: str, href: str) -> str:
    from urllib.parse import urljoin

    return urljoin(base, href)
