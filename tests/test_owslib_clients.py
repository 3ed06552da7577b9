"""OWSLib's OGC API Features and Coverages clients against the running server."""

from __future__ import annotations

import json

import fiona
import numpy as np
import rasterio
from owslib.ogcapi.coverages import Coverages
from owslib.ogcapi.features import Features
from rasterio.io import MemoryFile
from rasterio.windows import from_bounds

from tests.conftest import SOURCES


def test_features_client_reads_every_settlement(server):
    client = Features(f"{server.url}/ogc")
    assert "settlements" in [c["id"] for c in client.collections()["collections"]]
    page = client.collection_items("settlements", limit=200)
    assert page["numberMatched"] == page["numberReturned"] == 112
    with fiona.open(SOURCES / "settlements.geojson") as layer:
        expected = {f.properties["geonames_id"]: f.properties["population"] for f in layer}
    got = {f["properties"]["geonames_id"]: f["properties"]["population"] for f in page["features"]}
    assert got == expected


def test_features_client_pages_with_offset(server):
    client = Features(f"{server.url}/ogc")
    first = client.collection_items("airports", limit=5, offset=0)
    second = client.collection_items("airports", limit=5, offset=5)
    ids_first = {f["id"] for f in first["features"]}
    ids_second = {f["id"] for f in second["features"]}
    assert len(ids_first) == len(ids_second) == 5 and not ids_first & ids_second
    assert first["numberMatched"] == 17


def test_coverage_subset_matches_the_source_raster(server):
    # OWSLib sends no f= for coverages: the server negotiates GeoTIFF from the Accept header.
    client = Coverages(f"{server.url}/ogc", headers={"Accept": "image/tiff; application=geotiff"})
    data = client.coverage("elevation", subset=[("Lat", 41, 42), ("Long", 74, 75)])
    with MemoryFile(data.read()) as memory, memory.open() as got:
        assert got.crs.to_epsg() == 4326
        assert abs(got.bounds.left - 74) < 0.01 and abs(got.bounds.top - 42) < 0.01
        assert 239 <= got.height <= 241 and 239 <= got.width <= 241
        values = got.read(1)
        with rasterio.open(SOURCES / "elevation.tif") as source:
            window = from_bounds(*got.bounds, transform=source.transform).round_offsets()
            expected = source.read(1, window=window.round_lengths())
    assert values.shape == expected.shape
    np.testing.assert_array_equal(values, expected)
    assert 2000 < float(values.mean()) < 4500  # the central Tien Shan, in metres


def test_coverage_json_values_and_pixel_centres(server):
    """OWSLib's default answer is CoverageJSON: same values, axes at pixel centres."""
    # Explicit headers: OWSLib shares one default headers dict between client instances.
    client = Coverages(f"{server.url}/ogc", headers={"Accept": "application/prs.coverage+json"})
    document = json.load(client.coverage("slope", subset=[("Lat", 41, 41.5), ("Long", 74, 74.5)]))
    axes = document["domain"]["axes"]
    half = 0.5 / 240  # 15 arc-seconds, halved
    assert abs(axes["x"]["start"] - (74 + half)) < 1e-9 and axes["x"]["num"] == 120
    assert abs(axes["y"]["start"] - (41.5 - half)) < 1e-9 and axes["y"]["num"] == 120
    (values,) = [np.array(r["values"]).reshape(r["shape"]) for r in document["ranges"].values()]
    with rasterio.open(SOURCES / "slope.tif") as source:
        window = from_bounds(74, 41, 74.5, 41.5, transform=source.transform).round_offsets()
        expected = source.read(1, window=window.round_lengths())
    np.testing.assert_allclose(values, expected, atol=1e-4)


def test_coverage_json_names_the_band_with_its_unit_and_sends_nodata_as_null(server):
    """Each band is a parameter named after the band, with its unit and type (pygeoapi's
    rasterio provider named it "null", called int16 values floats and sent nodata as -32767)."""
    client = Coverages(f"{server.url}/ogc", headers={"Accept": "application/prs.coverage+json"})
    # Across the boundary near Osh: cells outside the country are nodata.
    document = json.load(client.coverage("elevation",
                                         subset=[("Lat", 40.0, 40.4), ("Long", 70.4, 70.8)]))
    assert list(document["parameters"]) == list(document["ranges"]) == ["elevation"]
    parameter = document["parameters"]["elevation"]
    assert parameter["unit"]["symbol"] == "m"
    assert parameter["observedProperty"]["label"]["en"] == "elevation"
    grid = document["ranges"]["elevation"]
    assert grid["dataType"] == "integer"
    values = np.array(grid["values"], dtype=object).reshape(grid["shape"])
    with rasterio.open(SOURCES / "elevation.tif") as source:
        axes = document["domain"]["axes"]
        half = 0.5 / 240
        window = from_bounds(axes["x"]["start"] - half, axes["y"]["stop"] - half,
                             axes["x"]["stop"] + half, axes["y"]["start"] + half,
                             transform=source.transform).round_offsets()
        expected = source.read(1, window=window.round_lengths())
        nodata = expected == source.nodata
    assert values.shape == expected.shape
    assert nodata.any() and (~nodata).any()
    assert all(v is None for v in values[nodata])
    np.testing.assert_array_equal(values[~nodata].astype(int), expected[~nodata])
